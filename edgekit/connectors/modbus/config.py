"""Modbus connector configuration: one ``[[modbus]]`` table per connection (a TCP socket, a serial bus
or an RTU-over-TCP gateway) with its devices, their tags and waveform blocks.

Shape (see ``edgekit/connectors/modbus/sample.toml`` for every key with its default)::

    [[modbus]]
    name = "line1"
    transport = "tcp"            # tcp | rtu | rtu_over_tcp
    host = "10.0.0.5"
    [[modbus.devices]]
    name = "m01"
    unit_id = 1
    profile = "edgekit-sim"      # connectors/modbus/edgekit-sim.toml
    poll = { fast = "200ms", slow = "5s" }
    [[modbus.devices.tags]]
    name = "speed_rpm"
    address = "40001"            # or 0, "1-based:1", "4x0001"
    type = "float32"

All checks that need more than one key are in ``_validate``; profiles are resolved and checked there
too, so ``edgekit check`` reports a broken profile with the device path that names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ...config.parse import Duration, opt
from ...errors import ConfigError
from .address import Table, parse_address

__all__ = [
    "BYTE_ORDERS",
    "ByteOrder",
    "DeviceConfig",
    "ModbusConnectionConfig",
    "TagConfig",
    "TagType",
    "WaveformConfig",
]

ByteOrder = Literal["ABCD", "BADC", "CDAB", "DCBA"]
BYTE_ORDERS: tuple[str, ...] = ("ABCD", "BADC", "CDAB", "DCBA")
TagType = Literal[
    "bool", "int16", "uint16", "int32", "uint32", "int64", "uint64",
    "float16", "float32", "float64", "string", "bit",
]

REGISTER_TABLES = ("input_register", "holding_register")
BIT_TABLES = ("coil", "discrete_input")
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


def _check_name(field: str, name: str) -> None:
    if not name or not set(name) <= _NAME_CHARS:
        raise ConfigError(field, f"{name!r} must be non-empty letters, digits, '_', '-' or '.'")


@dataclass(frozen=True, kw_only=True)
class TagConfig:
    """One scalar value of a device."""

    name: str = opt(doc="Tag name, unique per device (the point's tag)")
    address: int | str = opt(
        doc='0-based protocol address (int), or "0-based:N", "1-based:N", Modicon "40001"/"400001"/"4x0001"'
    )
    table: Table | None = opt(
        None, "coil | discrete_input | input_register | holding_register (implied by Modicon notation)"
    )
    type: TagType | None = opt(None, "Value type; default bool for coils/discrete inputs, uint16 for registers")
    bit: int = opt(0, "Bit number 0..15 (0 = least significant) for type = \"bit\"")
    length: int = opt(0, "Registers of a string tag (2 characters each)")
    byte_order: ByteOrder | None = opt(None, "Override of the device byte_order for this tag")
    scale: float = opt(1.0, "Engineering value = raw * scale + offset")
    offset: float = opt(0.0, "Added after scaling")
    unit: str = opt("", "Engineering unit (documentation and metadata)")
    deadband: float = opt(0.0, "Only report a good value that moved by at least this much (0 = every scan)")
    poll: str = opt("default", "Poll class (a key of the device's poll table)")
    writable: bool = opt(False, "Allow writes (FC5/6/15/16) through the connector's write API")

    def _validate(self) -> None:
        _check_name("name", self.name)
        addr, implied = parse_address(self.address, "address")
        if implied and self.table and implied != self.table:
            raise ConfigError(
                "table", f"{self.table!r} contradicts address {self.address!r}, which names {implied}"
            )
        table = self.resolved_table
        kind = self.resolved_type
        if table in BIT_TABLES and kind != "bool":
            raise ConfigError("type", f"{kind!r} is not possible in table {table}; coils and discrete inputs are bool")
        if kind == "bit" and not 0 <= self.bit <= 15:
            raise ConfigError("bit", f"{self.bit!r} is out of range 0..15")
        if kind == "string":
            if not 1 <= self.length <= 125:
                raise ConfigError("length", f"{self.length!r}: a string tag needs length = 1..125 registers")
            if self.byte_order not in (None, "ABCD", "BADC"):
                raise ConfigError(
                    "byte_order", f"{self.byte_order!r}: strings are ABCD (high byte first) or BADC (low byte first)"
                )
        elif self.length:
            raise ConfigError("length", "length is only for type = \"string\"")
        if addr + self.words > 65536:
            raise ConfigError("address", f"{self.address!r} + {self.words} registers runs past address 65535")
        if self.deadband < 0:
            raise ConfigError("deadband", f"{self.deadband!r} must be >= 0")
        if self.writable and kind == "bit":
            raise ConfigError("writable", "bit tags cannot be written (a register write would clobber the other bits)")
        if self.writable and table in ("discrete_input", "input_register"):
            raise ConfigError("writable", f"table {table} is read-only in Modbus")
        if self.scale == 0:
            raise ConfigError("scale", "0 is not a usable scale")

    @property
    def resolved_address(self) -> int:
        return parse_address(self.address)[0]

    @property
    def resolved_table(self) -> Table:
        implied = parse_address(self.address)[1]
        if self.table:
            return self.table
        if implied:
            return implied
        raise ConfigError("table", f"missing: address {self.address!r} does not name a table; set table = one of "
                          "coil, discrete_input, input_register, holding_register")

    @property
    def resolved_type(self) -> str:
        if self.type:
            return self.type
        return "bool" if self.resolved_table in BIT_TABLES else "uint16"

    @property
    def words(self) -> int:
        """Registers (or bits, in a bit table) this tag occupies."""
        kind = self.resolved_type
        if kind == "string":
            return self.length
        return {"int32": 2, "uint32": 2, "float32": 2, "int64": 4, "uint64": 4, "float64": 4}.get(kind, 1)


@dataclass(frozen=True, kw_only=True)
class WaveformConfig:
    """A block of samples in registers, published with a block sequence counter."""

    name: str = opt("vibration", "Waveform name (used in logs; the WaveformBlock's asset is the device name)")
    table: Literal["input_register", "holding_register"] = opt("input_register", "Table holding the block")
    seq_address: int | str = opt(doc="Address of the block sequence counter")
    seq_type: Literal["uint16", "uint32"] = opt("uint32", "Type of the sequence counter")
    samples_address: int | str = opt(doc="Address of channel 0's first sample; channel c follows at c*block_len")
    channels: list[str] = opt(doc="Channel ids, in register order", factory=list)
    unit: str = opt("g", "Engineering unit of the samples after scaling")
    dtype: Literal["int16", "float32"] = opt("int16", "Sample type in the registers")
    block_len: int = opt(0, "Samples per channel; 0 = read from block_len_address")
    block_len_address: int | str | None = opt(None, "Address of a uint16 holding samples per channel")
    scale: float = opt(1.0, "Fixed scale (engineering units per count) unless scale_address is set")
    scale_address: int | str | None = opt(None, "Address of a float32 scale (units per count)")
    fs: float = opt(0.0, "Fixed sample rate in Hz unless fs_address is set")
    fs_address: int | str | None = opt(None, "Address of a float32 sample rate in Hz")
    speed_tag: str = opt("", "Name of a point tag with the shaft speed, attached to each block")
    speed_unit: Literal["rpm", "hz"] = opt("rpm", "Unit of speed_tag")
    poll: str = opt("default", "Poll class: how often the sequence register is checked")
    byte_order: ByteOrder | None = opt(None, "Override of the device byte_order (seq, scale, fs, float32 samples)")

    def _validate(self) -> None:
        _check_name("name", self.name)
        for key in ("seq_address", "samples_address", "block_len_address", "scale_address", "fs_address"):
            value = getattr(self, key)
            if value is None:
                continue
            _addr, implied = parse_address(value, key)
            if implied and implied != self.table:
                raise ConfigError(key, f"{value!r} names {implied} but table is {self.table}")
        if not self.channels:
            raise ConfigError("channels", "at least one channel id is needed")
        if len(set(self.channels)) != len(self.channels):
            raise ConfigError("channels", f"{self.channels!r} repeats a channel id")
        if self.block_len <= 0 and self.block_len_address is None:
            raise ConfigError("block_len", "set block_len > 0 or block_len_address")
        if self.block_len < 0 or self.block_len > 65535:
            raise ConfigError("block_len", f"{self.block_len!r} is out of range 0..65535")
        if self.fs <= 0 and self.fs_address is None:
            raise ConfigError("fs", "set fs > 0 (Hz) or fs_address")
        if self.scale == 0 and self.scale_address is None:
            raise ConfigError("scale", "0 is not a usable scale")


@dataclass(frozen=True, kw_only=True)
class DeviceConfig:
    """One unit id on a connection."""

    name: str = opt(doc="Device name, unique in the gateway (points' device, waveform blocks' asset)")
    unit_id: int = opt(1, "Modbus unit id / slave id 0..247 (0 = TCP devices that ignore it)")
    byte_order: ByteOrder | None = opt(
        None, "Byte/word order of multi-register values: ABCD (big-endian), BADC, CDAB, DCBA; default: profile's or ABCD"
    )
    profile: str = opt("", "Profile name in connectors/modbus/ (without .toml) or a path to a profile file")
    poll: dict[str, Duration] = opt(
        doc="Poll classes: name -> interval; the class 'default' is used by tags without poll", factory=dict
    )
    tags: list[TagConfig] = opt(doc="Tags (added to the profile's; a tag with a profile tag's name replaces it)",
                                factory=list)
    waveforms: list[WaveformConfig] = opt(doc="Waveform blocks (added to the profile's)", factory=list)
    write_multiple: bool = opt(False, "Write single coils/registers with FC15/FC16 (for devices without FC5/FC6)")

    def _validate(self) -> None:
        _check_name("name", self.name)
        if not 0 <= self.unit_id <= 255:
            raise ConfigError("unit_id", f"{self.unit_id!r} is out of range 0..255")
        for cls, interval in self.poll.items():
            if interval <= 0:
                raise ConfigError(f"poll.{cls}", f"{interval!r} must be > 0")
        from .device import resolve_device  # late: device.py imports this module

        resolve_device(self, max_registers=125, max_bits=2000)


@dataclass(frozen=True, kw_only=True)
class ModbusConnectionConfig:
    """One Modbus connection: a TCP socket, a serial bus, or an RTU-over-TCP gateway."""

    name: str = opt(doc="Connection name, unique in the gateway")
    transport: Literal["tcp", "rtu", "rtu_over_tcp"] = opt("tcp", "Modbus TCP, RTU on a serial line, or RTU frames over TCP")
    host: str = opt("127.0.0.1", "Host for tcp / rtu_over_tcp")
    port: int = opt(502, "TCP port for tcp / rtu_over_tcp")
    serial_port: str = opt("", "Serial device for rtu, e.g. /dev/ttyUSB0")
    baudrate: int = opt(19200, "Serial baud rate")
    parity: Literal["N", "E", "O"] = opt("N", "Serial parity: N none, E even, O odd")
    stopbits: Literal[1, 2] = opt(1, "Serial stop bits")
    bytesize: Literal[7, 8] = opt(8, "Serial data bits")
    inter_frame_delay: Duration = opt(0.0, "Silence between RTU frames; 0 = 3.5 characters at the baud rate (min 1.75 ms)")
    timeout: Duration = opt(1.0, "Per-request timeout (also the connect timeout)")
    retries: int = opt(1, "Retries of a timed-out request before it counts as failed")
    reconnect_min: Duration = opt(0.5, "First reconnect delay; doubles per failure (with +-20 % jitter)")
    reconnect_max: Duration = opt(10.0, "Cap of the reconnect delay (keep below the gateway watchdog)")
    down_after: int = opt(3, "Consecutive failed scans after which a device is reported down and polled less often")
    down_poll_max: Duration = opt(
        10.0, "Cap of the poll interval of a down device (doubles from its poll interval; keep below the gateway watchdog)"
    )
    max_gap: int = opt(16, "Unused registers a read may span to merge two tags into one request")
    max_gap_bits: int = opt(256, "Unused bits a coil/discrete-input read may span to merge two tags")
    max_registers: int = opt(125, "Largest register read (protocol limit 125)")
    max_bits: int = opt(2000, "Largest coil/discrete-input read (protocol limit 2000)")
    watchdog: Duration = opt(
        0.0, "Restart the poll loop when it falls this far behind its own schedule (beyond the request budget); 0 = 5s"
    )
    devices: list[DeviceConfig] = opt(doc="Devices (unit ids) on this connection", factory=list)

    def _validate(self) -> None:
        _check_name("name", self.name)
        if self.transport == "rtu" and not self.serial_port:
            raise ConfigError("serial_port", "required for transport = \"rtu\"")
        if self.transport != "rtu" and not self.host:
            raise ConfigError("host", f"required for transport = {self.transport!r}")
        if not 1 <= self.port <= 65535:
            raise ConfigError("port", f"{self.port!r} is not a port number 1..65535")
        if self.baudrate <= 0:
            raise ConfigError("baudrate", f"{self.baudrate!r} must be > 0")
        if self.timeout <= 0:
            raise ConfigError("timeout", f"{self.timeout!r} must be > 0")
        if not 0 <= self.retries <= 10:
            raise ConfigError("retries", f"{self.retries!r} is out of range 0..10")
        if self.reconnect_min <= 0 or self.reconnect_max < self.reconnect_min:
            raise ConfigError("reconnect_max", "need 0 < reconnect_min <= reconnect_max")
        if self.down_after < 1:
            raise ConfigError("down_after", f"{self.down_after!r} must be >= 1")
        if not 1 <= self.max_registers <= 125:
            raise ConfigError("max_registers", f"{self.max_registers!r} is out of range 1..125")
        if not 1 <= self.max_bits <= 2000:
            raise ConfigError("max_bits", f"{self.max_bits!r} is out of range 1..2000")
        if self.max_gap < 0 or self.max_gap_bits < 0:
            raise ConfigError("max_gap", "gaps must be >= 0")
        from .device import resolve_device

        seen: set[str] = set()
        for i, dev in enumerate(self.devices):
            if dev.name in seen:
                raise ConfigError(f"devices[{i}].name", f"{dev.name!r} is used twice; device names must be unique")
            seen.add(dev.name)
            if self.transport != "tcp" and not 1 <= dev.unit_id <= 247:
                raise ConfigError(f"devices[{i}].unit_id", f"{dev.unit_id!r}: RTU unit ids are 1..247")
            try:
                resolve_device(dev, max_registers=self.max_registers, max_bits=self.max_bits)
            except ConfigError as exc:
                raise ConfigError(f"devices[{i}].{exc.path}" if exc.path else f"devices[{i}]", exc.message) from None
