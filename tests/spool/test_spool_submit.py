"""Pipelined admission (``Spool.submit``): order, group commit, ts stamping, block policy, close."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from spool_helpers import open_spool, until

from edgekit.errors import SpoolError
from edgekit.spool import Admission, Spool


def _ids(spool: Spool, uplink: str = "a") -> list[tuple[str, int, bytes]]:
    return [(r.stream, r.seq, r.blob) for r in spool.pending(uplink, limit=1_000_000, max_bytes=1 << 40)]


def test_submissions_queued_during_a_commit_share_one_transaction(tmp_path: Path) -> None:
    spool = open_spool(tmp_path / "s.db")

    def sub(i: int) -> Admission:
        return spool.submit([("features/m1", "features", f"x{i}".encode(), None)])

    try:
        with spool._ingest_lock:  # a commit "in flight": the committer takes the first and waits
            first = sub(0)
            committer = spool._committer
            assert committer is not None
            until(lambda: committer._busy)
            rest = [sub(i) for i in range(1, 6)]
            time.sleep(0.05)
            assert not first.done() and not any(a.done() for a in rest)
        assert [a.result(5) for a in [first, *rest]] == [[i] for i in range(1, 7)]
        stats = spool.stats()
        assert stats["submit_transactions"] == 2 and stats["submissions"] == 6
        # the five queued submissions were one transaction with one commit time: one segment
        segs = spool.pending_segments("a", limit=100, max_bytes=1 << 30)
        assert [(s.seq, s.last_seq) for s in segs] == [(1, 1), (2, 6)]
        assert segs[1].ts >= segs[0].ts > 0
        assert _ids(spool) == [("features/m1", i + 1, f"x{i}".encode()) for i in range(6)]
    finally:
        spool.close()


def test_order_results_and_callback_across_streams(tmp_path: Path) -> None:
    spool = open_spool(tmp_path / "s.db")
    called: list[tuple[str, list[int | None]]] = []

    def done(adm: Admission) -> None:
        called.append((threading.current_thread().name, adm.result()))

    try:
        adms = [spool.submit([("features/m1", "features", b"f", 1.5), ("points/d1", "points", b"p", 2.5)], done)
                for _ in range(20)]
        assert spool.flush(5)
        assert [a.result(0) for a in adms] == [[i, i] for i in range(1, 21)]
        assert [c[1] for c in called] == [[i, i] for i in range(1, 21)]
        assert all(name.startswith("spool-commit:") for name, _ in called)
        assert all(r.ts == 1.5 for r in spool.pending("a") if r.stream == "features/m1")
        # append_many after submissions: committed after them, in one thread's order
        assert spool.append_many([("features/m1", "features", b"last", 3.0)]) == [21]
    finally:
        spool.close()


def test_invalid_items_raise_in_the_caller_and_queue_nothing(tmp_path: Path) -> None:
    spool = open_spool(tmp_path / "s.db")
    try:
        with pytest.raises(SpoolError, match="record kind 'nope'"):
            spool.submit([("features/m1", "features", b"ok", None), ("x/y", "nope", b"bad", None)])
        with pytest.raises(SpoolError, match="ts must be a unix time"):
            spool.submit([("features/m1", "features", b"ok", "soon")])  # type: ignore[list-item]
        with pytest.raises(SpoolError, match="ts must be a unix time"):
            spool.append_many([("features/m1", "features", b"ok", None)])  # type: ignore[list-item]
        assert spool.submit([("features/m1", "features", b"ok", None)]).result(5) == [1]
    finally:
        spool.close()


def test_close_commits_what_was_submitted(tmp_path: Path) -> None:
    spool = open_spool(tmp_path / "s.db")
    with spool._ingest_lock:
        adms = [spool.submit([("points/d1", "points", bytes([i]), None)]) for i in range(10)]
        closer = threading.Thread(target=spool.close)
        closer.start()
        time.sleep(0.05)
    closer.join(10)
    assert [a.result(0) for a in adms] == [[i] for i in range(1, 11)]
    with pytest.raises(SpoolError, match="closed"):
        spool.submit([("points/d1", "points", b"late", None)])
    spool = open_spool(tmp_path / "s.db")
    try:
        assert [seq for _, seq, _ in _ids(spool, "b")] == list(range(1, 11))
    finally:
        spool.close()


def test_block_policy_waits_in_the_committer_until_acks_free_space(tmp_path: Path) -> None:
    spool = open_spool(tmp_path / "s.db", max_bytes=1000, full_policy="block", submit_pending_bytes=2000)
    try:
        assert spool.submit([("points/d1", "points", b"a" * 600, None)]).result(5) == [1]
        second = spool.submit([("points/d1", "points", b"b" * 600, None)])
        time.sleep(0.3)
        assert not second.done(), "admitted beyond the quota"
        assert spool.stats()["blocked"] >= 1
        spool.ack("b", "points/d1", 1)  # frees the first record: the committer's retry admits the second
        assert second.result(5) == [2]
        assert spool.stats()["dropped"] == {}
        with pytest.raises(SpoolError, match="exceeds the spool quota"):
            spool.submit([("points/d1", "points", b"c" * 600, None)] * 2)
    finally:
        spool.close()


def test_close_under_block_with_no_space_fails_the_queued_submission(tmp_path: Path) -> None:
    spool = open_spool(tmp_path / "s.db", max_bytes=1000, full_policy="block", busy_timeout=0.3)
    spool.submit([("points/d1", "points", b"a" * 600, None)]).result(5)
    stuck = spool.submit([("points/d1", "points", b"b" * 600, None)])
    t = time.monotonic()
    spool.close()
    assert time.monotonic() - t < 5
    with pytest.raises(SpoolError, match="not admitted"):
        stuck.result(0)
    spool = open_spool(tmp_path / "s.db")
    try:
        assert [seq for _, seq, _ in _ids(spool, "b")] == [1]
    finally:
        spool.close()


def test_pending_bound_blocks_the_submitter(tmp_path: Path) -> None:
    spool = open_spool(tmp_path / "s.db", submit_pending_bytes=1000)
    try:
        with spool._ingest_lock:
            spool.submit([("points/d1", "points", b"a" * 700, None)])  # taken by the committer, blocked
            spool.submit([("points/d1", "points", b"b" * 200, None)])
            third: list[Admission] = []
            t = threading.Thread(target=lambda: third.append(spool.submit([("points/d1", "points", b"c" * 200, None)])))
            t.start()
            time.sleep(0.2)
            assert not third, "submit did not block at submit_pending_bytes"
        t.join(5)
        assert third and third[0].result(5) == [3]
    finally:
        spool.close()


def test_submit_ack_never_waits_for_a_commit_and_is_applied_by_the_committer(tmp_path: Path) -> None:
    spool = open_spool(tmp_path / "s.db")
    try:
        spool.submit([("points/d1", "points", bytes([i]), None) for i in range(10)]).result(5)
        with pytest.raises(SpoolError, match="assigned only up to 10"):
            spool.submit_ack("b", "points/d1", 11)
        with pytest.raises(SpoolError):
            spool.submit_ack("nobody", "points/d1", 1)
        with spool._ingest_lock:  # a commit in flight: ack() would wait here, submit_ack does not
            t = time.monotonic()
            spool.submit_ack("b", "points/d1", 4)
            spool.submit_ack("b", "points/d1", 7)  # merged: one cumulative ack
            spool.submit_ack("b", "points/d1", 6)
            assert time.monotonic() - t < 0.5
            assert spool._acked.get(("b", "points/d1"), 0) == 0  # not applied: it needs this lock
        assert spool.flush(5)
        assert spool.backlog("b")[0] == 3
        assert [r.seq for r in spool.pending("b")] == [8, 9, 10]
    finally:
        spool.close()
    spool = open_spool(tmp_path / "s.db")
    try:
        assert spool.first_unacked("b") == {"points/d1": 8}
    finally:
        spool.close()
