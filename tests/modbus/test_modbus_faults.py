"""Fault isolation through a fault-injecting TCP proxy: after every fault (drop, reset, delay,
half-open) the connector reconnects, marks data BAD while it lasts, never stops silently, reports the
device down and up again, and a healthy device on another connection keeps its scan period."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import pytest
from fault_proxy import FaultProxy
from modbus_helpers import CollectSink, Running, start_tcp_server

from edgekit.config.parse import parse
from edgekit.connectors import modbus
from edgekit.connectors.modbus.config import ModbusConnectionConfig
from edgekit.types import EventKind, Quality

POLL_S = 0.1


def conn(name: str, port: int, device: str, unit: int) -> ModbusConnectionConfig:
    return parse(ModbusConnectionConfig, {
        "name": name, "port": port, "timeout": "200ms", "retries": 0, "reconnect_min": "50ms",
        "reconnect_max": "300ms", "down_after": 2, "down_poll_max": "300ms",
        "devices": [{"name": device, "unit_id": unit, "poll": {"default": POLL_S},
                     "tags": [{"name": "v", "address": 0, "table": "holding_register"},
                              {"name": "w", "address": 1, "table": "holding_register", "type": "int16"}]}],
    }, "modbus[0]")


def period(batches: list[Any], t0: float, t1: float) -> float:
    ts = np.array([b.recv_ts[0] for b in batches if t0 <= b.recv_ts[0] <= t1])
    assert len(ts) >= 5
    return float((ts[-1] - ts[0]) / (len(ts) - 1))


@pytest.mark.parametrize(("fault", "delay_s"), [("drop", 0), ("reset", 0), ("delay", 0.5), ("half_open", 0)])
async def test_fault_reconnect_bad_data_and_isolation(port: int, fault: str, delay_s: float) -> None:
    server = await start_tcp_server({1: {"holding_register": {0: 7, 1: 8}}, 2: {"holding_register": {0: 9, 1: 10}}},
                                    port)
    proxy = await FaultProxy(port).start()
    sick = modbus.build(conn("via-proxy", proxy.port, "sick", 1))
    healthy = modbus.build(conn("direct", port, "healthy", 2))
    sink = CollectSink()
    try:
        async with Running(sick, sink), Running(healthy, sink):
            await sink.wait_for(lambda: len(sink.of("sick")) >= 3 and len(sink.of("healthy")) >= 3)
            assert sink.last("sick")["v"][:2] == (7.0, Quality.GOOD)
            await asyncio.sleep(0.8)  # a baseline of the healthy scan period
            since = sick.link.connected_since
            t_fault = time.time()
            proxy.set(fault, delay_s)
            n_fault = len(sink.of("sick"))
            await sink.wait_for(lambda: any(e.kind == EventKind.CONNECTOR_DOWN and e.source == "sick"
                                            for e in sink.events), timeout=5)
            await asyncio.sleep(1.2)
            t_clear = time.time()
            during = [b for b in sink.of("sick")[n_fault:]]
            proxy.set("pass")
            await sink.wait_for(lambda: any(e.kind == EventKind.CONNECTOR_UP and e.source == "sick"
                                            for e in sink.events) and sink.last("sick")["v"][1] == Quality.GOOD,
                                timeout=5)
            n_after = len(sink.of("sick"))
            await sink.wait_for(lambda: len(sink.of("sick")) >= n_after + 3)
            health = sick.health()
            since_after = sick.link.connected_since
    finally:
        await proxy.stop()
        await server.shutdown()
    # data marked bad during the fault, with a reason; never silent (a batch at least every backoff cap)
    bad = [b for b in during if b.quality[0] == Quality.BAD]
    assert len(bad) >= 3, [b.reasons for b in during]
    assert all(b.reasons[0] for b in bad)
    ts = [b.recv_ts[0] for b in during]
    assert max(np.diff([t_fault, *ts, t_clear])) < 1.2
    # reconnected: a new link after the fault, good values again
    assert since is not None and since_after is not None and since_after > since
    assert sink.last("sick")["v"][:2] == (7.0, Quality.GOOD)
    assert health["devices"]["sick"]["state"] == "up" and health["loop_restarts"] == 0
    # isolation: the healthy connection's scan period is unchanged within 10 % during the fault
    before = period(sink.of("healthy"), t_fault - 0.75, t_fault)
    while_sick = period(sink.of("healthy"), t_fault + 0.2, t_clear)
    assert while_sick == pytest.approx(POLL_S, rel=0.10) and before == pytest.approx(POLL_S, rel=0.10)
    assert all(q == Quality.GOOD for b in sink.of("healthy") for q in b.quality)


async def test_retries_then_device_timeout(port: int) -> None:
    # retries = 1: a silent peer costs two attempts (both counted), then DeviceTimeout naming them
    from edgekit.connectors.modbus.transport import ModbusLink
    from edgekit.errors import DeviceTimeout

    server = await start_tcp_server({1: {"holding_register": {0: 42, 1: 7}}}, port)
    proxy = await FaultProxy(port).start()
    cfg = parse(ModbusConnectionConfig, {
        "name": "retry", "port": proxy.port, "timeout": "150ms", "retries": 1,
        "devices": [{"name": "d", "tags": [{"name": "v", "address": 0, "table": "holding_register"}]}],
    }, "modbus[0]")
    link = ModbusLink(cfg)
    try:
        await link.connect()
        assert (await link.read("holding_register", 0, 2, 1)).tolist() == [42, 7]
        proxy.set("half_open")
        with pytest.raises(DeviceTimeout, match="2 attempts"):
            await link.read_payload("holding_register", 0, 2, 1)
        assert (link.requests, link.timeouts) == (3, 2)
    finally:
        link.close()
        await proxy.stop()
        await server.shutdown()


async def test_poll_path_retry_answers(port: int) -> None:
    # retries = 1 on the poll path: the first attempt of a scan is swallowed (silent peer), the
    # retry answers — the scan stays GOOD, no error is counted, and the link counts both attempts
    server = await start_tcp_server({1: {"holding_register": {0: 42}}}, port)
    proxy = await FaultProxy(port).start()
    connector = modbus.build(parse(ModbusConnectionConfig, {
        "name": "retry", "port": proxy.port, "timeout": "200ms", "retries": 1,
        "devices": [{"name": "d", "poll": {"default": "20ms"},
                     "tags": [{"name": "v", "address": 0, "table": "holding_register"}]}],
    }, "modbus[0]"))
    sink = CollectSink()
    try:
        async with Running(connector, sink):
            await sink.wait_for(lambda: len(sink.of("d")) >= 2)
            proxy.set("half_open")
            deadline = time.monotonic() + 5
            while not proxy.swallowed and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            proxy.set("pass")  # one request (or its answer) swallowed; the retry goes out after the 200 ms timeout
            n = len(sink.of("d"))
            await sink.wait_for(lambda: len(sink.of("d")) >= n + 3)
            health = connector.health()
    finally:
        await proxy.stop()
        await server.shutdown()
    assert connector.link.timeouts == 1
    assert all(b.quality.tolist() == [Quality.GOOD] and b.values.tolist() == [42.0] for b in sink.of("d"))
    assert health["errors"] == {} and health["devices"]["d"]["errors"] == {}
    assert health["requests"] == health["scans"] + 1  # one request per scan, plus the swallowed attempt
