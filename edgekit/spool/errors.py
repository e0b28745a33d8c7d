"""Spool-specific errors, both :class:`~edgekit.errors.SpoolError` subclasses (see the package docstring)."""

from __future__ import annotations

from ..errors import SpoolError

__all__ = ["SpoolCorrupt", "SpoolDiskFull"]


class SpoolDiskFull(SpoolError):
    """SQLite reported "database or disk is full": nothing of the call was admitted."""


class SpoolCorrupt(SpoolError):
    """SQLite reported a malformed database during operation: reopen the spool to quarantine it."""
