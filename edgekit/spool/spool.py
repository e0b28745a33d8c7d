"""The :class:`Spool`: opening (check, quarantine, salvage), recovery, stats, integrity, closing.

Admission lives in :mod:`edgekit.spool.ingest`, paging and acks in :mod:`edgekit.spool.delivery`.
Design, on-disk format, invariants and thread model: see the :mod:`edgekit.spool` package docstring.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import zlib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from ..codec import GapRecord, pack, segment_view
from ..errors import DecodeError, SpoolError
from .base import INSERT, KINDS, UPSERT_STREAM, SpoolRow, is_corruption, log
from .config import SpoolConfig
from .delivery import DeliverySide
from .errors import SpoolCorrupt
from .gaps import gap_stream, open_gap_counts
from .ingest import IngestSide
from .schema import FORMAT_VERSION, check_file, connect, create_schema, quarantine, salvage

__all__ = ["FORMAT_VERSION", "KINDS", "Spool", "SpoolRow"]

DELIVERY_SYNC = "normal"
"""Acks and prunes (the delivery connection) commit without an fsync of their own: a power loss may
forget the last acks, whose records are then resent and deduplicated by the collector; the next
fsynced admission (or checkpoint) makes them durable, since the WAL is one sequential file."""


class Spool(IngestSide, DeliverySide):
    """Durable, acknowledged record store; see the package docstring for the full contract."""

    def __init__(self, path: str | Path, cfg: SpoolConfig, routes: Mapping[str, Collection[str]]) -> None:
        self.path = Path(path)
        self.cfg = cfg
        self._routes: dict[str, frozenset[str]] = {}
        for name, kinds in routes.items():
            bad = sorted(set(kinds) - set(KINDS))
            if bad:
                raise SpoolError(f"uplink {name!r} routes unknown record kind(s) {bad}; allowed: {', '.join(KINDS)}")
            self._routes[str(name)] = frozenset(kinds)
        self._routing = {k: tuple(u for u, ks in self._routes.items() if k in ks) for k in KINDS}
        self._ingest_lock = threading.Lock()
        self._delivery_lock = threading.Lock()
        self._state = threading.Condition(threading.Lock())
        self._closed = False
        # in-memory state (guarded by self._state)
        self._last: dict[str, int] = {}
        self._kinds: dict[str, frozenset[str]] = {}
        self._acked: dict[tuple[str, str], int] = {}
        self._bytes = 0
        self._rows = 0
        self._segments_stored = 0
        self._gaps_open = True
        self._prune_todo: set[str] = set()
        self._disk_low = False
        self._disk_checked_at = 0.0
        self._appends_since_disk_check = 0
        self._blocked_need = 0
        self._hot: dict[tuple[str, int], tuple[int, bytes]] = {}
        self._hot_bytes = 0
        self._committer = None
        self._committer_lock = threading.Lock()
        self._submit_closed = False
        self._counters: dict[str, Any] = {
            "appended": 0, "appended_bytes": 0, "unrouted": 0, "dropped": {}, "gaps": 0,
            "quarantined": 0, "blocked": 0, "pruned": 0, "errors": {}, "submissions": 0, "submit_transactions": 0,
        }
        self.epoch = ""
        self._ingest, self._delivery = self._open()
        try:
            self._load()
            with self._ingest_lock:
                self._seal_gaps(force=True)
        except sqlite3.DatabaseError as exc:  # damage the open check did not see (or it was off)
            if not is_corruption(exc):
                self._close_connections()
                raise SpoolError(f"cannot open spool {self.path}: {exc}") from exc
            with self._delivery_lock, self._ingest_lock:
                self._reopen_quarantined(f"{type(exc).__name__}: {exc}")
        for _ in range(2):  # a second pass after a quarantine found while pruning
            try:
                while self.prune(all_streams=True):
                    pass
                break
            except SpoolCorrupt:
                continue

    # ---- opening ----------------------------------------------------------------------------

    def _open(self) -> tuple[sqlite3.Connection, sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        problem: str | None = None
        conn: sqlite3.Connection | None = None
        if self.path.exists():
            try:
                conn = connect(self.path, self.cfg)
                problem = check_file(conn, self.cfg.integrity_on_open)
            except SpoolError:
                if conn is not None:
                    conn.close()
                raise
            except sqlite3.DatabaseError as exc:
                if conn is not None:
                    conn.close()
                    conn = None
                if not is_corruption(exc):
                    raise SpoolError(f"cannot open spool {self.path}: {exc}") from exc
                problem = f"{type(exc).__name__}: {exc}"
        if conn is not None and problem == "empty":
            create_schema(conn)
        elif problem is not None:
            if conn is not None:
                conn.close()
            conn = self._quarantine(problem)
        elif conn is None:
            conn = connect(self.path, self.cfg)
            create_schema(conn)
        return conn, connect(self.path, self.cfg, DELIVERY_SYNC)

    def _quarantine(self, problem: str) -> sqlite3.Connection:
        found = salvage(self.path)
        try:
            target = quarantine(self.path)
        except OSError as exc:
            raise SpoolError(f"spool {self.path} is unusable ({problem}) and could not be moved aside: {exc}") from exc
        log.error("spool %s is corrupt (%s): moved to %s; starting a new epoch; lost records are reported "
                  "as gap records (reason 'corrupt')", self.path, problem, target)
        conn = connect(self.path, self.cfg)
        create_schema(conn, {"previous_epoch": found.epoch or "", "quarantined_file": str(target)})
        now = time.time()
        gaps = [GapRecord(s, first, last, n, "corrupt", now) for s, first, last, n in found.streams]
        if not gaps:
            gaps = [GapRecord("*", 0, 0, -1, "corrupt", now)]
        conn.execute("BEGIN IMMEDIATE")
        for g in gaps:
            blob = pack(g)
            gs = gap_stream(g.stream)
            conn.execute(INSERT, (gs, 1, 1, "gap", now, len(blob), zlib.crc32(blob), blob))
            conn.execute(UPSERT_STREAM, (gs, 1, "gap"))
        conn.execute("COMMIT")
        with self._state:
            self._counters["quarantined"] += 1
            self._counters["gaps"] += len(gaps)
        return conn

    def _reopen_quarantined(self, problem: str) -> None:
        """Quarantine the open file and continue on a new one (caller holds both locks).

        Threads that hold neither lock (the uplink's ``first_unacked``, ``submit_ack``'s check) keep
        reading the old epoch's ``_last``/``_kinds``/``_acked`` until :meth:`_load` swaps in the new
        ones under ``_state`` — never a dict emptied or filled under their iteration."""
        self._close_connections()
        self._ingest = self._quarantine(problem)
        self._delivery = connect(self.path, self.cfg, DELIVERY_SYNC)
        self._load()
        self._seal_gaps(force=True)

    def _recover(self, exc: SpoolCorrupt) -> SpoolCorrupt:
        """After SQLite reported corruption: confirm with a fresh check, then quarantine and go on."""
        with self._delivery_lock, self._ingest_lock:
            if self._closed:
                return exc
            problem: str | None
            try:
                probe = sqlite3.connect(str(self.path), isolation_level=None, timeout=self.cfg.busy_timeout)
                try:
                    problem = check_file(probe, "quick")
                finally:
                    probe.close()
            except SpoolError as err:
                problem = str(err)
            except sqlite3.DatabaseError as err:
                problem = f"{type(err).__name__}: {err}"
            if problem is None:
                return exc  # the file checks fine: never throw data away on a doubt
            old = self.epoch
            try:
                self._reopen_quarantined(problem)
            except (sqlite3.Error, SpoolError) as err:
                self._closed = True
                with self._state:  # nothing of the old epoch is valid any more
                    self._last, self._kinds, self._acked = {}, {}, {}
                log.error("spool %s: could not replace the corrupt file: %s; the spool is closed", self.path, err)
                return SpoolCorrupt(f"{exc}; replacing the corrupt file failed ({err}): the spool is closed")
        return SpoolCorrupt(f"{exc}; the file was quarantined (epoch {old} -> {self.epoch}); nothing of this "
                            "call was stored, retry")

    def _close_connections(self) -> None:
        for conn in (getattr(self, "_delivery", None), getattr(self, "_ingest", None)):
            if conn is not None:
                try:
                    conn.close()
                except sqlite3.Error as exc:
                    log.error("spool %s: close failed: %s", self.path, exc)

    def _load(self) -> None:
        """Read the file's state into new dicts, then swap them in at once under ``_state``."""
        c = self._delivery
        epoch = str(c.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()[0])
        last: dict[str, int] = {}
        kinds: dict[str, frozenset[str]] = {}
        for stream, seq, names in c.execute("SELECT stream, last_seq, kinds FROM streams"):
            last[stream] = int(seq)
            kinds[stream] = frozenset(k for k in str(names).split(",") if k)
        acked = {(uplink, stream): int(a) for uplink, stream, a in c.execute("SELECT uplink, stream, acked FROM cursors")}
        segs, rows, nbytes = c.execute("SELECT count(*), coalesce(sum(last_seq - seq + 1), 0), "
                                       "coalesce(sum(size), 0) FROM records").fetchone()
        self._gaps_open = c.execute("SELECT 1 FROM open_gaps LIMIT 1").fetchone() is not None
        with self._state:
            self._hot.clear()  # a new file (quarantine) reuses seqs of the old epoch
            self._hot_bytes = 0
            self.epoch = epoch
            self._last, self._kinds, self._acked = last, kinds, acked
            self._segments_stored, self._rows, self._bytes = int(segs), int(rows), int(nbytes)
            self._prune_todo = set(last)


    # ---- checks, stats, closing ----------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """JSON-able counters since open plus the current size; ``open_gaps`` = drops not yet sealed."""
        open_gaps: dict[str, int] = {}
        if not self._closed:
            with self._delivery_lock:
                if not self._closed:
                    try:
                        open_gaps = open_gap_counts(self._delivery)
                    except sqlite3.Error as exc:
                        self._count_error(exc)
        with self._state:
            c = self._counters
            return {
                "epoch": self.epoch, "path": str(self.path), "policy": self.cfg.full_policy,
                "rows": self._rows, "segments": self._segments_stored, "bytes": self._bytes, "max_bytes": self.cfg.max_bytes,
                "disk_low": self._disk_low, "streams": len(self._last),
                **{k: (dict(v) if isinstance(v, dict) else v) for k, v in c.items()},
                "dropped_total": sum(c["dropped"].values()), "open_gaps": open_gaps,
            }

    def integrity_check(self) -> bool:
        """Full SQLite integrity check plus the spool's own invariants and every row's CRC."""
        with self._delivery_lock:
            self._check_open()
            conn = self._delivery
            problems: list[str] = []
            try:
                why = check_file(conn, "full")
                if why:
                    problems.append(why)
                else:
                    prev: tuple[str, int] = ("", 0)
                    for stream, seq, last in conn.execute(
                            "SELECT stream, seq, last_seq FROM records ORDER BY stream, last_seq"):
                        if last < seq or (stream == prev[0] and seq <= prev[1]):
                            problems.append(f"segment {stream} {seq}..{last} overlaps another or is empty")
                            break
                        prev = (stream, last)
                    beyond = conn.execute(
                        "SELECT r.stream, r.last_seq FROM records r LEFT JOIN streams s ON s.stream = r.stream "
                        "WHERE s.last_seq IS NULL OR r.last_seq > s.last_seq OR r.seq < 1 LIMIT 1").fetchone()
                    if beyond:
                        problems.append(f"row beyond its stream's last seq {beyond}")
                    for rid, crc, size, blob, count in conn.execute(
                            "SELECT id, crc, size, blob, last_seq - seq + 1 FROM records"):
                        if zlib.crc32(blob) != crc or (count == 1 and len(blob) != size):
                            problems.append(f"row id {rid}: CRC/size mismatch")
                            break
                        if count > 1:
                            try:
                                segment_view(blob, count)
                            except DecodeError as exc:
                                problems.append(f"row id {rid}: bad segment: {exc}")
                                break
            except sqlite3.DatabaseError as exc:
                problems.append(f"{type(exc).__name__}: {exc}")
        for p in problems:
            log.error("spool %s integrity: %s", self.path, p)
        return not problems

    def close(self) -> None:
        """Commit what was submitted, seal open gaps and close both connections (idempotent; never
        raises on SQLite errors). Under ``block`` with no space, submissions still queued after
        ``busy_timeout`` s fail with :class:`SpoolError` (logged)."""
        with self._committer_lock:
            committer = self._committer
            self._committer = None
            self._submit_closed = True  # a submit racing this close must not start a new committer
        if committer is not None:
            committer.close(self.cfg.busy_timeout)
        with self._delivery_lock, self._ingest_lock:
            if self._closed:
                return
            try:
                self._seal_gaps(force=True)
            except sqlite3.Error as exc:
                self._rollback(self._ingest)
                self._count_error(exc)
                log.error("spool %s: sealing gaps at close failed: %s (they are sealed at next open)",
                          self.path, exc)
            self._closed = True
            self._close_connections()
        with self._state:
            self._hot.clear()
            self._hot_bytes = 0
            self._state.notify_all()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Spool({str(self.path)!r}, epoch={self.epoch[:8]}, rows={self._rows}, bytes={self._bytes}, "
                f"policy={self.cfg.full_policy}{', closed' if self._closed else ''})")
