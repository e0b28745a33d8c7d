"""Model-based test: random append / append_many / submit / ack / crash-reopen / corrupt sequences on a
tiny quota, checked after every step against an in-memory model of what the spool must hold.

``submit`` queues several groups while a commit is held "in flight" (they commit together);
``crash_with_submissions_queued`` copies the files as a kill would leave them while groups wait for
their commit: the reopened copy must hold none of their records (admitted = committed).

Records admitted together are stored as segments (runs of one stream); the model checks both views:
``pending`` (one row per record) and ``pending_segments`` (what an uplink sends). The model knows, per
stream, every seq handed out (admitted or dropped), the blobs of admitted ones and
each uplink's cumulative ack. After every step it checks: seqs are dense and strictly increasing; every
admitted, not-dropped row is pending for every routing uplink until that uplink acks it, with its exact
bytes; rows missing without an ack are drops (and never come back); and the counts in gap records plus
the unsealed open gaps equal the drops, per stream, exactly — also across crashes.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from spool_helpers import ROUTES

from edgekit.codec import GapRecord, segment_blobs, unpack
from edgekit.errors import SpoolFull
from edgekit.spool import Spool, SpoolConfig

STREAMS = {"features/m1": "features", "points/d1": "points", "event/gw": "event", "waveform/m1": "waveform"}
UPLINKS = sorted(ROUTES)
QUOTA = 800


class SpoolModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="spool-model-"))
        self.generation = 0

    @initialize(policy=st.sampled_from(["drop_oldest", "drop_newest", "block"]),
                gap_interval=st.sampled_from([0.0, 3600.0]))
    def open(self, policy: str, gap_interval: float) -> None:
        self.cfg = SpoolConfig(max_bytes=QUOTA, reserve_free_bytes=0, full_policy=policy,  # type: ignore[arg-type]
                               gap_interval=gap_interval, prune_chunk=1, synchronous="normal")
        self.path = self.dir / "g0" / "spool.db"
        self.spool = Spool(self.path, self.cfg, ROUTES)
        self.reset_model()

    def reset_model(self) -> None:
        self.epoch = self.spool.epoch
        self.last: Counter[str] = Counter()               # seqs handed out per stream (incl. dropped)
        self.rows: dict[str, dict[int, bytes]] = {s: {} for s in STREAMS}  # admitted, not (yet) known lost
        self.dropped: dict[str, set[int]] = {s: set() for s in STREAMS}
        self.acked: Counter[tuple[str, str]] = Counter()
        self.gaps: dict[tuple[str, int], GapRecord] = {}  # (gap stream, seq) -> record, this epoch
        self.gap_last: Counter[str] = Counter()           # highest seq seen per gap stream

    def teardown(self) -> None:
        self.spool.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # ---- rules --------------------------------------------------------------------------------

    def _admit(self, items: list[tuple[str, int]]) -> None:
        batch = [(s, STREAMS[s], bytes([self.last[s] % 251]) * n, 1.0) for s, n in items]
        try:
            got = self.spool.append_many(batch)
        except SpoolFull:
            assert self.cfg.full_policy == "block"
            return
        self._note(batch, got)

    def _submitted(self, groups: list[list[tuple[str, int]]]) -> list[list[tuple[str, str, bytes, None]]]:
        return [[(s, STREAMS[s], bytes([(self.last[s] + g) % 251]) * n, None) for s, n in items]
                for g, items in enumerate(groups)]

    @precondition(lambda self: self.cfg.full_policy != "block")  # block waits in the committer for acks
    @rule(groups=st.lists(st.lists(st.tuples(st.sampled_from(sorted(STREAMS)), st.integers(1, 150)),
                                   min_size=1, max_size=4), min_size=1, max_size=4))
    def submit(self, groups: list[list[tuple[str, int]]]) -> None:
        """Pipelined admission: queued while a commit is in flight, then committed together."""
        batches = self._submitted(groups)
        with self.spool._ingest_lock:
            admissions = [self.spool.submit(b) for b in batches]
        for batch, adm in zip(batches, admissions, strict=True):
            self._note(batch, adm.result(10))

    def crash_with_submissions_queued(self, groups: list[list[tuple[str, int]]]) -> None:
        """A crash while submissions wait for their commit: none of their records may be in the file."""
        if self.cfg.full_policy == "block":  # the committer would wait for acks that never come
            self.crash_and_reopen()
            return
        with self.spool._ingest_lock:
            admissions = [self.spool.submit(b) for b in self._submitted(groups)]
            target = self._copy_as_killed()
        for adm in admissions:
            adm.result(10)  # committed in the file the "crash" left behind, not in the copy
        self._reopen(target)

    def _note(self, batch: Sequence[tuple[str, str, bytes, float | None]], got: list[int | None]) -> None:
        for (stream, kind, blob, _), seq in zip(batch, got, strict=True):
            self.last[stream] += 1
            want = self.last[stream]
            if seq is None:
                assert self.cfg.full_policy != "block"
                self.dropped[stream].add(want)
                continue
            assert seq == want, f"{stream}: got seq {seq}, expected {want}"
            if any(kind in ROUTES[u] for u in UPLINKS):
                self.rows[stream][seq] = blob

    @rule(stream=st.sampled_from(sorted(STREAMS)), size=st.integers(1, 300))
    def append(self, stream: str, size: int) -> None:
        self._admit([(stream, size)])

    @rule(items=st.lists(st.tuples(st.sampled_from(sorted(STREAMS)), st.integers(1, 150)), min_size=1, max_size=6))
    def append_many(self, items: list[tuple[str, int]]) -> None:
        self._admit(items)

    @rule(stream=st.sampled_from(sorted(STREAMS)), n=st.integers(2, 12), size=st.integers(1, 60))
    def append_segment(self, stream: str, n: int, size: int) -> None:
        """A run of one stream in one call: stored as one segment (or several, around drops)."""
        self._admit([(stream, size)] * n)

    @rule(uplink=st.sampled_from(UPLINKS), stream=st.sampled_from(sorted(STREAMS)), back=st.integers(0, 6))
    def ack(self, uplink: str, stream: str, back: int) -> None:
        if STREAMS[stream] not in ROUTES[uplink] or self.last[stream] == 0:
            return
        lo = self.acked[(uplink, stream)]
        seq = max(lo, self.last[stream] - back)
        self.spool.ack(uplink, stream, seq)
        self.acked[(uplink, stream)] = max(lo, seq)

    @rule(uplink=st.sampled_from(UPLINKS))
    def ack_gaps(self, uplink: str) -> None:
        for gstream, last in self.gap_last.items():  # only gaps the model has already read
            self.spool.ack(uplink, gstream, last)

    @rule(how=st.sampled_from(["crash", "crash_queued", "close", "corrupt"]),
          groups=st.lists(st.lists(st.tuples(st.sampled_from(sorted(STREAMS)), st.integers(1, 150)),
                                   min_size=1, max_size=3), min_size=1, max_size=3))
    def restart(self, how: str, groups: list[list[tuple[str, int]]]) -> None:
        """One rule for all restarts, so they are ~1 step in 6 (each costs a checkpoint and fsyncs)."""
        if how == "crash":
            self.crash_and_reopen()
        elif how == "crash_queued":
            self.crash_with_submissions_queued(groups)
        elif how == "close":
            self.spool.close()
            self.spool = Spool(self.path, self.cfg, ROUTES)
            assert self.spool.epoch == self.epoch
        else:
            self.corrupt()

    def crash_and_reopen(self) -> None:
        """Copy the files as a kill would leave them (every call has returned), reopen the copy."""
        self._reopen(self._copy_as_killed())

    def _copy_as_killed(self) -> Path:
        self.generation += 1
        target = self.dir / f"g{self.generation}" / "spool.db"
        target.parent.mkdir()
        for suffix in ("", "-wal"):
            src = Path(f"{self.path}{suffix}")
            if src.exists():
                shutil.copyfile(src, f"{target}{suffix}")
        return target

    def _reopen(self, target: Path) -> None:
        self.spool.close()
        self.path = target
        self.spool = Spool(self.path, self.cfg, ROUTES)
        assert self.spool.epoch == self.epoch

    def corrupt(self) -> None:
        """Overwrite the header of the closed file: everything in it is lost and must be reported."""
        self.spool.close()
        with open(self.path, "r+b") as f:
            f.write(b"\xde\xad\xbe\xef" * 16)
        self.spool = Spool(self.path, self.cfg, ROUTES)
        assert self.spool.epoch != self.epoch
        assert self.spool.stats()["quarantined"] == 1
        rows = self.spool.pending("a")
        assert [(r.stream, r.seq, r.kind) for r in rows] == [("gap/*", 1, "gap")]
        g = unpack(rows[0].blob)
        assert isinstance(g, GapRecord) and (g.stream, g.count, g.reason) == ("*", -1, "corrupt")
        for u in UPLINKS:
            self.spool.ack(u, "gap/*", 1)
        self.reset_model()

    # ---- the checks ---------------------------------------------------------------------------

    @invariant()
    def matches_model(self) -> None:
        s = self.spool
        for u in UPLINKS:
            pending = s.pending(u, limit=1_000_000, max_bytes=1 << 40)
            seen: dict[str, list[int]] = {}
            for r in pending:
                assert r.epoch == self.epoch
                assert r.kind in ROUTES[u]
                seen.setdefault(r.stream, []).append(r.seq)
                if r.kind == "gap":
                    g = unpack(r.blob)
                    assert isinstance(g, GapRecord) and r.stream == "gap/" + g.stream
                    assert self.gaps.setdefault((r.stream, r.seq), g) == g
                    self.gap_last[r.stream] = max(self.gap_last[r.stream], r.seq)
                    continue
                assert self.rows[r.stream].get(r.seq) == r.blob, f"{u}: {r.stream}#{r.seq} not as admitted"
                assert r.seq > self.acked[(u, r.stream)]
            for stream, seqs in seen.items():
                assert seqs == sorted(set(seqs)), f"{stream}: not strictly increasing {seqs}"
            assert s.backlog(u)[0] == len(pending)
            # the segments an uplink is handed cover exactly the pending records, each stream in order,
            # and every record in them is byte for byte what was admitted
            segs = s.pending_segments(u, limit=1_000_000, max_bytes=1 << 40)
            in_segs = {}
            for seg in segs:
                assert seg.count >= 1 and seg.kind in ROUTES[u]
                for i, blob in enumerate(segment_blobs(seg.blob, seg.count)):
                    in_segs[(seg.stream, seg.seq + i)] = blob
            want = {(r.stream, r.seq): r.blob for r in pending}
            assert {k: v for k, v in in_segs.items() if k in want} == want
            for (stream, q) in set(in_segs) - set(want):  # resent part of a partly acknowledged segment
                assert q <= self.acked[(u, stream)]
            for stream, kind in STREAMS.items():
                if kind not in ROUTES[u]:
                    continue
                expect = {q for q in self.rows[stream] if q > self.acked[(u, stream)]}
                got = set(seen.get(stream, []))
                assert got <= expect
                for q in expect - got:  # gone without an ack: dropped by the full policy
                    assert self.cfg.full_policy == "drop_oldest", f"{stream}#{q} lost under {self.cfg.full_policy}"
                    del self.rows[stream][q]
                    self.dropped[stream].add(q)
                if self.last[stream]:
                    assert s.first_unacked(u)[stream] == self.acked[(u, stream)] + 1
        open_gaps = s.stats()["open_gaps"]
        for stream in STREAMS:
            sealed = [g for g in self.gaps.values() if g.stream == stream]
            assert sum(g.count for g in sealed) + open_gaps.get(stream, 0) == len(self.dropped[stream])
            for g in sealed:
                # a gap's range may hold seqs that were kept then and dropped later (counted in a later
                # gap record): its own count is at most the drops in its range, the sum is exact (above)
                assert g.count <= len({q for q in self.dropped[stream] if g.first_seq <= q <= g.last_seq})
        if self.cfg.full_policy == "block":
            assert not any(self.dropped.values())


SpoolModel.TestCase.settings = settings(
    max_examples=120, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestSpoolModel = SpoolModel.TestCase
