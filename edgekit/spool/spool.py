"""The :class:`Spool` object: admission with the full policy (ingest side) and paging/acks (delivery side).

Design, on-disk format, invariants and thread model: see the :mod:`edgekit.spool` package docstring.
"""

from __future__ import annotations

import functools
import logging
import shutil
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from ..codec import GapRecord, pack
from ..errors import SpoolError, SpoolFull
from .config import SpoolConfig
from .errors import SpoolCorrupt, SpoolDiskFull
from .gaps import due_gaps_exist, gap_stream, note_drop, open_gap_counts, take_due_gaps
from .schema import FORMAT_VERSION, check_file, connect, create_schema, quarantine, salvage

__all__ = ["FORMAT_VERSION", "KINDS", "Spool", "SpoolRow"]

log = logging.getLogger("edgekit.spool")

KINDS = ("points", "features", "event", "waveform", "gap")
_INSERT = "INSERT INTO records(stream, seq, kind, ts, size, crc, blob) VALUES (?, ?, ?, ?, ?, ?, ?)"
_UPSERT_STREAM = (
    "INSERT INTO streams(stream, last_seq, kinds) VALUES (?, ?, ?) "
    "ON CONFLICT(stream) DO UPDATE SET last_seq = excluded.last_seq, kinds = excluded.kinds")


P = ParamSpec("P")
R = TypeVar("R")


