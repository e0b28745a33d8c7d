"""Uplink configuration (placeholder until the uplink lands)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config.parse import opt


@dataclass(frozen=True)
class UplinkConfig:
    name: str = opt(doc="Uplink name, unique in the gateway")
