"""OPC UA connector configuration (placeholder until the OPC UA connector lands)."""

from __future__ import annotations

from dataclasses import dataclass

from ...config.parse import opt


@dataclass(frozen=True)
class OpcUaConnectionConfig:
    name: str = opt(doc="Connection name, unique in the gateway")
