"""The committer thread under faults: block policy with pipelined acks, errors while waiting for space.

Real SQLite files and real threads; a second connection on the same file plays "another writer".
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from spool_helpers import open_spool, until

from edgekit.errors import SpoolError
from edgekit.spool import Admission, SpoolCorrupt, SpoolDiskFull


def test_block_policy_committer_applies_queued_submit_acks_while_it_waits_for_space(tmp_path: Path) -> None:
    # the uplink client acks with submit_ack (applied by the committer thread); under ``block`` the
    # committer waits for space that exactly those acks free: it must apply them while it waits
    spool = open_spool(tmp_path / "s.db", max_bytes=1000, full_policy="block", busy_timeout=1.0)
    try:
        assert spool.submit([("points/d1", "points", b"a" * 600, None)]).result(5) == [1]
        second = spool.submit([("points/d1", "points", b"b" * 600, None)])
        until(lambda: spool.stats()["blocked"] >= 1)
        spool.submit_ack("b", "points/d1", 1)
        assert second.result(5) == [2]
        assert spool.stats()["dropped"] == {}
        assert [r.seq for r in spool.pending("b")] == [2]
    finally:
        spool.close()


def test_an_error_while_the_committer_waits_for_space_fails_the_group_and_the_committer_lives_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # under ``block`` the committer prunes while it waits; a failing prune (here SQLITE_BUSY: another
    # writer holds the file longer than busy_timeout) must settle the waiting submissions, be logged,
    # and leave the committer running — not kill the thread and leave every later submit hanging
    path = tmp_path / "s.db"
    spool = open_spool(path, max_bytes=1000, full_policy="block", busy_timeout=0.2)
    other = sqlite3.connect(str(path), isolation_level=None, timeout=0)
    try:
        assert spool.submit([("points/d1", "points", b"a" * 600, None)]).result(5) == [1]
        second = spool.submit([("points/d1", "points", b"b" * 600, None)])
        until(lambda: spool.stats()["blocked"] >= 1)
        # the committer sleeps in wait_for_space; its next step is a prune on the delivery connection
        until(lambda: len(spool._state._waiters) > 0)  # type: ignore[attr-defined]
        with caplog.at_level(logging.ERROR, logger="edgekit.spool"):
            other.execute("BEGIN IMMEDIATE")
            try:
                until(lambda: spool.stats()["errors"].get("SQLITE_BUSY", 0) >= 1)
            finally:
                other.execute("ROLLBACK")
            spool.ack("b", "points/d1", 1)
            try:
                got: list[int | None] | None = second.result(5)
            except SpoolError:  # failed with the prune's error: the caller retries (the gateway does)
                got = None
        assert got in (None, [2])
        assert got is not None or any(r.levelno >= logging.ERROR for r in caplog.records)
        # the committer is still there: the next submission commits
        assert spool.submit([("points/d1", "points", b"c" * 100, None)]).result(5) == [3 if got else 2]
    finally:
        other.close()
        spool.close()


def test_a_callback_raising_systemexit_neither_ends_the_committer_nor_fails_its_committed_group(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # SystemExit in a thread ends it without a word (threading ignores it): the rest of the group
    # would never settle and every later submission would hang
    spool = open_spool(tmp_path / "s.db")

    def bye(_adm: Admission) -> None:
        raise SystemExit(3)

    try:
        with caplog.at_level(logging.ERROR, logger="edgekit.spool"):
            with spool._ingest_lock:  # first one in flight; the next two share the next transaction
                first = spool.submit([("points/d1", "points", b"x", None)])
                committer = spool._committer
                assert committer is not None
                until(lambda: committer._busy)
                loud = spool.submit([("points/d1", "points", b"y", None)], bye)
                quiet = spool.submit([("points/d1", "points", b"z", None)])
            assert first.result(5) == [1]
            assert loud.result(5) == [2]
            assert quiet.result(5) == [3]  # committed with it: never reported failed (it would be resent)
            assert spool.submit([("points/d1", "points", b"w", None)]).result(5) == [4]
        assert any("callback failed" in r.getMessage() for r in caplog.records)
        assert spool.stats()["submit_transactions"] == 3
    finally:
        spool.close()


def test_submit_racing_close_does_not_start_a_second_committer(tmp_path: Path) -> None:
    # close() stops the committer first and only then marks the spool closed: a submit in between
    # used to start a new committer thread that nothing ever stopped
    spool = open_spool(tmp_path / "race.db")
    spool.submit([("points/d1", "points", b"a", None)]).result(5)
    old = spool._committer
    assert old is not None
    late: list[Admission] = []
    with spool._ingest_lock:  # close() waits here after stopping the committer
        closer = threading.Thread(target=spool.close)
        closer.start()
        until(lambda: not old._thread.is_alive())
        try:
            late.append(spool.submit([("points/d1", "points", b"late", None)]))
        except SpoolError as exc:
            assert "closed" in str(exc)
    closer.join(10)
    assert not closer.is_alive()
    if late:  # accepted: then it must settle (admitted before the close, or failed)
        try:
            late[0].result(5)
        except SpoolError:
            pass
    time.sleep(0.1)
    assert not [t.name for t in threading.enumerate() if t.name == "spool-commit:race.db"]


def test_a_queued_ack_of_the_previous_epoch_is_not_applied_after_a_quarantine(tmp_path: Path) -> None:
    # the uplink checked the ACK's epoch and queued it with submit_ack; before the committer applies
    # it the file is quarantined (new epoch, seqs from 1 again) and the committer commits a group
    # into the new file: the old epoch's seq must not acknowledge the new epoch's records
    spool = open_spool(tmp_path / "s.db")
    s = "points/d1"
    try:
        assert spool.submit([(s, "points", bytes([i]), None) for i in range(10)]).result(5)[-1] == 10
        old = spool.epoch
        with spool._ingest_lock:
            group = spool.submit([(s, "points", b"new" + bytes([i]), None) for i in range(10)])
            committer = spool._committer
            assert committer is not None
            until(lambda: committer._busy)  # taken: waits for the ingest lock to commit
            spool.submit_ack("b", s, 5)  # an ACK of the old epoch, checked and queued
            with spool._delivery_lock:  # what _recover does once a fresh check confirms damage
                spool._reopen_quarantined("damage found (test)")
        assert spool.epoch != old
        assert group.result(5) == list(range(1, 11))  # the new epoch's seqs 1..10
        assert spool.flush(5)
        assert [r.seq for r in spool.pending("b", limit=100) if r.stream == s] == list(range(1, 11))
        assert spool.first_unacked("b")[s] == 1
    finally:
        spool.close()


def test_sqlite_full_in_the_committers_transaction_fails_that_group_only(tmp_path: Path) -> None:
    spool = open_spool(tmp_path / "s.db", full_policy="drop_newest")
    f = "features/m1"
    try:
        assert spool.submit([(f, "features", b"f" * 100, None)]).result(5) == [1]
        pages = spool._ingest.execute("PRAGMA page_count").fetchone()[0]
        spool._ingest.execute(f"PRAGMA max_page_count = {pages + 2}")  # a real SQLITE_FULL
        with pytest.raises(SpoolDiskFull, match="disk is full"):
            spool.submit([(f, "features", b"f" * 4096, None)] * 50).result(5)
        assert [r.seq for r in spool.pending("a")] == [1]  # nothing of the failed group
        # the committer goes on; the disk now counts as low, so the policy applies
        assert spool.submit([(f, "features", b"f" * 4096, None)]).result(5) == [None]
        spool._ingest.execute("PRAGMA max_page_count = 1073741823")
    finally:
        spool.close()


def test_damage_found_by_the_committers_transaction_quarantines_and_it_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    f = "features/m1"
    spool = open_spool(path)
    spool.append_many([(f, "features", bytes([i % 256]) * 300, float(i)) for i in range(300)])
    spool.close()
    # the open check off and the damage done after opening: the committer's transaction finds it
    spool = open_spool(path, integrity_on_open="off", max_bytes=60_000)
    old = spool.epoch
    page = int.from_bytes(path.read_bytes()[16:18], "big")
    npages = path.stat().st_size // page
    rng = random.Random(0)
    with open(path, "r+b") as fh:
        for _ in range(4):
            fh.seek(rng.randrange(3, max(4, npages)) * page)
            fh.write(rng.randbytes(page))
    try:
        with pytest.raises(SpoolCorrupt, match="quarantined"):  # drop_oldest reads the damaged pages
            spool.submit([(f, "features", b"x" * 5000, None)] * 3).result(5)
        assert spool.epoch != old and spool.stats()["quarantined"] == 1
        assert spool.submit([(f, "features", b"y" * 5000, None)] * 3).result(5) == [1, 2, 3]
        assert [r.seq for r in spool.pending("b") if r.stream == f] == [1, 2, 3]
        assert spool.integrity_check()
    finally:
        spool.close()
