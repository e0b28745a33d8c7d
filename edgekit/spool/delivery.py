"""The delivery side of the spool: paging for uplinks, cumulative acks, bounded pruning.

Runs on the delivery connection under the delivery lock (the asyncio loop thread). Design and
invariants: see the :mod:`edgekit.spool` package docstring.
"""

from __future__ import annotations

import sqlite3
import time
import zlib
from collections.abc import Mapping
from typing import Any

from ..codec import segment_blobs
from ..errors import SpoolError
from .base import SpoolBase, SpoolRow, log, recovering
from .gaps import due_gaps_exist, note_drop

__all__ = ["DeliverySide"]


class DeliverySide(SpoolBase):
    """``pending``, ``ack``, ``prune``, ``first_unacked``, ``backlog``."""

    @recovering
    def pending(self, uplink: str, limit: int = 256, max_bytes: int = 8 << 20,
                after: Mapping[str, int] | None = None) -> list[SpoolRow]:
        """Records not yet acked by ``uplink`` (oldest first), at most ``limit`` records / ``max_bytes``.

        One :class:`SpoolRow` per record (segments are split; a record of a partly acknowledged
        segment is left out once acked). ``after[stream]`` skips seqs up to that value (rows already
        in flight). At least one record is returned when any is pending, even if it alone exceeds
        ``max_bytes``. Uplinks use :meth:`pending_segments`, which hands out stored segments whole.
        """
        starts: dict[str, int] = {}
        segs = self._fetch(uplink, limit, max_bytes, after, starts, partial=True)
        out: list[SpoolRow] = []
        total = 0
        for row in segs:
            blobs = [row.blob] if row.count == 1 else segment_blobs(row.blob, row.count)
            for i, blob in enumerate(blobs):
                seq = row.seq + i
                if seq <= starts.get(row.stream, 0):
                    continue
                if len(out) >= limit or (out and total + len(blob) > max_bytes):
                    return out
                out.append(SpoolRow(row.stream, seq, row.kind, blob, row.ts, row.epoch))
                total += len(blob)
        return out

    @recovering
    def pending_segments(self, uplink: str, limit: int = 256, max_bytes: int = 8 << 20,
                         after: Mapping[str, int] | None = None) -> list[SpoolRow]:
        """Stored segments holding records not yet acked by ``uplink``, oldest first, whole.

        At most ``limit`` records and ``max_bytes`` (counted as the records' own sizes, see the
        package docstring), but at least one segment when any is pending. A segment of which the
        uplink acknowledged a part is handed out whole (the collector deduplicates the resent
        part); ``after`` as in :meth:`pending`.
        """
        return self._fetch(uplink, limit, max_bytes, after, {}, partial=False)

    def _fetch(self, uplink: str, limit: int, max_bytes: int, after: Mapping[str, int] | None,
               starts: dict[str, int], partial: bool) -> list[SpoolRow]:
        """The oldest pending segments holding at most ``limit`` records / ``max_bytes`` (at least one
        segment), CRC-checked. Chosen from the index before any blob is read. ``partial``: a segment's
        records at or below the stream's cursor do not count (:meth:`pending` skips them).
        ``starts`` gets each stream's cursor."""
        kinds = self._uplink_kinds(uplink)
        self._seal_due_gaps_nowait()
        with self._delivery_lock:
            self._check_open()
            conn = self._delivery
            streams = self._streams_for(uplink, kinds, after)
            if not streams:  # nothing new anywhere: no SQL (the uplink asks after every ACK)
                return []
            starts.update({stream: start for stream, start, _last, _k in streams})
            try:
                conn.execute("BEGIN")
                try:
                    cands = self._candidates(conn, streams, kinds, limit)
                    chosen: list[tuple[int, str, int, str, int, float, int]] = []
                    records = total = 0
                    for cand in cands:
                        _rid, stream, seq, _kind, size, _ts, last = cand
                        n = last - max(seq, starts[stream] + 1) + 1 if partial else last - seq + 1
                        # pending() may take part of a segment; pending_segments() whole ones only
                        full = records >= limit if partial else records + n > limit
                        if chosen and (full or total >= max_bytes or (not partial and total + size > max_bytes)):
                            break
                        chosen.append(cand)
                        records, total = records + n, total + size
                    blobs: dict[int, bytes] = {}
                    bad: set[int] = set()
                    # segments admitted by this process are still in memory: no read-back, no CRC
                    # (the bytes are the ones the CRC was computed from)
                    with self._state:
                        hot = self._hot
                        for rid, stream, seq, _k, _z, _t, last in chosen:
                            got = hot.get((stream, seq))
                            if got is not None and got[0] == last:
                                blobs[rid] = got[1]
                    missing = [c for c in chosen if c[0] not in blobs] if blobs else chosen
                    for i in range(0, len(missing), 500):
                        ids = [c[0] for c in missing[i:i + 500]]
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
            self._drop_damaged([(r, s, q, last) for r, s, q, _k, _z, _t, last in chosen if r in bad])
        return [SpoolRow(s, q, k, blobs[r], t, self.epoch, last - q + 1) for r, s, q, k, _, t, last in chosen
                if r in blobs and r not in bad]

    @staticmethod
    def _candidates(conn: sqlite3.Connection, streams: list[tuple[str, int, int, frozenset[str]]],
                    kinds: frozenset[str], limit: int) -> list[tuple[int, str, int, str, int, float, int]]:
        """The ``limit`` oldest (smallest id) pending segments over all ``streams``, sorted by id:
        ``(id, stream, seq, kind, size, ts, last_seq)``.

        Reads a share of ``limit`` per stream first and reads more only from a stream whose share
        ran out before the current cut-off id — so many streams do not cost ``streams x limit`` rows.
        """
        if not streams or limit <= 0:
            return []
        share = max(8, -(-2 * limit // len(streams)))
        # rows above the stream's last seq as the spool knows it are committed but not yet recorded
        # (append_many updates its in-memory state just after COMMIT): they wait for the next call
        state = {stream: (start, skinds) for stream, start, _last, skinds in streams}
        lasts = {stream: last for stream, _start, last, _skinds in streams}
        todo = {stream: share for stream in state}
        cands: list[tuple[int, str, int, str, int, float, int]] = []
        while todo:
            more: dict[str, int] = {}
            for stream, n in todo.items():
                start, skinds = state[stream]
                sql = ("SELECT id, seq, kind, size, ts, last_seq FROM records "
                       "WHERE stream = ? AND last_seq > ? AND last_seq <= ?")
                args: list[Any] = [stream, start, lasts[stream]]
                if not skinds <= kinds:
                    sql += f" AND kind IN ({','.join('?' * len(kinds))})"
                    args.extend(sorted(kinds))
                sql += " ORDER BY last_seq LIMIT ?"
                args.append(n)
                got = [(rid, stream, seq, kind, size, ts, last)
                       for rid, seq, kind, size, ts, last in conn.execute(sql, args)]
                cands.extend(got)
                if len(got) == n:  # the stream may hold more: remember where its share ended
                    state[stream] = (got[-1][6], skinds)
                    more[stream] = got[-1][0]
            cands.sort()
            del cands[limit:]
            cutoff = cands[-1][0] if len(cands) == limit else None
            # a stream whose share ended below the cut-off may have more rows that belong in
            todo = {s: min(limit, 4 * todo[s]) for s, last_id in more.items() if cutoff is None or last_id < cutoff}
        return cands

    def _drop_damaged(self, rows: list[tuple[int, str, int, int]]) -> None:
        """Segments whose bytes no longer match their CRC (damage SQLite cannot see): drop and gap them."""
        with self._ingest_lock:
            self._check_open()
            conn, now = self._ingest, time.time()
            n = freed = nseg = lost = 0
            try:
                conn.execute("BEGIN IMMEDIATE")
                for rid, stream, seq, last in rows:
                    got = conn.execute("DELETE FROM records WHERE id = ? RETURNING size, kind", (rid,)).fetchone()
                    if got is not None:  # another call may have dropped it already
                        first, count = self._lost_range(conn, stream, str(got[1]), seq, last)
                        if count:
                            note_drop(conn, stream, "corrupt", first, last, count, now)
                            self._gaps_open = True
                        n, freed, nseg, lost = n + last - seq + 1, freed + int(got[0]), nseg + 1, lost + count
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback(conn)
                raise self._translate(exc, "pending") from exc
            with self._state:
                self._bytes -= freed
                self._rows -= n
                self._segments_stored -= nseg
                dropped = self._counters["dropped"]
                dropped["corrupt"] = dropped.get("corrupt", 0) + lost
        if n:
            log.error("spool %s: %d record(s) failed their CRC and were dropped (reported as gap records, "
                      "reason 'corrupt'): %s", self.path, n, [(s, q, last) for _, s, q, last in rows][:10])

    @recovering
    def ack(self, uplink: str, stream: str, seq: int, epoch: str | None = None) -> None:
        """Cumulative ack: ``uplink`` has everything of ``stream`` up to ``seq``; prunes a bounded chunk.

        With ``epoch``: ignored (logged) unless the spool is still in that epoch — the seqs of an
        older, quarantined file must never acknowledge the new file's records."""
        with self._delivery_lock:
            self._check_open()
            if epoch is not None and epoch != self.epoch:  # the epoch changes only under this lock
                log.warning("spool %s: ack %s %s %d of epoch %s ignored: the spool is in epoch %s now",
                            self.path, uplink, stream, seq, epoch, self.epoch)
                return
            if seq <= self._check_ack(uplink, stream, seq):
                return
            conn = self._delivery
            try:
                with self._ingest_lock:  # writers take turns here, not in SQLite's sleeping busy handler
                    conn.execute("BEGIN IMMEDIATE")
                    conn.execute("INSERT INTO cursors(uplink, stream, acked) VALUES (?, ?, ?) ON CONFLICT(uplink, "
                                 "stream) DO UPDATE SET acked = max(acked, excluded.acked)", (uplink, stream, seq))
                    with self._state:
                        self._prune_todo.add(stream)
                        todo = set(self._prune_todo)
                    acked = dict(self._acked)
                    acked[(uplink, stream)] = seq
                    n, freed, nseg, done = self._prune_chunk(conn, todo, acked)
                    self._commit_prune(conn, n, freed, nseg, done)
                with self._state:
                    self._acked[(uplink, stream)] = max(seq, self._acked.get((uplink, stream), 0))
            except sqlite3.Error as exc:
                self._rollback(conn)
                raise self._translate(exc, "ack") from exc

    def _check_ack(self, uplink: str, stream: str, seq: int) -> int:
        """Raise :class:`SpoolError` for an unknown uplink or a seq not assigned; the current ack."""
        self._uplink_kinds(uplink)
        with self._state:
            last = self._last.get(stream)
            current = self._acked.get((uplink, stream), 0)
        if last is None or seq > last or seq < 0:
            raise SpoolError(f"ack for {stream!r} seq {seq} from {uplink!r}: the spool (epoch {self.epoch}) "
                             f"assigned only up to {last or 0} in that stream")
        return current

    @recovering
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
                with self._ingest_lock:
                    conn.execute("BEGIN IMMEDIATE")
                    n, freed, nseg, done = self._prune_chunk(conn, todo, acked)
                    self._commit_prune(conn, n, freed, nseg, done)
            except sqlite3.Error as exc:
                self._rollback(conn)
                raise self._translate(exc, "prune") from exc
            return n

    def _commit_prune(self, conn: sqlite3.Connection, n: int, freed: int, nseg: int, done: set[str]) -> None:
        # the state lock spans COMMIT so the ingest side never sees the rows gone but the bytes not
        with self._state:
            conn.execute("COMMIT")
            self._bytes -= freed
            self._rows -= n
            self._segments_stored -= nseg
            self._counters["pruned"] += n
            self._prune_todo -= done
            if n:
                self._state.notify_all()

    def _prune_chunk(self, conn: sqlite3.Connection, streams: set[str],
                     acked: Mapping[tuple[str, str], int]) -> tuple[int, int, int, set[str]]:
        """Delete at most ``prune_chunk`` deletable segments of ``streams``;
        returns (records, bytes, segments, finished streams)."""
        budget, n, freed, nseg, done = self.cfg.prune_chunk, 0, 0, 0, set()
        for stream in sorted(streams):
            finished = True
            for kind in sorted(self._kinds.get(stream, frozenset())):
                floor = self._floor(stream, kind, acked)
                if floor <= 0:
                    continue
                if budget <= 0:
                    finished = False
                    break
                gone = conn.execute(
                    "DELETE FROM records WHERE id IN (SELECT id FROM records WHERE stream = ? AND last_seq <= ? "
                    "AND kind = ? ORDER BY last_seq LIMIT ?) RETURNING last_seq - seq + 1, size, seq",
                    (stream, floor, kind, budget)).fetchall()
                if self._hot:
                    with self._state:
                        self._hot_drop([(stream, q) for _c, _b, q in gone])
                n, freed = n + sum(c for c, _b, _q in gone), freed + sum(b for _c, b, _q in gone)
                nseg, budget = nseg + len(gone), budget - len(gone)
                if budget <= 0:
                    finished = False
            if finished:
                done.add(stream)
        return n, freed, nseg, done

    def first_unacked(self, uplink: str) -> dict[str, int]:
        """Per stream routed to ``uplink``: the first seq it has not acknowledged (for HELLO)."""
        kinds = self._uplink_kinds(uplink)
        with self._state:
            return {s: self._acked.get((uplink, s), 0) + 1
                    for s, ks in self._kinds.items() if ks & kinds}

    @recovering
    def backlog(self, uplink: str) -> tuple[int, int, float | None]:
        """(records, bytes, oldest ts) not yet acked by ``uplink``; cost grows with the backlog (index only).

        Bytes count whole segments (a partly acknowledged segment with all its bytes)."""
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
                        q = ("SELECT coalesce(sum(last_seq - max(seq, ? + 1) + 1), 0), coalesce(sum(size), 0), "
                             "min(ts) FROM records WHERE stream = ? "
                             f"AND last_seq > ? AND kind IN ({','.join('?' * len(kinds))})")
                        r, b, t = conn.execute(q, [start, stream, start, *sorted(kinds)]).fetchone()
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
        if not self._gaps_open or not self._ingest_lock.acquire(blocking=False):
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
