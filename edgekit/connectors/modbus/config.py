"""Modbus connector configuration (placeholder until the Modbus connector lands)."""

from __future__ import annotations

from dataclasses import dataclass

from ...config.parse import opt


@dataclass(frozen=True)
class ModbusConnectionConfig:
    name: str = opt(doc="Connection name, unique in the gateway")
