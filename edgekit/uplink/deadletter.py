"""Dead letters: records a collector NACKed (it can never accept them), kept beside the spool.

A NACKed record is not retried and not lost: it moves here, with the reason, so an operator can
inspect or re-inject it. One SQLite file (WAL, ``synchronous=FULL``) shared by the uplinks of a
gateway, default ``<spool file>.deadletter.sqlite``::

    dead_letters(uplink, stream, epoch, seq, kind, ts, blob, reason, at)  PRIMARY KEY (uplink, stream, epoch, seq)

The row is written (and committed) *before* the uplink acknowledges the seq in the spool, so a crash
in between re-delivers it rather than losing it.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

__all__ = ["DeadLetters"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letters (
    uplink TEXT NOT NULL, stream TEXT NOT NULL, epoch TEXT NOT NULL, seq INTEGER NOT NULL,
    kind TEXT NOT NULL, ts REAL NOT NULL, blob BLOB NOT NULL, reason TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (uplink, stream, epoch, seq)
)
"""


class DeadLetters:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute(_SCHEMA)

    def __repr__(self) -> str:
        return f"<DeadLetters {self.path}>"

    def add(self, uplink: str, row: Any, reason: str) -> None:
        """Store one spool row (``stream, seq, kind, blob, ts, epoch``) with the collector's reason."""
        self._conn.execute(
            "INSERT OR REPLACE INTO dead_letters VALUES (?,?,?,?,?,?,?,?,?)",
            (uplink, row.stream, row.epoch, row.seq, row.kind, row.ts, bytes(row.blob), reason, time.time()),
        )

    def count(self, uplink: str | None = None) -> int:
        if uplink is None:
            return int(self._conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0])
        q = "SELECT count(*) FROM dead_letters WHERE uplink = ?"
        return int(self._conn.execute(q, (uplink,)).fetchone()[0])

    def rows(self, uplink: str) -> list[tuple[str, int, str, str]]:
        """``(stream, seq, kind, reason)`` of every dead letter of ``uplink``."""
        q = "SELECT stream, seq, kind, reason FROM dead_letters WHERE uplink = ? ORDER BY stream, seq"
        return [tuple(r) for r in self._conn.execute(q, (uplink,))]  # type: ignore[misc]

    def close(self) -> None:
        self._conn.close()
