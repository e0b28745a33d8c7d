"""Gap accounting: drops are counted in ``open_gaps`` inside the dropping transaction, then sealed.

Sealing turns an open gap into a :class:`~edgekit.codec.GapRecord` row in stream ``gap/<stream>``
(see the :mod:`edgekit.spool` docstring, *Gaps*). These helpers run inside a transaction the
caller holds on the ingest connection.
"""

from __future__ import annotations

import sqlite3

from ..codec import GapRecord, pack

__all__ = ["BACKOFF", "GAP_PREFIX", "due_gaps_exist", "gap_stream", "note_drop", "open_gap_counts", "take_due_gaps"]

GAP_PREFIX = "gap/"


def gap_stream(stream: str) -> str:
    """The stream that carries gap records for ``stream``: ``gap/<stream>``."""
    return GAP_PREFIX + stream


def note_drop(conn: sqlite3.Connection, stream: str, reason: str, first_seq: int, last_seq: int,
              count: int, now: float) -> None:
    """Count ``count`` dropped records of ``stream`` (seqs within ``first_seq..last_seq``) in its open gap."""
    conn.execute(
        "INSERT INTO open_gaps(stream, reason, first_seq, last_seq, count, since) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(stream, reason) DO UPDATE SET first_seq = min(first_seq, excluded.first_seq), "
        "last_seq = max(last_seq, excluded.last_seq), count = count + excluded.count",
        (stream, reason, first_seq, last_seq, count, now),
    )


BACKOFF = 60
"""While an earlier gap record of the same stream is still stored (not yet acknowledged — the uplink
is probably down), an open gap is sealed only after ``BACKOFF x gap_interval``: at most one gap row
per stream per minute (default interval) accumulates during an outage, not one per second."""

_DUE = ("FROM open_gaps o WHERE o.since <= ? AND (o.since <= ? OR NOT EXISTS "
        "(SELECT 1 FROM records r WHERE r.stream = 'gap/' || o.stream))")


def _cutoffs(now: float, interval: float, force: bool) -> tuple[float, float]:
    if force:
        return float("inf"), float("inf")
    return now - interval, now - BACKOFF * interval


def due_gaps_exist(conn: sqlite3.Connection, now: float, interval: float) -> bool:
    return conn.execute(f"SELECT 1 {_DUE} LIMIT 1", _cutoffs(now, interval, False)).fetchone() is not None


def take_due_gaps(conn: sqlite3.Connection, now: float, interval: float, force: bool) -> list[tuple[str, bytes]]:
    """Remove the open gaps that are due (all if ``force``); return ``(gap stream, blob)`` rows."""
    rows = conn.execute(
        f"SELECT o.stream, o.reason, o.first_seq, o.last_seq, o.count, o.since {_DUE} "
        "ORDER BY o.since, o.stream, o.reason", _cutoffs(now, interval, force)).fetchall()
    out = []
    for stream, reason, first, last, count, since in rows:
        rec = GapRecord(stream=stream, first_seq=int(first), last_seq=int(last), count=int(count),
                        reason=str(reason), ts=float(since))
        out.append((gap_stream(stream), pack(rec)))
        conn.execute("DELETE FROM open_gaps WHERE stream = ? AND reason = ?", (stream, reason))
    return out


def open_gap_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Dropped records per stream not yet sealed into a gap record."""
    out: dict[str, int] = {}
    for stream, count in conn.execute("SELECT stream, sum(count) FROM open_gaps GROUP BY stream"):
        out[str(stream)] = int(count)
    return out
