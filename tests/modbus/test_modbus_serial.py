"""Modbus RTU over a serial line: a pseudo-terminal pair bridged like a null-modem cable, a real
pymodbus RTU server on one end, the connector (pymodbus serial client via pyserial) on the other."""

from __future__ import annotations

import asyncio
import os
import tty
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from modbus_helpers import CollectSink, Running, start_serial_server

from edgekit.config.parse import parse
from edgekit.connectors import modbus
from edgekit.connectors.modbus.config import ModbusConnectionConfig
from edgekit.types import Quality


class NullModem:
    """Two pty pairs whose masters are cross-connected: bytes written on end A arrive on end B."""

    def __init__(self) -> None:
        self.m1, self.s1 = os.openpty()
        self.m2, self.s2 = os.openpty()
        for fd in (self.s1, self.s2):
            tty.setraw(fd)
        self.a, self.b = os.ttyname(self.s1), os.ttyname(self.s2)
        self.bytes = 0

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_reader(self.m1, self._copy, self.m1, self.m2)
        loop.add_reader(self.m2, self._copy, self.m2, self.m1)

    def _copy(self, src: int, dst: int) -> None:
        try:
            data = os.read(src, 4096)
        except OSError:
            return
        self.bytes += len(data)
        os.write(dst, data)

    def close(self) -> None:
        loop = asyncio.get_running_loop()
        for fd in (self.m1, self.m2):
            loop.remove_reader(fd)
        for fd in (self.m1, self.s1, self.m2, self.s2):
            os.close(fd)


@pytest_asyncio.fixture
async def modem() -> AsyncIterator[NullModem]:
    nm = NullModem()
    nm.start()
    yield nm
    nm.close()


async def test_rtu_over_pty_pair(modem: NullModem) -> None:
    server = await start_serial_server({
        1: {"holding_register": {0: 0x4120, 1: 0x0000, 2: 42}, "coil": {0: True, 1: False}},
        2: {"input_register": {10: 0xFFFF}},
    }, modem.b, baudrate=115200)
    cfg = parse(ModbusConnectionConfig, {
        "name": "bus", "transport": "rtu", "serial_port": modem.a, "baudrate": 115200, "timeout": "300ms",
        "retries": 0, "devices": [
            {"name": "drive", "unit_id": 1, "poll": {"default": "50ms"}, "tags": [
                {"name": "speed", "address": "40001", "type": "float32"},
                {"name": "mode", "address": "40003", "writable": True},
                {"name": "run", "address": "00001", "writable": True}]},
            {"name": "meter", "unit_id": 2, "poll": {"default": "50ms"}, "tags": [
                {"name": "temp", "address": "30011", "type": "int16", "scale": 0.5}]},
        ]}, "modbus[0]")
    connector = modbus.build(cfg)
    assert connector.link.inter_frame_s == pytest.approx(3.5 * 11 / 115200, rel=0.01) or \
        connector.link.inter_frame_s == pytest.approx(0.00175)
    sink = CollectSink()
    try:
        async with Running(connector, sink):
            await sink.wait_for(lambda: len(sink.of("drive")) >= 2 and len(sink.of("meter")) >= 2)
            # writes share the bus with polling: one request at a time, no collisions
            await asyncio.gather(connector.write("drive", "mode", 7), connector.write("drive", "run", False))
            n = len(sink.of("drive"))
            await sink.wait_for(lambda: len(sink.of("drive")) > n + 1)
            health = connector.health()
    finally:
        await server.shutdown()
    drive, meter = sink.last("drive"), sink.last("meter")
    assert drive["speed"][:2] == (10.0, Quality.GOOD)
    assert drive["mode"][:2] == (7.0, Quality.GOOD) and drive["run"][:2] == (0.0, Quality.GOOD)
    assert meter["temp"][:2] == (-0.5, Quality.GOOD)
    assert health["errors"] == {} and modem.bytes > 0


async def test_rtu_over_tcp(port: int) -> None:
    from modbus_helpers import start_tcp_server
    from pymodbus.framer import FramerType

    server = await start_tcp_server({5: {"holding_register": {0: 0xFFFE, 1: 1234}}}, port, framer=FramerType.RTU)
    cfg = parse(ModbusConnectionConfig, {
        "name": "gw", "transport": "rtu_over_tcp", "port": port, "timeout": "300ms", "retries": 0,
        "devices": [{"name": "vfd", "unit_id": 5, "poll": {"default": "50ms"}, "tags": [
            {"name": "a", "address": 0, "table": "holding_register", "type": "int16"},
            {"name": "b", "address": 1, "table": "holding_register", "scale": 0.1}]}]}, "modbus[0]")
    connector = modbus.build(cfg)
    sink = CollectSink()
    try:
        async with Running(connector, sink):
            await sink.wait_for(lambda: len(sink.of("vfd")) >= 2)
    finally:
        await server.shutdown()
    got = sink.last("vfd")
    assert got["a"][:2] == (-2.0, Quality.GOOD) and got["b"][0] == pytest.approx(123.4)
