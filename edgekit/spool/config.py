"""Spool configuration (placeholder until the spool lands)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config.parse import opt


@dataclass(frozen=True)
class SpoolConfig:
    path: str = opt("", "Spool database file; empty means <gateway.data_dir>/spool.sqlite")
