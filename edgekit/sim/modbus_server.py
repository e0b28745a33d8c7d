"""The simulator's Modbus TCP server: machine i is unit id i, laid out as :mod:`edgekit.sim.layout`.

Built on pymodbus 3.16's ``SimDevice``/``SimData`` (the non-deprecated datastore; 0-based protocol
addresses, unlisted addresses inside a table answer exception 2 ILLEGAL DATA ADDRESS). This is the
only place that touches pymodbus internals: fast bulk updates write straight into the runtime
register list of each device (``SimCore.devices[id].block[table]``) — one synchronous slice
assignment per table, so a single request never sees half an update. A test reads every
documented address back through a plain pymodbus client.

Writes: holding 50-51 (setpoint, ≤ 6000 r/min else exception 3) and coil 1 (remote_enable) are
writable; every other holding register is read-only (a write answers exception 2), and a write to
coil 0 answers exception 2.
The plant polls the writable values with :meth:`SimModbusServer.read_setpoint` /
:meth:`read_remote_enable`.
"""

from __future__ import annotations

import asyncio
import functools
import struct
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from ..errors import EdgekitError
from .layout import (
    COIL_REMOTE_ENABLE,
    COIL_RUNNING,
    DI_FAULT_ACTIVE,
    HOLDING,
    HOLDING_SETPOINT,
    IR_HEADER_LEN,
    IR_SAMPLES,
    encode_value,
)

__all__ = ["MAX_SETPOINT_RPM", "ModbusMachineLayout", "SimModbusServer"]

_N_PROCESS_REGS = HOLDING[-1].address + HOLDING[-1].count  # 28


class ModbusMachineLayout:
    """Sizes of one machine's waveform table (channels × samples per channel)."""

    def __init__(self, channels: int, block_len: int) -> None:
        if IR_SAMPLES + channels * block_len > 65536:
            raise EdgekitError(f"Modbus waveform of {channels}×{block_len} samples does not fit 65536 input registers")
        self.channels = channels
        self.block_len = block_len


MAX_SETPOINT_RPM = 6000


async def _guard_writes(fc: int, start: int, address: int, count: int,
                        registers: list[int], values: list[int] | list[bool] | None) -> ExcCodes | None:
    """Reject writes to coil 0 (running is read-only, exception 2) and setpoints above
    ``MAX_SETPOINT_RPM`` (exception 3, as a drive would); everything else is decided by the flags."""
    if values is None:
        return None
    if fc in (5, 15) and address <= COIL_RUNNING < address + max(1, len(values)):
        return ExcCodes.ILLEGAL_ADDRESS
    sp = HOLDING_SETPOINT.address
    if fc in (6, 16) and address < sp + 2 and address + len(values) > sp:
        regs = list(registers[sp - start: sp - start + 2])
        for i, v in enumerate(values):
            if sp <= address + i < sp + 2:
                regs[address + i - sp] = int(v)
        if (regs[0] << 16 | regs[1]) > MAX_SETPOINT_RPM:
            return ExcCodes.ILLEGAL_VALUE
    return None


class SimModbusServer:
    """One pymodbus TCP server serving ``layouts[i-1]`` as unit id ``i``."""

    def __init__(self, host: str, port: int, layouts: Sequence[ModbusMachineLayout],
                 setpoints: Sequence[int]) -> None:
        self.host = host
        self.port = port
        devices = []
        for i, lay in enumerate(layouts, start=1):
            coils = [SimData(0, values=[False, True], datatype=DataType.BITS)]
            dis = [SimData(0, values=[False], datatype=DataType.BITS)]
            holding = [
                SimData(0, values=[0] * _N_PROCESS_REGS, datatype=DataType.REGISTERS, readonly=True),
                SimData(HOLDING_SETPOINT.address, values=encode_value(HOLDING_SETPOINT, setpoints[i - 1]),
                        datatype=DataType.REGISTERS),
            ]
            inputs = [
                SimData(0, values=[0] * IR_HEADER_LEN, datatype=DataType.REGISTERS, readonly=True),
                SimData(IR_SAMPLES, values=[0] * (lay.channels * lay.block_len), datatype=DataType.REGISTERS,
                        readonly=True),
            ]
            devices.append(SimDevice(i, simdata=(coils, dis, holding, inputs),
                                     action=functools.partial(_guard_writes)))
        self._server = ModbusTcpServer(devices, address=(host, port))
        self._layouts = list(layouts)

    async def start(self) -> None:
        await self._server.serve_forever(background=True)
        if self.port == 0:
            sockets = getattr(self._server.transport, "sockets", None) or []
            if sockets:
                self.port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        await self._server.shutdown()
        await asyncio.sleep(0)

    # ---- direct register access (the one place that knows pymodbus' runtime layout) ---------------

    def _regs(self, unit: int, table: str) -> tuple[int, list[int]]:
        start, _count, registers, _flags = self._server.context.devices[unit].block[table]  # type: ignore[union-attr]
        return start, registers

    def _put(self, unit: int, table: str, address: int, values: list[int]) -> None:
        start, regs = self._regs(unit, table)
        off = address - start
        regs[off:off + len(values)] = values

    def _get(self, unit: int, table: str, address: int, count: int) -> list[int]:
        start, regs = self._regs(unit, table)
        return regs[address - start: address - start + count]

    def _put_bit(self, unit: int, table: str, bit: int, value: bool) -> None:
        start, regs = self._regs(unit, table)  # bit tables: one register holds 16 bits, LSB first
        off, pos = bit // 16 - start, bit % 16
        regs[off] = (regs[off] | (1 << pos)) if value else (regs[off] & ~(1 << pos))

    def _get_bit(self, unit: int, table: str, bit: int) -> bool:
        start, regs = self._regs(unit, table)
        return bool(regs[bit // 16 - start] >> (bit % 16) & 1)

    def publish_process(self, unit: int, holding: list[int], running: bool, fault_active: bool) -> None:
        self._put(unit, "h", 0, holding)
        self._put_bit(unit, "c", COIL_RUNNING, running)
        self._put_bit(unit, "d", DI_FAULT_ACTIVE, fault_active)

    def publish_waveform(self, unit: int, seq: int, fs_hz: float, scale_g_per_count: float,
                         samples: npt.NDArray[np.int16]) -> None:
        """Write the header and the int16 samples ``(channels, block_len)`` in one go."""
        channels, block_len = samples.shape
        header = list(struct.unpack(">8H", struct.pack(">Iff2H", seq & 0xFFFFFFFF, scale_g_per_count, fs_hz,
                                                        channels, block_len)))
        self._put(unit, "i", IR_SAMPLES, samples.reshape(-1).view(np.uint16).tolist())
        self._put(unit, "i", 0, header)

    def write_setpoint(self, unit: int, rpm: int) -> None:
        self._put(unit, "h", HOLDING_SETPOINT.address, encode_value(HOLDING_SETPOINT, rpm))

    def read_setpoint(self, unit: int) -> int:
        hi, lo = self._get(unit, "h", HOLDING_SETPOINT.address, 2)
        return (hi << 16) | lo

    def read_remote_enable(self, unit: int) -> bool:
        return self._get_bit(unit, "c", COIL_REMOTE_ENABLE)

    def write_remote_enable(self, unit: int, value: bool) -> None:
        self._put_bit(unit, "c", COIL_REMOTE_ENABLE, value)
