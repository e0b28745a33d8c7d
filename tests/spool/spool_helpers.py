"""Shared helpers for the spool tests: a quick config, the two-uplink routes, gap-record reading."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgekit.codec import GapRecord, unpack
from edgekit.spool import Spool, SpoolConfig

ROUTES = {"a": ("features", "event", "gap"), "b": ("points", "features", "gap")}


def cfg(**kw: Any) -> SpoolConfig:
    base: dict[str, Any] = {"reserve_free_bytes": 0, "gap_interval": 0.0}
    base.update(kw)
    return SpoolConfig(**base)


def open_spool(path: Path, **kw: Any) -> Spool:
    return Spool(path, cfg(**kw), ROUTES)


def gaps(spool: Spool, uplink: str = "a") -> list[GapRecord]:
    """Every gap record currently pending for ``uplink``."""
    out = []
    for row in spool.pending(uplink, limit=1_000_000, max_bytes=1 << 40):
        if row.kind == "gap":
            rec = unpack(row.blob)
            assert isinstance(rec, GapRecord)
            out.append(rec)
    return out


def gap_total(spool: Spool, stream: str, reason: str | None = None) -> int:
    spool.flush_gaps()
    return sum(g.count for g in gaps(spool) if g.stream == stream and (reason is None or g.reason == reason))


def until(cond: Callable[[], object], timeout: float = 5.0) -> None:
    """Wait (polling every 2 ms) until ``cond()`` is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)
