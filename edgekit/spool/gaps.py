"""Gap accounting: drops are counted in ``open_gaps`` inside the dropping transaction, then sealed.

Sealing turns an open gap into a :class:`~edgekit.codec.GapRecord` row in stream ``gap/<stream>``
(see the :mod:`edgekit.spool` docstring, *Gaps*). These helpers run inside a transaction the
caller holds on the ingest connection.
"""

from __future__ import annotations

import sqlite3

from ..codec import GapRecord, pack

__all__ = ["GAP_PREFIX", "gap_stream", "note_drop", "open_gap_counts", "take_due_gaps"]

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


def take_due_gaps(conn: sqlite3.Connection, now: float, interval: float, force: bool) -> list[tuple[str, bytes]]:
    """Remove open gaps older than ``interval`` (all if ``force``); return ``(gap stream, blob)`` rows."""
    cutoff = float("inf") if force else now - interval
    rows = conn.execute(
        "SELECT stream, reason, first_seq, last_seq, count, since FROM open_gaps WHERE since <= ? "
        "ORDER BY since, stream, reason", (cutoff,)).fetchall()
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
