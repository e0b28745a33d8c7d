"""The simulator's address-space contract (/tmp/simlayout.md, docs/simulator.md) as data and encoders.

One table per protocol: :data:`HOLDING` lists every Modbus holding-register tag (0-based protocol
address, type, byte/word order, scale) and :data:`OPCUA_TAGS` every OPC UA process variable. The
servers build their address spaces from these tables only, and the tests decode through them with
independent code, so the layout lives in exactly one place.

Byte/word orders name the bytes of the big-endian value ``A B C D …``: ``ABCD`` big-endian,
``CDAB`` word-swapped, ``BADC`` byte-swapped inside each word, ``DCBA`` little-endian (for 64-bit
values the same rules apply to four words).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

from .physics import ProcessState

__all__ = [
    "COIL_REMOTE_ENABLE",
    "COIL_RUNNING",
    "DI_FAULT_ACTIVE",
    "HOLDING",
    "HOLDING_SETPOINT",
    "HOLDING_UNMAPPED",
    "IR_HEADER_LEN",
    "IR_SAMPLES",
    "NAMESPACE_URI",
    "OPCUA_TAGS",
    "HoldingTag",
    "OpcUaTag",
    "decode_registers",
    "encode_holding",
    "encode_value",
    "machine_name",
    "opcua_folder",
]

Order = Literal["ABCD", "CDAB", "BADC", "DCBA"]
RegType = Literal["float32", "float64", "int16", "uint16", "uint32", "int64", "string"]

NAMESPACE_URI = "urn:edgekit:sim"

_STRUCT = {"float32": ">f", "float64": ">d", "int16": ">h", "uint16": ">H", "uint32": ">I", "int64": ">q"}


@dataclass(frozen=True)
class HoldingTag:
    name: str
    address: int
    type: RegType
    order: Order = "ABCD"
    scale: float = 1.0
    length: int = 0  # string length in characters

    @property
    def count(self) -> int:
        if self.type == "string":
            return (self.length + 1) // 2
        return struct.calcsize(_STRUCT[self.type]) // 2


HOLDING: tuple[HoldingTag, ...] = (
    HoldingTag("speed_rpm", 0, "float32", "ABCD"),
    HoldingTag("bearing_temp_c", 2, "float32", "CDAB"),
    HoldingTag("motor_current_a", 4, "int16", scale=0.01),
    HoldingTag("load_pct", 5, "uint16", scale=0.1),
    HoldingTag("run_hours", 6, "uint32", "BADC"),
    HoldingTag("energy_wh", 8, "int64", "DCBA"),
    HoldingTag("status", 12, "uint16"),
    HoldingTag("name", 13, "string", length=16),
    HoldingTag("vib_rms_g", 21, "float32", "ABCD"),
    HoldingTag("total_rev", 23, "float64", "ABCD"),
    HoldingTag("ambient_c", 27, "int16", scale=0.1),
)
HOLDING_SETPOINT = HoldingTag("setpoint_rpm", 50, "uint32", "ABCD")
HOLDING_UNMAPPED = range(28, 50)  # the contract promises 40-49; 28-39 are unmapped as well
COIL_RUNNING, COIL_REMOTE_ENABLE = 0, 1
DI_FAULT_ACTIVE = 0
IR_HEADER_LEN = 8  # block_seq u32, scale f32, fs f32, n_channels u16, block_len u16
IR_SAMPLES = 1000


def machine_name(index: int) -> str:
    return f"MACHINE-{index:02d}"


def opcua_folder(index: int) -> str:
    return f"Machine{index:02d}"


def _reorder(data: bytes, order: Order) -> bytes:
    words = [data[i:i + 2] for i in range(0, len(data), 2)]
    if order in ("BADC", "DCBA"):
        words = [w[::-1] for w in words]
    if order in ("CDAB", "DCBA"):
        words.reverse()
    return b"".join(words)


def encode_value(tag: HoldingTag, value: float | int | str) -> list[int]:
    """Registers (uint16 each) holding ``value`` for ``tag`` (scaled integers are rounded)."""
    if tag.type == "string":
        raw = str(value).encode("ascii")[: tag.length].ljust(tag.count * 2, b"\0")
        return list(struct.unpack(f">{tag.count}H", raw))
    fmt = _STRUCT[tag.type]
    if tag.type.startswith("float"):
        data = struct.pack(fmt, float(value))
    else:
        ival = round(float(value) / tag.scale) if tag.scale != 1.0 else int(value)
        info = {"int16": (-32768, 32767), "uint16": (0, 65535), "uint32": (0, 2**32 - 1), "int64": (-(2**63), 2**63 - 1)}
        lo, hi = info[tag.type]
        data = struct.pack(fmt, min(hi, max(lo, ival)))
    data = _reorder(data, tag.order)
    return list(struct.unpack(f">{len(data) // 2}H", data))


def decode_registers(tag: HoldingTag, regs: list[int]) -> float | int | str:
    """Inverse of :func:`encode_value` (used by docs and the CLI listing; tests decode on their own)."""
    data = struct.pack(f">{len(regs)}H", *regs)
    if tag.type == "string":
        return data.rstrip(b"\0").decode("ascii")
    # _reorder is its own inverse for all four orders
    value = struct.unpack(_STRUCT[tag.type], _reorder(data, tag.order))[0]
    return value * tag.scale if tag.scale != 1.0 else value


def encode_holding(state: ProcessState, index: int) -> list[int]:
    """Holding registers 0..27 of machine ``index`` for ``state``."""
    values: dict[str, float | int | str] = {
        "speed_rpm": state.speed_rpm,
        "bearing_temp_c": state.bearing_temp_c,
        "motor_current_a": state.motor_current_a,
        "load_pct": state.load_pct,
        "run_hours": state.run_hours,
        "energy_wh": state.energy_wh,
        "status": int(state.running) | (int(state.fault_active) << 1),
        "name": machine_name(index),
        "vib_rms_g": state.vib_rms_g,
        "total_rev": state.total_rev,
        "ambient_c": state.ambient_c,
    }
    regs: list[int] = []
    for tag in HOLDING:
        assert len(regs) == tag.address, tag
        regs.extend(encode_value(tag, values[tag.name]))
    return regs


@dataclass(frozen=True)
class OpcUaTag:
    """One OPC UA process variable below ``Plant/MachineNN``: browse name, variant type, truth field."""

    name: str
    variant: Literal["Float", "Double", "Int16", "UInt32", "Int64", "Boolean", "String"]
    field: str
    unit: str = ""
    writable: bool = False


OPCUA_TAGS: tuple[OpcUaTag, ...] = (
    OpcUaTag("SpeedRpm", "Float", "speed_rpm", "r/min"),
    OpcUaTag("BearingTempC", "Double", "bearing_temp_c", "°C"),
    OpcUaTag("MotorCurrentA", "Float", "motor_current_a", "A"),
    OpcUaTag("LoadPct", "Int16", "load_pct", "%"),
    OpcUaTag("RunHours", "UInt32", "run_hours", "h"),
    OpcUaTag("EnergyWh", "Int64", "energy_wh", "W·h"),
    OpcUaTag("Running", "Boolean", "running"),
    OpcUaTag("FaultActive", "Boolean", "fault_active"),
    OpcUaTag("Name", "String", "name"),
    OpcUaTag("Setpoint", "Double", "setpoint_rpm", "r/min", writable=True),
)
