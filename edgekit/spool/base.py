"""What both sides of the spool share: in-memory state, error translation, the recovery decorator.

Design, on-disk format, invariants and thread model: see the :mod:`edgekit.spool` package docstring.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from ..errors import SpoolError
from .config import SpoolConfig
from .errors import SpoolCorrupt, SpoolDiskFull

if TYPE_CHECKING:
    from .pipeline import GroupCommitter

__all__ = ["INSERT", "KINDS", "UPSERT_STREAM", "SpoolBase", "SpoolRow", "is_corruption", "recovering"]

log = logging.getLogger("edgekit.spool")

KINDS = ("points", "features", "event", "waveform", "gap")
INSERT = "INSERT INTO records(stream, seq, last_seq, kind, ts, size, crc, blob) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
UPSERT_STREAM = (
    "INSERT INTO streams(stream, last_seq, kinds) VALUES (?, ?, ?) "
    "ON CONFLICT(stream) DO UPDATE SET last_seq = excluded.last_seq, kinds = excluded.kinds")

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound="SpoolBase")


def recovering(fn: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """On :class:`SpoolCorrupt`, quarantine the file (if a fresh check confirms) before re-raising."""

    @functools.wraps(fn)
    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(self, *args, **kwargs)
        except SpoolCorrupt as exc:
            raise self._recover(exc) from exc

    return wrapper


@dataclass(frozen=True, slots=True)
class SpoolRow:
    """Records as handed to an uplink: one record (``count == 1``, ``blob`` is the record) from
    :meth:`~edgekit.spool.Spool.pending`, or a segment of ``count`` records with seqs ``seq`` …
    ``last_seq`` from :meth:`~edgekit.spool.Spool.pending_segments` (``blob`` in the
    :func:`edgekit.codec.pack_segment` layout)."""

    stream: str
    seq: int
    kind: str
    blob: bytes
    ts: float
    epoch: str
    count: int = 1

    @property
    def last_seq(self) -> int:
        return self.seq + self.count - 1


class SpoolBase:
    """State and helpers shared by :class:`~edgekit.spool.ingest.IngestSide`,
    :class:`~edgekit.spool.delivery.DeliverySide` and :class:`~edgekit.spool.Spool`."""

    path: Path
    cfg: SpoolConfig
    epoch: str
    _routes: dict[str, frozenset[str]]
    _routing: dict[str, tuple[str, ...]]
    _ingest: sqlite3.Connection
    _delivery: sqlite3.Connection
    _ingest_lock: threading.Lock
    _delivery_lock: threading.Lock
    _state: threading.Condition
    _closed: bool
    _last: dict[str, int]
    _kinds: dict[str, frozenset[str]]
    _acked: dict[tuple[str, str], int]
    _bytes: int
    _rows: int
    _segments_stored: int
    _gaps_open: bool  # open_gaps may hold rows (set by every drop, re-read after sealing)
    _prune_todo: set[str]
    _disk_low: bool
    _disk_checked_at: float
    _appends_since_disk_check: int
    _blocked_need: int
    _counters: dict[str, Any]
    _hot: dict[tuple[str, int], tuple[int, bytes]]  # (stream, seq) -> (last_seq, blob); guarded by _state
    _hot_bytes: int
    _committer: GroupCommitter | None  # started by the first submit(); guarded by _committer_lock
    _committer_lock: threading.Lock
    _submit_closed: bool  # close() has begun: no new committer (guarded by _committer_lock)

    # implemented by the sides / the Spool; declared so each side type-checks on its own
    def _recover(self, exc: SpoolCorrupt) -> SpoolCorrupt:
        raise NotImplementedError

    def _seal_gaps(self, force: bool) -> int:
        raise NotImplementedError

    def ack(self, uplink: str, stream: str, seq: int, epoch: str | None = None) -> None:
        raise NotImplementedError

    def _check_ack(self, uplink: str, stream: str, seq: int) -> int:
        raise NotImplementedError

    def prune(self, all_streams: bool = False) -> int:
        raise NotImplementedError

    def _floor(self, stream: str, kind: str, acked: Mapping[tuple[str, str], int]) -> int:
        ups = self._routing[kind]
        if not ups:
            return self._last.get(stream, 0)
        return min(acked.get((u, stream), 0) for u in ups)

    def _lost_range(self, conn: sqlite3.Connection, stream: str, kind: str, seq: int, last: int) -> tuple[int, int]:
        """The part ``(first, count)`` of segment ``seq..last`` not yet acknowledged by every uplink that
        routes ``kind`` (read in the caller's transaction): what deleting the segment loses."""
        ups = self._routing[kind]
        floor = 0
        if ups:
            marks = ",".join("?" * len(ups))
            got = dict(conn.execute(f"SELECT uplink, acked FROM cursors WHERE stream = ? AND uplink IN ({marks})",
                                    (stream, *ups)).fetchall())
            floor = min(int(got.get(u, 0)) for u in ups)
        first = max(seq, floor + 1)
        return first, max(0, last - first + 1)

    # ---- the delivery cache ---------------------------------------------------------------------

    def _hot_put(self, rows: list[tuple[Any, ...]]) -> None:
        """Remember committed segment rows ``(stream, seq, last_seq, kind, ts, size, crc, blob)`` for
        delivery, oldest evicted first beyond ``delivery_cache_bytes`` (caller holds ``_state``)."""
        cap = self.cfg.delivery_cache_bytes
        if cap <= 0:
            return
        hot = self._hot
        added = 0
        for r in rows:
            blob = r[7]
            if len(blob) > cap or type(blob) is not bytes:
                continue
            old = hot.pop((r[0], r[1]), None)
            if old is not None:
                added -= len(old[1])
            hot[(r[0], r[1])] = (r[2], blob)
            added += len(blob)
        self._hot_bytes += added
        while self._hot_bytes > cap and hot:
            _last, blob = hot.pop(next(iter(hot)))
            self._hot_bytes -= len(blob)

    def _hot_drop(self, keys: list[tuple[str, int]]) -> None:
        """Forget deleted segments (caller holds ``_state``)."""
        hot = self._hot
        for key in keys:
            got = hot.pop(key, None)
            if got is not None:
                self._hot_bytes -= len(got[1])

    def _hot_clear(self) -> None:
        with self._state:
            self._hot.clear()
            self._hot_bytes = 0

    # ---- helpers ------------------------------------------------------------------------------

    def _uplink_kinds(self, uplink: str) -> frozenset[str]:
        try:
            return self._routes[uplink]
        except KeyError:
            raise SpoolError(f"unknown uplink {uplink!r}; the spool was opened with routes for "
                             f"{sorted(self._routes)}") from None

    def _check_open(self) -> None:
        if self._closed:
            raise SpoolError(f"spool {self.path} is closed")

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # SQLite already rolled back (e.g. after SQLITE_FULL); nothing left to undo

    def _count_error(self, exc: BaseException) -> str:
        name = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
        with self._state:
            errs = self._counters["errors"]
            errs[name] = errs.get(name, 0) + 1
        return str(name)

    def _translate(self, exc: sqlite3.Error, what: str) -> SpoolError:
        name = self._count_error(exc)
        text = str(exc)
        if name.startswith("SQLITE_FULL") or "database or disk is full" in text:
            with self._state:
                self._disk_low = True
            log.error("spool %s: %s failed, disk full: nothing of that call was stored", self.path, what)
            return SpoolDiskFull(f"{what}: database or disk is full at {self.path}; nothing of this call "
                                 f"was stored (policy {self.cfg.full_policy} applies from the next call)")
        if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in text:
            log.error("spool %s: %s failed, database is corrupt: %s", self.path, what, exc)
            return SpoolCorrupt(f"{what}: spool file {self.path} is corrupt ({exc})")
        return SpoolError(f"{what}: {name}: {exc}")



def is_corruption(exc: sqlite3.Error) -> bool:
    """A damaged file (quarantine it) as opposed to a busy, locked or unreadable one (report it)."""
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    text = str(exc)
    return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in text or "not a database" in text