def _recovering(fn: Callable[Concatenate[Spool, P], R]) -> Callable[Concatenate[Spool, P], R]:
    """On :class:`SpoolCorrupt`, quarantine the file (if a fresh check confirms) before re-raising."""

    @functools.wraps(fn)
    def wrapper(self: Spool, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(self, *args, **kwargs)
        except SpoolCorrupt as exc:
            raise self._recover(exc) from exc

    return wrapper


@dataclass(frozen=True, slots=True)
class SpoolRow:
    """One stored batch as handed to an uplink."""

    stream: str
    seq: int
    kind: str
    blob: bytes
    ts: float
    epoch: str


class Spool:
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
        self._prune_todo: set[str] = set()
        self._disk_low = False
        self._disk_checked_at = 0.0
        self._appends_since_disk_check = 0
        self._counters: dict[str, Any] = {
            "appended": 0, "appended_bytes": 0, "unrouted": 0, "dropped": {}, "gap_records": 0,
            "quarantined": 0, "blocked": 0, "pruned": 0, "errors": {},
        }
        self.epoch = ""
        self._ingest, self._delivery = self._open()
        try:
            self._load()
            with self._ingest_lock:
                self._seal_gaps(force=True)
        except sqlite3.DatabaseError as exc:  # damage the open check did not see (or it was off)
            if not _is_corruption(exc):
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
                if not _is_corruption(exc):
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
        return conn, connect(self.path, self.cfg)

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
            conn.execute(_INSERT, (gs, 1, "gap", now, len(blob), zlib.crc32(blob), blob))
            conn.execute(_UPSERT_STREAM, (gs, 1, "gap"))
        conn.execute("COMMIT")
        self._counters["quarantined"] += 1
        self._counters["gap_records"] += len(gaps)
        return conn

    def _reopen_quarantined(self, problem: str) -> None:
        """Quarantine the open file and continue on a new one (caller holds both locks)."""
        self._close_connections()
        self._last.clear()
        self._kinds.clear()
        self._acked.clear()
        self._prune_todo.clear()
        self._ingest = self._quarantine(problem)
        self._delivery = connect(self.path, self.cfg)
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
        c = self._delivery
        self.epoch = str(c.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()[0])
        for stream, last, kinds in c.execute("SELECT stream, last_seq, kinds FROM streams"):
            self._last[stream] = int(last)
            self._kinds[stream] = frozenset(k for k in str(kinds).split(",") if k)
        for uplink, stream, acked in c.execute("SELECT uplink, stream, acked FROM cursors"):
            self._acked[(uplink, stream)] = int(acked)
        rows, nbytes = c.execute("SELECT count(*), coalesce(sum(size), 0) FROM records").fetchone()
        self._rows, self._bytes = int(rows), int(nbytes)
        self._prune_todo = set(self._last)

    # ---- ingest side ------------------------------------------------------------------------

    def append(self, stream: str, kind: str, blob: bytes, ts: float) -> int | None:
        """Admit one record; returns its seq, or ``None`` if the full policy dropped it."""
        return self.append_many([(stream, kind, blob, ts)])[0]

    @_recovering
    def append_many(self, items: Sequence[tuple[str, str, bytes, float]]) -> list[int | None]:
        """Admit a group of records in ONE transaction (one fsync); seq or ``None`` (dropped) per item."""
        self._check_open()
        for stream, kind, blob, _ts in items:
            if not isinstance(stream, str) or not stream:
                raise SpoolError(f"stream must be a non-empty string, got {stream!r}")
            if kind not in KINDS:
                raise SpoolError(f"record kind {kind!r} is not one of {', '.join(KINDS)}")
            if not isinstance(blob, (bytes, bytearray, memoryview)):
                raise SpoolError(f"blob must be bytes, got {type(blob).__name__}")
        if not items:
            return []
        with self._ingest_lock:
            self._check_open()
            now = time.time()
            self._maybe_check_disk(now, len(items))
            try:
                return self._admit(items, now)
            except sqlite3.Error as exc:
                self._rollback(self._ingest)
                raise self._translate(exc, "append") from exc
            except BaseException:  # SpoolFull raised inside the transaction, or anything unexpected
                self._rollback(self._ingest)
                raise

    def _admit(self, items: Sequence[tuple[str, str, bytes, float]], now: float) -> list[int | None]:
        cfg, conn, quota = self.cfg, self._ingest, self.cfg.max_bytes
        if cfg.full_policy == "block":
            need = sum(len(b) for _, k, b, _ in items if k != "gap" and self._routing[k] and len(b) <= quota)
            if need > quota:
                raise SpoolError(f"batch of {need} bytes exceeds the spool quota of {quota} bytes; split it")
            used, limit = self._used_and_limit()
            if need and used + need > limit:
                self._prune_ingest()
                used, limit = self._used_and_limit()
                if used + need > limit:
                    with self._state:
                        self._counters["blocked"] += 1
                    raise SpoolFull(f"spool full ({used} of {limit} bytes used, {need} needed); "
                                    "wait_for_space() and retry")
        conn.execute("BEGIN IMMEDIATE")
        used, limit = self._used_and_limit()
        seqs: dict[str, int] = {}
        kinds: dict[str, frozenset[str]] = {}
        added = removed = added_rows = removed_rows = 0
        drops: dict[str, int] = {}
        unrouted = 0
        pruned = False
        results: list[int | None] = []

        def next_seq(stream: str, kind: str) -> int:
            seq = seqs.get(stream, self._last.get(stream, 0)) + 1
            seqs[stream] = seq
            known = kinds.get(stream, self._kinds.get(stream, frozenset()))
            kinds[stream] = known | {kind}
            return seq

        def drop(stream: str, seq: int, reason: str) -> None:
            note_drop(conn, stream, reason, seq, seq, 1, now)
            drops[reason] = drops.get(reason, 0) + 1
            results.append(None)

        for stream, kind, blob, ts in items:
            seq = next_seq(stream, kind)
            size = len(blob)
            if not self._routing[kind]:
                unrouted += 1
                results.append(seq)
                continue
            if kind != "gap":
                if size > quota:
                    drop(stream, seq, "oversize")
                    continue
                if used + added - removed + size > limit:
                    if cfg.full_policy == "drop_newest":
                        drop(stream, seq, "drop_newest")
                        continue
                    if cfg.full_policy == "block":  # only if the pre-check raced with disk checks
                        raise SpoolFull("spool full; wait_for_space() and retry")
                    if not pruned:
                        n, b = self._prune_in_txn(conn, set(self._last) | set(seqs), None)
                        removed_rows, removed, pruned = removed_rows + n, removed + b, True
                    excess = used + added - removed + size - limit
                    if excess > 0:
                        n, b, by_stream = self._drop_oldest(conn, excess, now)
                        removed_rows, removed = removed_rows + n, removed + b
                        if n:
                            drops["drop_oldest"] = drops.get("drop_oldest", 0) + n
                    if used + added - removed + size > limit:
                        drop(stream, seq, "drop_oldest")
                        continue
            conn.execute(_INSERT, (stream, seq, kind, float(ts), size, zlib.crc32(blob), bytes(blob)))
            added, added_rows = added + size, added_rows + 1
            results.append(seq)
        sealed = take_due_gaps(conn, now, cfg.gap_interval, force=False)
        for gstream, gblob in sealed:
            conn.execute(_INSERT, (gstream, next_seq(gstream, "gap"), "gap", now, len(gblob),
                                   zlib.crc32(gblob), gblob))
            added, added_rows = added + len(gblob), added_rows + 1
        for stream, seq in seqs.items():
            conn.execute(_UPSERT_STREAM, (stream, seq, ",".join(sorted(kinds[stream]))))
        conn.execute("COMMIT")
        with self._state:
            self._last.update(seqs)
            self._kinds.update(kinds)
            self._bytes += added - removed
            self._rows += added_rows - removed_rows
            c = self._counters
            c["appended"] += sum(1 for r in results if r is not None) - unrouted
            c["appended_bytes"] += added
            c["unrouted"] += unrouted
            c["gap_records"] += len(sealed)
            for reason, n in drops.items():
                c["dropped"][reason] = c["dropped"].get(reason, 0) + n
            if removed:
                self._state.notify_all()
        if drops:
            log.warning("spool full: dropped %s (counted in gap records)", drops)
        return results

    def _prune_ingest(self) -> None:
        """Prune everything deletable in its own ingest transaction (block policy under pressure)."""
        conn = self._ingest
        conn.execute("BEGIN IMMEDIATE")
        n, freed = self._prune_in_txn(conn, set(self._last), None)
        with self._state:
            conn.execute("COMMIT")
            self._bytes -= freed
            self._rows -= n
            if n:
                self._state.notify_all()

    def _drop_oldest(self, conn: sqlite3.Connection, excess: int, now: float) -> tuple[int, int, dict[str, int]]:
        """Delete the oldest non-gap rows until ``excess`` bytes are freed; note each drop."""
        freed = n = 0
        by_stream: dict[str, list[int]] = {}
        while freed < excess:
            batch = conn.execute("SELECT id, stream, seq, size FROM records WHERE kind != 'gap' "
                                 "ORDER BY id LIMIT 256").fetchall()
            if not batch:
                break
            victims = []
            for rid, stream, seq, size in batch:
                if freed >= excess:
                    break
                victims.append((rid,))
                by_stream.setdefault(stream, []).append(int(seq))
                freed, n = freed + int(size), n + 1
            conn.executemany("DELETE FROM records WHERE id = ?", victims)
        for stream, seqs_ in by_stream.items():
            note_drop(conn, stream, "drop_oldest", min(seqs_), max(seqs_), len(seqs_), now)
        return n, freed, {s: len(v) for s, v in by_stream.items()}

    def _used_and_limit(self) -> tuple[int, int]:
        with self._state:
            used = self._bytes
            limit = min(self.cfg.max_bytes, used) if self._disk_low else self.cfg.max_bytes
        return used, limit

    def _maybe_check_disk(self, now: float, n: int, force: bool = False) -> None:
        self._appends_since_disk_check += n
        if not (force or self._appends_since_disk_check >= self.cfg.disk_check_every
                or now - self._disk_checked_at >= self.cfg.disk_check_interval):
            return
        self._appends_since_disk_check = 0
        self._disk_checked_at = now
        try:
            free = shutil.disk_usage(self.path.parent).free
        except OSError as exc:
            log.warning("cannot read free space of %s: %s", self.path.parent, exc)
            return
        low = free < self.cfg.reserve_free_bytes
        if low and not self._disk_low:
            log.error("free disk %d bytes < reserve %d: spool %s stops growing (policy %s)",
                      free, self.cfg.reserve_free_bytes, self.path, self.cfg.full_policy)
        with self._state:
            self._disk_low = low

    @_recovering
    def flush_gaps(self, force: bool = True) -> int:
        """Seal open gaps into gap records now (all of them if ``force``); returns how many."""
        self._check_open()
        with self._ingest_lock:
            try:
                return self._seal_gaps(force)
            except sqlite3.Error as exc:
                self._rollback(self._ingest)
                raise self._translate(exc, "flush_gaps") from exc
            except BaseException:
                self._rollback(self._ingest)
                raise

    def _seal_gaps(self, force: bool) -> int:
        """Caller holds the ingest lock."""
        conn, now = self._ingest, time.time()
        conn.execute("BEGIN IMMEDIATE")
        sealed = take_due_gaps(conn, now, self.cfg.gap_interval, force)
        seqs: dict[str, int] = {}
        added = 0
        for gstream, blob in sealed:
            seq = seqs.get(gstream, self._last.get(gstream, 0)) + 1
            seqs[gstream] = seq
            conn.execute(_INSERT, (gstream, seq, "gap", now, len(blob), zlib.crc32(blob), blob))
            conn.execute(_UPSERT_STREAM, (gstream, seq, "gap"))
            added += len(blob)
        conn.execute("COMMIT")
        with self._state:
            self._last.update(seqs)
            for s in seqs:
                self._kinds[s] = frozenset({"gap"}) | self._kinds.get(s, frozenset())
            self._bytes += added
            self._rows += len(sealed)
            self._counters["gap_records"] += len(sealed)
        return len(sealed)

    def wait_for_space(self, timeout: float, nbytes: int = 1) -> bool:
        """Block (worker thread) until ``nbytes`` more would fit, at most ``timeout`` s; True if they do."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_open()
            self._maybe_check_disk(time.time(), 0, force=True)
            used, limit = self._used_and_limit()
            if used + nbytes <= limit:
                return True
            self.prune(all_streams=True)
            used, limit = self._used_and_limit()
            if used + nbytes <= limit:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._state:
                self._state.wait(min(remaining, 0.25))

    # ---- delivery side ----------------------------------------------------------------------

    @_recovering
    def pending(self, uplink: str, limit: int = 256, max_bytes: int = 8 << 20,
                after: Mapping[str, int] | None = None) -> list[SpoolRow]:
        """Rows not yet acked by ``uplink`` (oldest first), at most ``limit`` rows / ``max_bytes``.

        ``after[stream]`` skips seqs up to that value (rows already in flight). At least one row is
        returned when any is pending, even if it alone exceeds ``max_bytes``.
        """
        kinds = self._uplink_kinds(uplink)
        self._seal_due_gaps_nowait()
        with self._delivery_lock:
            self._check_open()
            conn = self._delivery
            try:
                conn.execute("BEGIN")
                try:
                    cands = self._candidates(conn, self._streams_for(uplink, kinds, after), kinds, limit)
                    chosen: list[tuple[int, str, int, str, int, float]] = []
                    total = 0
                    for cand in cands:
                        if len(chosen) >= limit or (chosen and total + cand[4] > max_bytes):
                            break
                        chosen.append(cand)
                        total += cand[4]
                    blobs: dict[int, bytes] = {}
                    bad: set[int] = set()
                    for i in range(0, len(chosen), 500):
                        ids = [c[0] for c in chosen[i:i + 500]]
                        q = f"SELECT id, blob, crc FROM records WHERE id IN ({','.join('?' * len(ids))})"
                        for r, b, crc in conn.execute(q, ids):
                            blobs[int(r)] = bytes(b)
                            if zlib.crc32(b) != crc:
                                bad.add(int(r))
                finally:
                    conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback(conn)
                raise self._translate(exc, "pending") from exc
        if bad:
            self._drop_damaged([(r, s, q) for r, s, q, *_ in chosen if r in bad])
        return [SpoolRow(s, q, k, blobs[r], t, self.epoch) for r, s, q, k, _, t in chosen
                if r in blobs and r not in bad]

    @staticmethod
    def _candidates(conn: sqlite3.Connection, streams: list[tuple[str, int, int, frozenset[str]]],
                    kinds: frozenset[str], limit: int) -> list[tuple[int, str, int, str, int, float]]:
        """The ``limit`` oldest (smallest id) pending rows over all ``streams``, sorted by id.

        Reads a share of ``limit`` per stream first and reads more only from a stream whose share
        ran out before the current cut-off id — so many streams do not cost ``streams x limit`` rows.
        """
        if not streams or limit <= 0:
            return []
        share = max(8, -(-2 * limit // len(streams)))
        state = {stream: (start, skinds) for stream, start, _last, skinds in streams}
        todo = {stream: share for stream in state}
        cands: list[tuple[int, str, int, str, int, float]] = []
        while todo:
            more: dict[str, int] = {}
            for stream, n in todo.items():
                start, skinds = state[stream]
                sql = "SELECT id, seq, kind, size, ts FROM records WHERE stream = ? AND seq > ?"
                args: list[Any] = [stream, start]
                if not skinds <= kinds:
                    sql += f" AND kind IN ({','.join('?' * len(kinds))})"
                    args.extend(sorted(kinds))
                sql += " ORDER BY seq LIMIT ?"
                args.append(n)
                got = [(rid, stream, seq, kind, size, ts) for rid, seq, kind, size, ts in conn.execute(sql, args)]
                cands.extend(got)
                if len(got) == n:  # the stream may hold more: remember where its share ended
                    state[stream] = (got[-1][2], skinds)
                    more[stream] = got[-1][0]
            cands.sort()
            del cands[limit:]
            cutoff = cands[-1][0] if len(cands) == limit else None
            # a stream whose share ended below the cut-off may have more rows that belong in
            todo = {s: min(limit, 4 * todo[s]) for s, last_id in more.items() if cutoff is None or last_id < cutoff}
        return cands

    def _drop_damaged(self, rows: list[tuple[int, str, int]]) -> None:
        """Rows whose bytes no longer match their CRC (damage SQLite cannot see): drop and gap them."""
        with self._ingest_lock:
            self._check_open()
            conn, now = self._ingest, time.time()
            n = freed = 0
            try:
                conn.execute("BEGIN IMMEDIATE")
                for rid, stream, seq in rows:
                    got = conn.execute("DELETE FROM records WHERE id = ? RETURNING size", (rid,)).fetchone()
                    if got is not None:  # another call may have dropped it already
                        note_drop(conn, stream, "corrupt", seq, seq, 1, now)
                        n, freed = n + 1, freed + int(got[0])
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback(conn)
                raise self._translate(exc, "pending") from exc
            with self._state:
                self._bytes -= freed
                self._rows -= n
                dropped = self._counters["dropped"]
                dropped["corrupt"] = dropped.get("corrupt", 0) + n
        if n:
            log.error("spool %s: %d record(s) failed their CRC and were dropped (reported as gap records, "
                      "reason 'corrupt'): %s", self.path, n, [(s, q) for _, s, q in rows][:10])

    @_recovering
    def ack(self, uplink: str, stream: str, seq: int) -> None:
        """Cumulative ack: ``uplink`` has everything of ``stream`` up to ``seq``; prunes a bounded chunk."""
        self._uplink_kinds(uplink)
        with self._delivery_lock:
            self._check_open()
            with self._state:
                last = self._last.get(stream)
                current = self._acked.get((uplink, stream), 0)
            if last is None or seq > last or seq < 0:
                raise SpoolError(f"ack for {stream!r} seq {seq} from {uplink!r}: the spool (epoch {self.epoch}) "
                                 f"assigned only up to {last or 0} in that stream")
            if seq <= current:
                return
            conn = self._delivery
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT INTO cursors(uplink, stream, acked) VALUES (?, ?, ?) ON CONFLICT(uplink, stream) "
                             "DO UPDATE SET acked = max(acked, excluded.acked)", (uplink, stream, seq))
                with self._state:
                    self._prune_todo.add(stream)
                    todo = set(self._prune_todo)
                acked = dict(self._acked)
                acked[(uplink, stream)] = seq
                n, freed, done = self._prune_chunk(conn, todo, acked)
                self._commit_prune(conn, n, freed, done)
                with self._state:
                    self._acked[(uplink, stream)] = max(seq, self._acked.get((uplink, stream), 0))
            except sqlite3.Error as exc:
                self._rollback(conn)
                raise self._translate(exc, "ack") from exc

    @_recovering
    def prune(self, all_streams: bool = False) -> int:
        """Delete up to ``prune_chunk`` fully acked rows; returns how many (0 when nothing is left)."""
        with self._delivery_lock:
            self._check_open()
            conn = self._delivery
            with self._state:
                todo = set(self._last) if all_streams else set(self._prune_todo)
                acked = dict(self._acked)
            if not todo:
                return 0
            try:
                conn.execute("BEGIN IMMEDIATE")
                n, freed, done = self._prune_chunk(conn, todo, acked)
                self._commit_prune(conn, n, freed, done)
            except sqlite3.Error as exc:
                self._rollback(conn)
                raise self._translate(exc, "prune") from exc
            return n

    def _commit_prune(self, conn: sqlite3.Connection, n: int, freed: int, done: set[str]) -> None:
        # the state lock spans COMMIT so the ingest side never sees the rows gone but the bytes not
        with self._state:
            conn.execute("COMMIT")
            self._bytes -= freed
            self._rows -= n
            self._counters["pruned"] += n
            self._prune_todo -= done
            if n:
                self._state.notify_all()

    def _floor(self, stream: str, kind: str, acked: Mapping[tuple[str, str], int]) -> int:
        ups = self._routing[kind]
        if not ups:
            return self._last.get(stream, 0)
        return min(acked.get((u, stream), 0) for u in ups)

    def _prune_chunk(self, conn: sqlite3.Connection, streams: set[str],
                     acked: Mapping[tuple[str, str], int]) -> tuple[int, int, set[str]]:
        """Delete at most ``prune_chunk`` deletable rows of ``streams``; returns (rows, bytes, finished)."""
        budget, n, freed, done = self.cfg.prune_chunk, 0, 0, set()
        for stream in sorted(streams):
            finished = True
            for kind in sorted(self._kinds.get(stream, frozenset())):
                floor = self._floor(stream, kind, acked)
                if floor <= 0:
                    continue
                if budget <= 0:
                    finished = False
                    break
                sizes = conn.execute(
                    "DELETE FROM records WHERE id IN (SELECT id FROM records WHERE stream = ? AND seq <= ? "
                    "AND kind = ? ORDER BY seq LIMIT ?) RETURNING size", (stream, floor, kind, budget)).fetchall()
                n, freed, budget = n + len(sizes), freed + sum(s for (s,) in sizes), budget - len(sizes)
                if budget <= 0:
                    finished = False
            if finished:
                done.add(stream)
        return n, freed, done

    def _prune_in_txn(self, conn: sqlite3.Connection, streams: set[str],
                      acked: Mapping[tuple[str, str], int] | None) -> tuple[int, int]:
        """Unbounded prune inside the caller's ingest transaction (only under quota pressure)."""
        if acked is None:
            acked = {(u, s): int(a) for u, s, a in conn.execute("SELECT uplink, stream, acked FROM cursors")}
        n = freed = 0
        for stream in streams:
            for kind in self._kinds.get(stream, frozenset()):
                floor = self._floor(stream, kind, acked)
                if floor > 0:
                    sizes = conn.execute("DELETE FROM records WHERE stream = ? AND seq <= ? AND kind = ? RETURNING size",
                                         (stream, floor, kind)).fetchall()
                    n, freed = n + len(sizes), freed + sum(s for (s,) in sizes)
        with self._state:
            self._counters["pruned"] += n
        return n, freed

    def first_unacked(self, uplink: str) -> dict[str, int]:
        """Per stream routed to ``uplink``: the first seq it has not acknowledged (for HELLO)."""
        kinds = self._uplink_kinds(uplink)
        with self._state:
            return {s: self._acked.get((uplink, s), 0) + 1
                    for s, ks in self._kinds.items() if ks & kinds}

    @_recovering
    def backlog(self, uplink: str) -> tuple[int, int, float | None]:
        """(rows, bytes, oldest ts) not yet acked by ``uplink``; cost grows with the backlog (index only)."""
        kinds = self._uplink_kinds(uplink)
        rows = nbytes = 0
        oldest: float | None = None
        with self._delivery_lock:
            self._check_open()
            conn = self._delivery
            try:
                conn.execute("BEGIN")
                try:
                    for stream, start, _last, _skinds in self._streams_for(uplink, kinds, None):
                        q = ("SELECT count(*), coalesce(sum(size), 0), min(ts) FROM records WHERE stream = ? "
                             f"AND seq > ? AND kind IN ({','.join('?' * len(kinds))})")
                        r, b, t = conn.execute(q, [stream, start, *sorted(kinds)]).fetchone()
                        rows, nbytes = rows + int(r), nbytes + int(b)
                        if t is not None and (oldest is None or t < oldest):
                            oldest = float(t)
                finally:
                    conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback(conn)
                raise self._translate(exc, "backlog") from exc
        return rows, nbytes, oldest

    def _streams_for(self, uplink: str, kinds: frozenset[str],
                     after: Mapping[str, int] | None) -> list[tuple[str, int, int, frozenset[str]]]:
        out = []
        with self._state:
            for stream, last in self._last.items():
                skinds = self._kinds.get(stream, frozenset())
                if not skinds & kinds:
                    continue
                start = self._acked.get((uplink, stream), 0)
                if after and stream in after:
                    start = max(start, int(after[stream]))
                if start < last:
                    out.append((stream, start, last, skinds))
        return out

    def _seal_due_gaps_nowait(self) -> None:
        """Seal due gaps from the delivery side if the ingest side is idle (never waits for it)."""
        if not self._ingest_lock.acquire(blocking=False):
            return
        try:
            if self._closed:
                return
            if due_gaps_exist(self._ingest, time.time(), self.cfg.gap_interval):
                self._seal_gaps(force=False)
        except sqlite3.Error as exc:
            self._rollback(self._ingest)
            self._count_error(exc)
            log.error("spool: sealing gap records failed: %s", exc)
        finally:
            self._ingest_lock.release()

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
                "rows": self._rows, "bytes": self._bytes, "max_bytes": self.cfg.max_bytes,
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
                    dup = conn.execute("SELECT stream, seq FROM records GROUP BY stream, seq "
                                       "HAVING count(*) > 1 LIMIT 1").fetchone()
                    if dup:
                        problems.append(f"duplicate seq {dup}")
                    beyond = conn.execute(
                        "SELECT r.stream, r.seq FROM records r LEFT JOIN streams s ON s.stream = r.stream "
                        "WHERE s.last_seq IS NULL OR r.seq > s.last_seq OR r.seq < 1 LIMIT 1").fetchone()
                    if beyond:
                        problems.append(f"row beyond its stream's last seq {beyond}")
                    for rid, crc, size, blob in conn.execute("SELECT id, crc, size, blob FROM records"):
                        if zlib.crc32(blob) != crc or len(blob) != size:
                            problems.append(f"row id {rid}: CRC/size mismatch")
                            break
            except sqlite3.DatabaseError as exc:
                problems.append(f"{type(exc).__name__}: {exc}")
        for p in problems:
            log.error("spool %s integrity: %s", self.path, p)
        return not problems

    def close(self) -> None:
        """Seal open gaps and close both connections (idempotent; never raises on SQLite errors)."""
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
            self._state.notify_all()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Spool({str(self.path)!r}, epoch={self.epoch[:8]}, rows={self._rows}, bytes={self._bytes}, "
                f"policy={self.cfg.full_policy}{', closed' if self._closed else ''})")

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


def _is_corruption(exc: sqlite3.Error) -> bool:
    """A damaged file (quarantine it) as opposed to a busy, locked or unreadable one (report it)."""
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    text = str(exc)
    return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in text or "not a database" in text
