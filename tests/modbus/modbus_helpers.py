"""Test helpers for the Modbus connector: a real pymodbus server built in one place, a collecting sink.

pymodbus 3.16's ``SimDevice``/``SimData`` API is used (no deprecated ``ModbusSequentialDataBlock``):
protocol address N is ``SimData(N, ...)`` — verified by ``test_modbus_server_addressing``. Addresses
not listed answer exception 2 (illegal data address).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from edgekit.types import Event, PointBatch, WaveformBlock

Tables = dict[str, dict[int, int | bool]]


def _runs(values: dict[int, Any], bits: bool) -> list[SimData]:
    out: list[SimData] = []
    run: list[Any] = []
    start = prev = -2
    for addr in sorted(values):
        if addr != prev + 1 and run:
            out.append(SimData(start, values=run, datatype=DataType.BITS if bits else DataType.REGISTERS))
            run = []
        if not run:
            start = addr
        run.append(bool(values[addr]) if bits else int(values[addr]))
        prev = addr
    if run:
        out.append(SimData(start, values=run, datatype=DataType.BITS if bits else DataType.REGISTERS))
    return out


def sim_device(unit: int, tables: Tables) -> SimDevice:
    """A device whose tables hold exactly the given addresses (others answer exception 2)."""
    def block(name: str, bits: bool) -> list[SimData]:
        vals = tables.get(name) or {60000: False if bits else 0}  # pymodbus needs a non-empty block
        return _runs(vals, bits)
    return SimDevice(id=unit, simdata=(block("coil", True), block("discrete_input", True),
                                       block("holding_register", False), block("input_register", False)))


async def start_tcp_server(units: dict[int, Tables], port: int, *, framer: FramerType = FramerType.SOCKET) -> ModbusTcpServer:
    server = ModbusTcpServer([sim_device(u, t) for u, t in units.items()], address=("127.0.0.1", port), framer=framer)
    await server.serve_forever(background=True)
    return server


async def start_serial_server(units: dict[int, Tables], port: str, baudrate: int = 115200) -> ModbusSerialServer:
    server = ModbusSerialServer([sim_device(u, t) for u, t in units.items()], port=port, baudrate=baudrate,
                                framer=FramerType.RTU)
    await server.serve_forever(background=True)
    return server


class CollectSink:
    """A sink that keeps everything it gets and lets a test wait for a condition."""

    def __init__(self) -> None:
        self.batches: list[PointBatch] = []
        self.blocks: list[WaveformBlock] = []
        self.events: list[Event] = []
        self._changed = asyncio.Event()

    async def points(self, batch: PointBatch) -> None:
        self.batches.append(batch)
        self._changed.set()

    async def waveform(self, block: WaveformBlock) -> None:
        self.blocks.append(block)
        self._changed.set()

    def event(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()

    async def wait_for(self, pred: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"condition not met within {timeout}s; {len(self.batches)} batches, "
                                     f"events: {[(e.kind, e.source, e.message) for e in self.events][-5:]}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(left, 0.2))
            except TimeoutError:
                pass

    def of(self, device: str) -> list[PointBatch]:
        return [b for b in self.batches if b.device == device]

    def last(self, device: str) -> dict[str, tuple[float, int, str, str | None]]:
        """tag -> (value, quality, reason, text) from the device's latest batch."""
        b = self.of(device)[-1]
        return {t: (float(b.values[i]), int(b.quality[i]), b.reasons[i] if b.reasons else "",
                    b.text[i] if b.text else None) for i, t in enumerate(b.tags)}


class Running:
    """``async with Running(connector, sink):`` runs the connector as a task and cancels it on exit."""

    def __init__(self, connector: Any, sink: CollectSink) -> None:
        self.connector, self.sink = connector, sink
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Running:
        self.task = asyncio.create_task(self.connector.run(self.sink))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        if self.task.done():
            self.task.result()  # surfaces a crash of run()
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
