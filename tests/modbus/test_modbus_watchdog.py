"""The watchdog: a poll loop stuck below the connector is restarted (Event, counted) and polling
resumes; time spent waiting on a full sink (back-pressure) is not mistaken for a stall."""

from __future__ import annotations

import asyncio
from typing import Any

from modbus_helpers import CollectSink, Running, start_tcp_server

from edgekit.config.parse import parse
from edgekit.connectors import modbus
from edgekit.connectors.modbus.config import ModbusConnectionConfig
from edgekit.types import EventKind, PointBatch, Quality


def cfg(port: int) -> ModbusConnectionConfig:
    return parse(ModbusConnectionConfig, {
        "name": "wd", "port": port, "timeout": "100ms", "retries": 0, "watchdog": "300ms",
        "devices": [{"name": "d", "poll": {"default": "50ms"},
                     "tags": [{"name": "v", "address": 0, "table": "holding_register"}]}]}, "modbus[0]")


async def test_stuck_poll_loop_is_restarted(port: int) -> None:
    server = await start_tcp_server({1: {"holding_register": {0: 5}}}, port)
    connector = modbus.build(cfg(port))
    sink = CollectSink()
    real_bound = connector.link.bound  # the poll path reads through link.bound(): pymodbus' execute
    stuck = asyncio.Event()

    async def hang_once(*args: Any, **kw: Any) -> Any:
        connector.link.bound = real_bound  # type: ignore[method-assign]
        stuck.set()
        await asyncio.Event().wait()  # a lower layer that never returns (and ignores its timeout)

    def hanging(*args: Any) -> Any:
        return tuple((hang_once, *rest) for _, *rest in real_bound(*args))

    try:
        async with Running(connector, sink):
            await sink.wait_for(lambda: len(sink.of("d")) >= 2)
            connector.link.bound = hanging  # type: ignore[method-assign]
            connector.link.epoch += 1  # the poll loop keeps its reads while the epoch stays the same
            await asyncio.wait_for(stuck.wait(), 2)
            await sink.wait_for(lambda: any(e.kind == EventKind.TASK_RESTARTED for e in sink.events), timeout=5)
            n = len(sink.of("d"))
            await sink.wait_for(lambda: len(sink.of("d")) >= n + 2)
            health = connector.health()
    finally:
        await server.shutdown()
    assert health["loop_restarts"] == 1
    assert sink.last("d")["v"][:2] == (5.0, Quality.GOOD)
    restart = next(e for e in sink.events if e.kind == EventKind.TASK_RESTARTED)
    assert "watchdog" in restart.message


class SlowSink(CollectSink):
    async def points(self, batch: PointBatch) -> None:
        if len(self.batches) == 1:
            await asyncio.sleep(1.0)  # back-pressure: the pipeline queue is full for a while
        await super().points(batch)


async def test_backpressure_is_not_a_stall(port: int) -> None:
    server = await start_tcp_server({1: {"holding_register": {0: 5}}}, port)
    connector = modbus.build(cfg(port))
    sink = SlowSink()
    try:
        async with Running(connector, sink):
            await sink.wait_for(lambda: len(sink.of("d")) >= 5)
            health = connector.health()
    finally:
        await server.shutdown()
    assert health["loop_restarts"] == 0
    assert not any(e.kind == EventKind.TASK_RESTARTED for e in sink.events)
