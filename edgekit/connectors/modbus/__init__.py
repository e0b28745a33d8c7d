"""Modbus connector: TCP, RTU on serial lines and RTU over TCP, on pymodbus.

Public API for the runtime::

    from edgekit.connectors import modbus
    connector = modbus.build(cfg)          # cfg: ModbusConnectionConfig, one per [[modbus]] table
    await connector.run(sink)              # until cancelled; device faults are retried, never raised
    connector.health()                     # state, last_good_read, errors, per-device details
    await connector.write("m01", "setpoint_rpm", 1500)   # writable tags only
    print(modbus.format_plan(cfg))         # `edgekit check --plan`: the requests per device

Modules: ``config`` (typed config), ``address`` (address notations), ``device`` (profiles merged,
addresses resolved), ``decode`` (pure vectorised decode/encode), ``planner`` (request coalescing and
refused-address learning), ``transport`` (pymodbus link, response checks), ``waveform`` (register
blocks with a sequence counter), ``client`` (the connector: scheduling, faults, writes).
"""

from __future__ import annotations

# edgekit.config's package __init__ imports the top-level schema, which imports this package's
# config module: load edgekit.config first so that importing this package first cannot hit the cycle.
from ... import config as _config_package  # noqa: F401
from .client import ModbusConnector
from .config import DeviceConfig, ModbusConnectionConfig, TagConfig, WaveformConfig
from .device import ProfileConfig, load_profile, resolve_device
from .planner import ReadPlanner, format_device_plan

__all__ = [
    "DeviceConfig",
    "ModbusConnectionConfig",
    "ModbusConnector",
    "ProfileConfig",
    "ReadPlanner",
    "TagConfig",
    "WaveformConfig",
    "build",
    "format_plan",
    "load_profile",
]


def build(cfg: ModbusConnectionConfig) -> ModbusConnector:
    """The connector for one ``[[modbus]]`` connection (nothing is opened until ``run``)."""
    return ModbusConnector(cfg)


def format_plan(cfg: ModbusConnectionConfig) -> str:
    """Human-readable read plan of a connection: every request per device and poll class."""
    where = cfg.serial_port if cfg.transport == "rtu" else f"{cfg.host}:{cfg.port}"
    extra = f" {cfg.baudrate} {cfg.bytesize}{cfg.parity}{cfg.stopbits}" if cfg.transport == "rtu" else ""
    lines = [f"modbus {cfg.name}: {cfg.transport} {where}{extra}, timeout {cfg.timeout:g}s x{cfg.retries + 1}, "
             f"max {cfg.max_registers} regs / {cfg.max_bits} bits per request, max gap {cfg.max_gap} regs / "
             f"{cfg.max_gap_bits} bits"]
    total = naive = 0
    for dcfg in cfg.devices:
        dev = resolve_device(dcfg, max_registers=cfg.max_registers, max_bits=cfg.max_bits)
        planner = ReadPlanner(dev, max_registers=cfg.max_registers, max_bits=cfg.max_bits, max_gap=cfg.max_gap,
                              max_gap_bits=cfg.max_gap_bits)
        lines.append(format_device_plan(planner, dev.unit_id))
        total += planner.total_requests()
        naive += len(dev.tags)
    lines.append(f"  total: {total} requests per full scan of {len(cfg.devices)} devices (naive per-tag: {naive})")
    return "\n".join(lines)
