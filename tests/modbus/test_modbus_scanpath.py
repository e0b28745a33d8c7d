"""The poller's all-good scan path (every planned request answered: values decoded from the
responses' lists, one array per scan, scale/offset applied once) against a real pymodbus server:
scale and offset per tag, coils unscaled, deadband filtering with its timestamps, and the switch to
the general per-request path when one request of the scan fails."""

from __future__ import annotations

import numpy as np
from modbus_helpers import CollectSink, Running, start_tcp_server

from edgekit.config.parse import parse
from edgekit.connectors import modbus
from edgekit.connectors.modbus.config import ModbusConnectionConfig
from edgekit.types import Quality


def cfg(port: int) -> ModbusConnectionConfig:
    return parse(ModbusConnectionConfig, {
        "name": "scan", "port": port, "timeout": "300ms", "retries": 0,
        "devices": [{"name": "d", "poll": {"default": "20ms"}, "tags": [
            {"name": "level", "address": 0, "table": "holding_register", "deadband": 5.0, "writable": True},
            {"name": "temp", "address": 1, "table": "holding_register", "type": "int16", "scale": 0.1,
             "offset": -40.0},
            {"name": "run", "address": 0, "table": "coil"},
        ]}]}, "modbus[0]")


async def test_all_good_scans_scale_offset_and_deadband(port: int) -> None:
    server = await start_tcp_server({1: {"holding_register": {0: 100, 1: 650}, "coil": {0: True}}}, port)
    connector = modbus.build(cfg(port))
    sink = CollectSink()
    try:
        async with Running(connector, sink):
            await sink.wait_for(lambda: len(sink.of("d")) >= 3)
            first = sink.of("d")[0]
            assert sorted(first.tags) == ["level", "run", "temp"]
            got = sink.last("d")  # level only in the first batch (deadband), temp and run every scan
            assert got["temp"][:2] == (25.0, Quality.GOOD) and got["run"][:2] == (1.0, Quality.GOOD)
            assert "level" not in got
            await connector.write("d", "level", 103)  # inside the deadband: not reported
            n = len(sink.batches)
            await sink.wait_for(lambda: len(sink.batches) >= n + 4)
            assert all("level" not in b.tags for b in sink.batches[n:])
            await connector.write("d", "level", 106)  # 6 away from the last reported 100
            await sink.wait_for(lambda: any("level" in b.tags for b in sink.batches[n:]))
    finally:
        await server.shutdown()
    b = next(b for b in sink.batches[n:] if "level" in b.tags)
    i = b.tags.index("level")
    assert b.values[i] == 106.0 and b.quality[i] == Quality.GOOD
    assert np.all(b.recv_ts >= b.source_ts - 1.0) and np.all(b.recv_ts - b.source_ts < 5.0)
    assert connector.health()["devices"]["d"]["errors"] == {}


async def test_failed_request_takes_the_general_path(port: int) -> None:
    # unit 1 has the registers but no coils block: the coil request is refused (exception), the
    # register request answers — the scan is partial (general path), with BAD coil and GOOD values
    server = await start_tcp_server({1: {"holding_register": {0: 100, 1: 650}}}, port)
    connector = modbus.build(cfg(port))
    sink = CollectSink()
    try:
        async with Running(connector, sink):
            await sink.wait_for(lambda: len(sink.of("d")) >= 2)
    finally:
        await server.shutdown()
    got = sink.last("d")
    assert got["temp"][:2] == (25.0, Quality.GOOD)
    assert got["run"][1] == Quality.BAD and "exception" in got["run"][2]
