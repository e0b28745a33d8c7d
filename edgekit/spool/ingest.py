"""The ingest side of the spool: admission with seqs, the full policy, drops counted as gaps.

Runs on the ingest connection under the ingest lock (the pipeline worker thread). Design and
invariants: see the :mod:`edgekit.spool` package docstring.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
import zlib
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from ..codec import pack_segment
from ..errors import SpoolError, SpoolFull
from .base import INSERT, KINDS, UPSERT_STREAM, SpoolBase, log, recovering
from .gaps import note_drop, take_due_gaps
from .pipeline import Admission, GroupCommitter

__all__ = ["IngestSide"]

_Packed = tuple[tuple[int, ...], str, str, float, bytes, "int | None", int]
"""A segment encoded before the transaction: (item indexes, stream, kind, ts, blob, crc or None, size)."""


@dataclass(frozen=True, slots=True)
class _Plan:
    """One ``append_many`` call prepared outside the lock (see ``IngestSide._plan``)."""

    items: Sequence[tuple[str, str, bytes, float]]
    ranks: list[int]  # per item: its position among the call's items of its stream (1, 2, …)
    packed: list[_Packed]  # the segments if every item is admitted
    fits_all: bool  # every kind routed and no single record above the quota
    quota_bytes: int  # what admitting every item adds to the quota count (gap records exempt)


def _encode(blobs: Sequence[bytes], kind: str) -> tuple[bytes, int | None]:
    """A planned segment's blob and its CRC-32 — computed here, outside the lock, for a segment of
    several records or over 4 KiB; ``None``: cheap enough to compute inside the transaction."""
    seg = pack_segment(blobs, kind)
    return seg, (zlib.crc32(seg) if len(blobs) > 1 or len(seg) > 4096 else None)


class IngestSide(SpoolBase):
    """``append``, ``append_many``, ``flush_gaps``, ``wait_for_space``."""

    def append(self, stream: str, kind: str, blob: bytes, ts: float) -> int | None:
        """Admit one record; returns its seq, or ``None`` if the full policy dropped it."""
        return self.append_many([(stream, kind, blob, ts)])[0]

    @recovering
    def append_many(self, items: Sequence[tuple[str, str, bytes, float]]) -> list[int | None]:
        """Admit a group of records in ONE transaction (one fsync); seq or ``None`` (dropped) per item.

        Returns when committed. Earlier :meth:`submit` calls (any thread) are committed first."""
        self._check_open()
        if not items:
            return []
        self._validate(items)
        committer = self._committer
        if committer is not None and not committer.in_committer():
            committer.flush()
        return self._append_validated(items)

    def submit(self, items: Sequence[tuple[str, str, bytes, float | None]],
               done: Callable[[Admission], object] | None = None) -> Admission:
        """Queue a group of records for the committer thread; returns an :class:`Admission` at once.

        Pipelined group commit (package docstring, "Pipelined admission"): the records are admitted
        when their transaction commits — ``Admission.result()`` gives the seqs then — together with
        whatever else was queued meanwhile. ``ts`` ``None`` = the commit time. ``done(admission)``
        is called in the committer thread once it is settled (committed or failed). Blocks only
        while ``submit_pending_bytes`` are queued. Invalid items raise :class:`SpoolError` here."""
        self._check_open()
        nbytes = self._validate(items, allow_none_ts=True)
        if self.cfg.full_policy == "block":
            quota = self.cfg.max_bytes
            need = sum(len(b) for _, k, b, _ in items if k != "gap" and self._routing[k] and len(b) <= quota)
            if need > quota:
                raise SpoolError(f"batch of {need} bytes exceeds the spool quota of {quota} bytes; split it")
        adm = Admission(items, nbytes, any(t is None for _, _, _, t in items), done)
        if not items:
            adm._settle([], None)
            return adm
        self._ensure_committer().submit(adm)
        with self._state:
            self._counters["submissions"] += 1
        return adm

    def submit_ack(self, uplink: str, stream: str, seq: int) -> None:
        """:meth:`ack` applied by the committer thread (pipelined): returns at once, never waits
        for a commit in flight. Checked here like ``ack`` (bad seq: :class:`SpoolError`); queued
        acks of one (uplink, stream) are merged (cumulative). Until applied the records count as
        unacknowledged; a crash before that loses only the ack (the records are sent again and the
        collector drops the duplicates). :meth:`flush` waits for queued acks too."""
        self._check_open()
        epoch = self.epoch  # applied only in this epoch (a quarantine may come before the committer)
        self._check_ack(uplink, stream, seq)
        self._ensure_committer().submit_ack(uplink, stream, seq, epoch)

    def _ensure_committer(self) -> GroupCommitter:
        with self._committer_lock:
            self._check_open()
            if self._submit_closed:
                raise SpoolError(f"spool {self.path} is closed")
            committer = self._committer
            if committer is None:
                committer = self._committer = GroupCommitter(
                    self._append_submitted, self.ack, lambda timeout, n: self.wait_for_space(timeout, n),
                    self.cfg.submit_pending_bytes, min(self.cfg.segment_max_bytes, self.cfg.max_bytes),
                    f"spool-commit:{self.path.name}")
            return committer

    def _append_submitted(self, items: Sequence[tuple[str, str, bytes, float]]) -> list[int | None]:
        """The committer's transaction: ``append_many``'s, counted."""
        seqs = self._append_validated(items)
        with self._state:
            self._counters["submit_transactions"] += 1
        return seqs

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every :meth:`submit` so far is settled (committed or failed); False on timeout."""
        committer = self._committer
        return True if committer is None else committer.flush(timeout)

    @staticmethod
    def _validate(items: Sequence[tuple[str, str, Any, Any]], allow_none_ts: bool = False) -> int:
        """Check every item's stream, kind, blob type (and ts); returns the blob bytes."""
        nbytes = 0
        for stream, kind, blob, ts in items:
            if not isinstance(stream, str) or not stream:
                raise SpoolError(f"stream must be a non-empty string, got {stream!r}")
            if kind not in KINDS:
                raise SpoolError(f"record kind {kind!r} is not one of {', '.join(KINDS)}")
            if type(blob) is not bytes and not isinstance(blob, (bytes, bytearray, memoryview)):
                raise SpoolError(f"blob must be bytes, got {type(blob).__name__}")
            if type(ts) is not float and not (ts is None and allow_none_ts):
                try:
                    float(ts)
                except (TypeError, ValueError):
                    raise SpoolError(f"ts must be a unix time in seconds, got {ts!r}") from None
            nbytes += len(blob)
        return nbytes

    @recovering
    def _append_validated(self, items: Sequence[tuple[str, str, bytes, float]]) -> list[int | None]:
        """``append_many`` after validation: one transaction (the committer thread calls this too)."""
        self._check_open()
        # grouped into segments and encoded (and CRCed) before taking the lock, assuming every item
        # is admitted; if the full policy drops some, _admit groups what is left again
        plan = self._plan(items)
        with self._ingest_lock:
            self._check_open()
            now = time.time()
            self._maybe_check_disk(now, len(items))
            try:
                if plan.fits_all:
                    used, limit = self._used_and_limit()
                    if used + plan.quota_bytes <= limit:  # nothing to drop, block or prune: the short way
                        return self._admit_all(plan, now)
                return self._admit(items, now, plan.packed)
            except sqlite3.Error as exc:
                self._rollback(self._ingest)
                raise self._translate(exc, "append") from exc
            except BaseException:  # SpoolFull raised inside the transaction, or anything unexpected
                self._rollback(self._ingest)
                raise

    def _plan(self, items: Sequence[tuple[str, str, bytes, float]]) -> _Plan:
        """Build the segments of validated ``items`` as if every one were admitted.

        One pass: per stream, a run continues while the kind and ts stay the same, the seqs stay
        consecutive and the run stays within ``segment_max_bytes`` (the rule of :meth:`_segments`)."""
        return self._plan_fast(items) or self._plan_loop(items)

    def _plan_fast(self, items: Sequence[tuple[str, str, bytes, float]]) -> _Plan | None:
        """:meth:`_plan` for the common case, or ``None`` where it does not apply (then the loop)."""
        routing, quota, cap = self._routing, self.cfg.max_bytes, self.cfg.segment_max_bytes
        count = len(items)
        if count > 1:
            # the common case, a transaction of one stream's records (one kind and ts, all routed,
            # each within the quota): checked and cut into runs with C-level calls, the same runs
            # as the loop below
            streams, kinds, blobs_all, tss = zip(*items)
            stream0, kind0, ts0 = streams[0], kinds[0], tss[0]
            if (kind0 != "gap" and type(ts0) is float and ts0 == ts0 and routing[kind0]
                    and streams.count(stream0) == count and kinds.count(kind0) == count
                    and tss.count(ts0) == count):
                lens = list(map(len, blobs_all))
                if max(lens) <= quota:
                    cum = [0, *accumulate(lens)]
                    fast: list[_Packed] = []
                    start = 0
                    while start < count:
                        end = max(start + 1, bisect_right(cum, cum[start] + cap) - 1)
                        seg, crc = _encode(blobs_all[start:end], kind0)
                        fast.append((tuple(range(start, end)), stream0, kind0, ts0, seg, crc, cum[end] - cum[start]))
                        start = end
                    return _Plan(items, list(range(1, count + 1)), fast, True, cum[-1])
        return None

    def _plan_loop(self, items: Sequence[tuple[str, str, bytes, float]]) -> _Plan:
        """:meth:`_plan` by the general per-item loop (any streams, kinds and ts)."""
        routing, quota, cap = self._routing, self.cfg.max_bytes, self.cfg.segment_max_bytes
        ranks: list[int] = []
        seqs: dict[str, int] = {}
        runs: list[list[Any]] = []  # [stream, kind, ts, blobs, size, idxs, next rank]
        open_runs: dict[str, list[Any]] = {}
        fits_all = True
        quota_bytes = 0
        for i, (stream, kind, blob, ts) in enumerate(items):
            rank = seqs.get(stream, 0) + 1
            seqs[stream] = rank
            ranks.append(rank)
            if not routing[kind]:
                fits_all = False
                continue
            n = len(blob)
            if kind != "gap":
                quota_bytes += n
                if n > quota:
                    fits_all = False
            run = open_runs.get(stream)
            ts = float(ts)
            if run is not None and run[6] == rank and run[1] == kind and run[2] == ts and run[4] + n <= cap:
                run[3].append(blob)
                run[5].append(i)
                run[4] += n
                run[6] = rank + 1
                continue
            run = [stream, kind, ts, [blob], n, [i], rank + 1]
            open_runs[stream] = run
            runs.append(run)
        packed: list[_Packed] = []
        for stream, kind, ts, blobs, size, idxs, _next in runs:
            seg, crc = _encode(blobs, kind)
            packed.append((tuple(idxs), stream, kind, ts, seg, crc, size))
        return _Plan(items, ranks, packed, fits_all, quota_bytes)

    def _admit_all(self, plan: _Plan, now: float) -> list[int | None]:
        """Every item is admitted (routed, fits the quota): insert the planned segments as they are."""
        conn = self._ingest
        conn.execute("BEGIN IMMEDIATE")
        last, ranks = self._last, plan.ranks
        rows = []
        added = 0
        seqs: dict[str, int] = {}
        kinds: dict[str, frozenset[str]] = {}
        for idxs, stream, kind, ts, seg, crc, size in plan.packed:
            base = last.get(stream, 0)
            end = base + ranks[idxs[-1]]
            rows.append((stream, base + ranks[idxs[0]], end, kind, ts, size, zlib.crc32(seg) if crc is None else crc,
                         seg))
            added += size
            seqs[stream] = end  # runs of one stream come in seq order
            known = kinds.get(stream) or self._kinds.get(stream, frozenset())
            kinds[stream] = known if kind in known else known | {kind}
        conn.executemany(INSERT, rows)
        bases = {stream: last.get(stream, 0) for stream in seqs}
        results: list[int | None] = [bases[stream] + rank for (stream, _k, _b, _t), rank in zip(plan.items, ranks)]
        sealed, gaps_open, gap_bytes = self._seal_due_in_txn(conn, now, seqs, kinds)
        added += gap_bytes
        for stream, seq in seqs.items():
            conn.execute(UPSERT_STREAM, (stream, seq, ",".join(sorted(kinds[stream]))))
        conn.execute("COMMIT")
        self._gaps_open = gaps_open  # only now: a rolled-back seal leaves its open gaps in place
        self._blocked_need = 0
        with self._state:
            self._last.update(seqs)
            self._kinds.update(kinds)
            self._hot_put(rows)
            self._bytes += added
            self._rows += len(plan.items) + len(sealed)
            self._segments_stored += len(rows) + len(sealed)
            c = self._counters
            c["appended"] += len(plan.items)
            c["appended_bytes"] += added
            c["gaps"] += len(sealed)
        return results

    def _seal_due_in_txn(self, conn: sqlite3.Connection, now: float, seqs: dict[str, int],
                         kinds: dict[str, frozenset[str]]) -> tuple[list[tuple[str, bytes]], bool, int]:
        """Inside an admitting transaction: seal the open gaps that are due into gap records, each
        taking the next seq of its stream (noted in ``seqs``/``kinds`` like the call's own records).
        Returns the sealed gaps, whether gaps stay open, and the bytes inserted."""
        if not self._gaps_open:
            return [], False, 0
        sealed = take_due_gaps(conn, now, self.cfg.gap_interval, force=False)
        gaps_open = conn.execute("SELECT 1 FROM open_gaps LIMIT 1").fetchone() is not None
        nbytes = 0
        for gstream, gblob in sealed:
            gseq = (seqs.get(gstream) or self._last.get(gstream, 0)) + 1
            seqs[gstream] = gseq
            kinds[gstream] = (kinds.get(gstream) or self._kinds.get(gstream, frozenset())) | {"gap"}
            conn.execute(INSERT, (gstream, gseq, gseq, "gap", now, len(gblob), zlib.crc32(gblob), gblob))
            nbytes += len(gblob)
        return sealed, gaps_open, nbytes

    def _admit(self, items: Sequence[tuple[str, str, bytes, float]], now: float,
               prepacked: list[_Packed]) -> list[int | None]:
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
                    self._blocked_need = need
                    raise SpoolFull(f"spool full ({used} of {limit} bytes used, {need} needed); "
                                    "wait_for_space() and retry")
        self._blocked_need = 0
        conn.execute("BEGIN IMMEDIATE")
        used, limit = self._used_and_limit()
        seqs: dict[str, int] = {}
        kinds: dict[str, frozenset[str]] = {}
        added = removed = added_rows = removed_rows = removed_segments = pruned_rows = 0
        drops: dict[str, int] = {}
        unrouted = 0
        pruned = False
        results: list[int | None] = []

        last, known_kinds, routing = self._last, self._kinds, self._routing

        def next_seq(stream: str, kind: str) -> int:
            seq = seqs.get(stream) or last.get(stream, 0)
            seq += 1
            seqs[stream] = seq
            known = kinds.get(stream) or known_kinds.get(stream, frozenset())
            if kind not in known:
                known = known | {kind}
            kinds[stream] = known
            return seq

        def drop(stream: str, seq: int, reason: str) -> None:
            note_drop(conn, stream, reason, seq, seq, 1, now)
            self._gaps_open = True
            drops[reason] = drops.get(reason, 0) + 1
            results.append(None)

        admitted: list[tuple[str, int, str, float, bytes, int]] = []
        for index, (stream, kind, blob, ts) in enumerate(items):
            seq = next_seq(stream, kind)
            size = len(blob)
            if not routing[kind]:
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
                        n, b, nseg = self._prune_in_txn(conn, set(self._last) | set(seqs), None)
                        removed_rows, removed, pruned = removed_rows + n, removed + b, True
                        pruned_rows = n
                        removed_segments += nseg
                    excess = used + added - removed + size - limit
                    if excess > 0:
                        n, b, nseg, lost = self._drop_oldest(conn, excess, now)
                        removed_rows, removed, removed_segments = removed_rows + n, removed + b, removed_segments + nseg
                        if lost:
                            drops["drop_oldest"] = drops.get("drop_oldest", 0) + lost
                    if used + added - removed + size > limit:
                        drop(stream, seq, "drop_oldest")
                        continue
            admitted.append((stream, seq, kind, float(ts), blob, index))
            added, added_rows = added + size, added_rows + 1
            results.append(seq)
        segments = 0
        if len(admitted) == len(items):  # nothing dropped or unrouted: the segments encoded before
            rows = [(stream, results[idxs[0]], results[idxs[-1]], kind, ts, size,
                     zlib.crc32(seg) if crc is None else crc, seg)
                    for idxs, stream, kind, ts, seg, crc, size in prepacked]
        else:
            cache = {p[0]: p for p in prepacked}
            rows = []
            for stream, first, kind, ts, blobs, idxs in self._segments(admitted):
                hit = cache.get(tuple(idxs))
                seg = pack_segment(blobs, kind) if hit is None else hit[4]
                rows.append((stream, first, first + len(blobs) - 1, kind, ts, sum(len(b) for b in blobs),
                             zlib.crc32(seg), seg))
        conn.executemany(INSERT, rows)
        segments = len(rows)
        sealed, gaps_open, gap_bytes = self._seal_due_in_txn(conn, now, seqs, kinds)
        added, added_rows, segments = added + gap_bytes, added_rows + len(sealed), segments + len(sealed)
        for stream, seq in seqs.items():
            conn.execute(UPSERT_STREAM, (stream, seq, ",".join(sorted(kinds[stream]))))
        conn.execute("COMMIT")
        self._gaps_open = gaps_open  # only now: a rolled-back seal leaves its open gaps in place
        with self._state:
            self._last.update(seqs)
            self._kinds.update(kinds)
            self._hot_put(rows)
            self._bytes += added - removed
            self._rows += added_rows - removed_rows
            self._segments_stored += segments - removed_segments
            c = self._counters
            c["appended"] += sum(1 for r in results if r is not None) - unrouted
            c["appended_bytes"] += added
            c["unrouted"] += unrouted
            c["gaps"] += len(sealed)
            c["pruned"] += pruned_rows  # counted only now: a rolled-back prune deleted nothing
            for reason, n in drops.items():
                c["dropped"][reason] = c["dropped"].get(reason, 0) + n
            if removed:
                self._state.notify_all()
        if drops:
            log.warning("spool full: dropped %s (counted in gap records)", drops)
        return results

    def _segments(self, admitted: list[tuple[str, int, str, float, bytes, int]]
                  ) -> list[tuple[str, int, str, float, list[bytes], list[int]]]:
        """Group admitted records into segments: per stream, runs of consecutive seqs with the same
        kind and ts, at most ``segment_max_bytes`` each (a larger record is a segment alone).
        Returned in the order of each segment's first record in the call."""
        cap = self.cfg.segment_max_bytes
        open_runs: dict[str, tuple[int, list[Any]]] = {}  # stream -> (index in out, [stream, first, kind, ts, blobs, next, size])
        out: list[list[Any]] = []
        for stream, seq, kind, ts, blob, index in admitted:
            run = open_runs.get(stream)
            if run is not None:
                seg = run[1]
                if seg[5] == seq and seg[2] == kind and seg[3] == ts and seg[6] + len(blob) <= cap:
                    seg[4].append(blob)
                    seg[7].append(index)
                    seg[5], seg[6] = seq + 1, seg[6] + len(blob)
                    continue
            seg = [stream, seq, kind, ts, [blob], seq + 1, len(blob), [index]]
            open_runs[stream] = (len(out), seg)
            out.append(seg)
        return [(seg[0], seg[1], seg[2], seg[3], seg[4], seg[7]) for seg in out]

    def _prune_ingest(self) -> None:
        """Prune everything deletable in its own ingest transaction (block policy under pressure)."""
        conn = self._ingest
        conn.execute("BEGIN IMMEDIATE")
        n, freed, nseg = self._prune_in_txn(conn, set(self._last), None)
        with self._state:
            conn.execute("COMMIT")
            self._bytes -= freed
            self._rows -= n
            self._segments_stored -= nseg
            self._counters["pruned"] += n
            if n:
                self._state.notify_all()

    def _drop_oldest(self, conn: sqlite3.Connection, excess: int, now: float) -> tuple[int, int, int, int]:
        """Delete the oldest non-gap segments until ``excess`` bytes are freed; note each record lost.

        Returns (records deleted, bytes freed, segments deleted, records lost = counted as dropped)."""
        freed = n = nseg = lost = 0
        by_stream: dict[str, list[int]] = {}  # stream -> [first seq, last seq, records]
        while freed < excess:
            batch = conn.execute("SELECT id, stream, seq, last_seq, size, kind FROM records WHERE kind != 'gap' "
                                 "ORDER BY id LIMIT 256").fetchall()
            if not batch:
                break
            victims = []
            for rid, stream, seq, last, size, kind in batch:
                if freed >= excess:
                    break
                victims.append((rid,))
                freed, nseg, n = freed + int(size), nseg + 1, n + int(last) - int(seq) + 1
                # records of the segment every routing uplink acknowledged were delivered, not lost
                first, count = self._lost_range(conn, stream, kind, int(seq), int(last))
                if count:
                    acc = by_stream.setdefault(stream, [first, int(last), 0])
                    acc[0], acc[1], acc[2] = min(acc[0], first), max(acc[1], int(last)), acc[2] + count
                    lost += count
            conn.executemany("DELETE FROM records WHERE id = ?", victims)
        for stream, (lo, hi, count) in by_stream.items():
            note_drop(conn, stream, "drop_oldest", lo, hi, count, now)
            self._gaps_open = True
        return n, freed, nseg, lost

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

    @recovering
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
        gaps_open = conn.execute("SELECT 1 FROM open_gaps LIMIT 1").fetchone() is not None
        seqs: dict[str, int] = {}
        added = 0
        for gstream, blob in sealed:
            seq = seqs.get(gstream, self._last.get(gstream, 0)) + 1
            seqs[gstream] = seq
            conn.execute(INSERT, (gstream, seq, seq, "gap", now, len(blob), zlib.crc32(blob), blob))
            conn.execute(UPSERT_STREAM, (gstream, seq, "gap"))
            added += len(blob)
        conn.execute("COMMIT")
        self._gaps_open = gaps_open
        with self._state:
            self._last.update(seqs)
            for s in seqs:
                self._kinds[s] = frozenset({"gap"}) | self._kinds.get(s, frozenset())
            self._bytes += added
            self._rows += len(sealed)
            self._segments_stored += len(sealed)
            self._counters["gaps"] += len(sealed)
        return len(sealed)

    def wait_for_space(self, timeout: float, nbytes: int | None = None) -> bool:
        """Block (worker thread) until ``nbytes`` more would fit, at most ``timeout`` s; True if they do.

        ``nbytes`` defaults to what the last call refused with :class:`SpoolFull` needed, so the
        usual ``except SpoolFull: wait_for_space(1.0)`` retry loop does not spin on a few free bytes.
        """
        if nbytes is None:
            nbytes = max(1, self._blocked_need)
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

    def _prune_in_txn(self, conn: sqlite3.Connection, streams: set[str],
                      acked: Mapping[tuple[str, str], int] | None) -> tuple[int, int, int]:
        """Unbounded prune inside the caller's ingest transaction (only under quota pressure).

        Returns (records, bytes, segments) deleted; the caller counts them in ``pruned`` after its
        COMMIT (a rolled-back transaction deleted nothing)."""
        if acked is None:
            acked = {(u, s): int(a) for u, s, a in conn.execute("SELECT uplink, stream, acked FROM cursors")}
        n = freed = nseg = 0
        for stream in streams:
            for kind in self._kinds.get(stream, frozenset()):
                floor = self._floor(stream, kind, acked)
                if floor > 0:
                    gone = conn.execute("DELETE FROM records WHERE stream = ? AND last_seq <= ? AND kind = ? "
                                        "RETURNING last_seq - seq + 1, size", (stream, floor, kind)).fetchall()
                    n, freed, nseg = n + sum(c for c, _ in gone), freed + sum(b for _, b in gone), nseg + len(gone)
        return n, freed, nseg
