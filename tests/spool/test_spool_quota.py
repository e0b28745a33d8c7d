"""Full policies on a tiny quota: exact gap counts, block + wait_for_space, disk reserve, disk full."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from spool_helpers import gap_total, gaps, open_spool

from edgekit.errors import SpoolError, SpoolFull
from edgekit.spool import SpoolDiskFull

F = "features/m1"


def test_drop_newest_counts_every_drop_exactly(tmp_path: Path) -> None:
    s = open_spool(tmp_path / "s.db", max_bytes=1000, full_policy="drop_newest", gap_interval=3600)
    res = s.append_many([(F, "features", b"x" * 100, 0.0)] * 25)
    assert res[:10] == list(range(1, 11)) and res[10:] == [None] * 15
    assert s.append(F, "features", b"x" * 100, 0.0) is None  # seq 26 consumed too
    assert s.stats()["dropped"] == {"drop_newest": 16}
    assert s.stats()["open_gaps"] == {F: 16}  # coalesced, not sealed yet (interval 1 h)
    assert gaps(s) == []
    assert s.flush_gaps() == 1
    assert s.stats()["gaps"] == 1 and s.stats()["open_gaps"] == {}
    (g,) = gaps(s)
    assert (g.stream, g.first_seq, g.last_seq, g.count, g.reason) == (F, 11, 26, 16, "drop_newest")
    s.ack("a", F, 10)
    s.ack("b", F, 10)
    assert s.append(F, "features", b"x" * 100, 0.0) == 27  # room again, numbering continues
    s.close()


def test_drop_oldest_drops_oldest_first_across_streams(tmp_path: Path) -> None:
    s = open_spool(tmp_path / "s.db", max_bytes=1000, full_policy="drop_oldest", gap_interval=3600)
    # distinct ts: one segment per record (a segment is dropped whole; see the segment test below)
    s.append_many([(F, "features", b"f" * 100, float(i)) for i in range(5)]
                  + [("points/d1", "points", b"p" * 100, float(i)) for i in range(5)])
    s.append_many([("event/gw", "event", b"e" * 100, 0.0)] * 3)  # drops features 1..3
    assert [r.seq for r in s.pending("a") if r.stream == F] == [4, 5]
    assert [r.seq for r in s.pending("b") if r.stream == "points/d1"] == [1, 2, 3, 4, 5]
    s.append("event/gw", "event", b"e" * 250, 0.0)  # drops 4, 5 of features and 1 of points
    assert gap_total(s, F, "drop_oldest") == 5
    assert gap_total(s, "points/d1", "drop_oldest") == 1
    assert s.stats()["dropped"] == {"drop_oldest": 6}
    assert s.stats()["bytes"] <= 1000 + sum(len(r.blob) for r in s.pending("a") if r.kind == "gap")
    assert s.integrity_check()
    s.close()


def test_drop_oldest_drops_a_segment_whole_and_counts_each_record_once(tmp_path: Path) -> None:
    s = open_spool(tmp_path / "s.db", max_bytes=1000, full_policy="drop_oldest", gap_interval=3600)
    s.append_many([(F, "features", b"f" * 100, 0.0)] * 5 + [("points/d1", "points", b"p" * 100, 0.0)] * 5)
    assert s.stats()["segments"] == 2
    s.append("event/gw", "event", b"e" * 100, 0.0)  # needs 100 bytes: the oldest segment (F 1..5) goes
    assert [r.seq for r in s.pending("a") if r.stream == F] == []
    assert [r.seq for r in s.pending("b") if r.stream == "points/d1"] == [1, 2, 3, 4, 5]
    assert gap_total(s, F, "drop_oldest") == 5 and s.stats()["dropped"] == {"drop_oldest": 5}
    (g,) = [g for g in gaps(s) if g.stream == F]
    assert (g.first_seq, g.last_seq, g.count) == (1, 5, 5)
    assert s.integrity_check()
    s.close()


def test_drop_oldest_prunes_acked_rows_before_dropping(tmp_path: Path) -> None:
    s = open_spool(tmp_path / "s.db", max_bytes=1000, full_policy="drop_oldest", prune_chunk=1)
    s.append_many([(F, "features", b"f" * 100, 0.0)] * 10)
    s.ack("a", F, 10)
    s.ack("b", F, 10)  # prunes one row only (chunk 1): 9 acked rows still stored
    s.append_many([(F, "features", b"f" * 100, 0.0)] * 10)
    assert s.stats()["dropped"] == {} and gap_total(s, F) == 0
    assert [r.seq for r in s.pending("b")] == list(range(11, 21))
    s.close()


def test_block_raises_spoolfull_admits_nothing_and_wait_for_space(tmp_path: Path) -> None:
    s = open_spool(tmp_path / "s.db", max_bytes=1000, full_policy="block")
    s.append_many([(F, "features", b"f" * 100, 0.0)] * 9)
    with pytest.raises(SpoolFull):
        s.append_many([(F, "features", b"f" * 100, 0.0)] * 2)  # all or nothing
    assert s.stats()["blocked"] == 1 and s.stats()["dropped"] == {}
    assert s.wait_for_space(0.0, 100)  # 100 bytes are free ...
    assert not s.wait_for_space(0.05)  # ... but the refused call needed 200: no busy retry loop
    assert s.append(F, "features", b"f" * 100, 0.0) == 10  # the failed call consumed no seq
    assert not s.wait_for_space(0.05, 100)

    def deliver() -> None:  # 1..9 are one segment: it is freed once acknowledged whole
        time.sleep(0.1)
        s.ack("a", F, 9)
        s.ack("b", F, 9)

    t = threading.Thread(target=deliver)
    t.start()
    assert s.wait_for_space(5.0, 500)
    t.join()
    assert s.append_many([(F, "features", b"f" * 100, 0.0)] * 5) == [11, 12, 13, 14, 15]
    with pytest.raises(SpoolError, match="exceeds the spool quota"):
        s.append_many([(F, "features", b"f" * 600, 0.0)] * 2)
    assert gap_total(s, F) == 0  # block never drops
    s.close()


@pytest.mark.parametrize("policy", ["drop_oldest", "drop_newest", "block"])
def test_record_larger_than_quota_is_dropped_as_oversize(tmp_path: Path, policy: str) -> None:
    s = open_spool(tmp_path / "s.db", max_bytes=100, full_policy=policy)
    assert s.append_many([(F, "features", b"x" * 101, 0.0), (F, "features", b"x", 0.0)]) == [None, 2]
    (g,) = [g for g in gaps(s) if g.stream == F]  # gap_interval 0: sealed in the same transaction
    assert (g.first_seq, g.last_seq, g.count, g.reason) == (1, 1, 1, "oversize")
    s.close()


@pytest.mark.parametrize("policy", ["drop_oldest", "drop_newest", "block"])
def test_free_disk_reserve_stops_growth(tmp_path: Path, policy: str) -> None:
    s = open_spool(tmp_path / "s.db", max_bytes=1 << 20, full_policy=policy)
    s.append_many([(F, "features", b"f" * 100, float(i)) for i in range(3)])  # three 1-record segments
    s.close()
    # a reserve larger than any disk: the spool may not grow beyond what it holds
    s = open_spool(tmp_path / "s.db", max_bytes=1 << 20, full_policy=policy, reserve_free_bytes=1 << 60)
    if policy == "block":
        with pytest.raises(SpoolFull):
            s.append(F, "features", b"f" * 100, 0.0)
    elif policy == "drop_newest":
        assert s.append(F, "features", b"f" * 100, 0.0) is None
        assert gap_total(s, F, "drop_newest") == 1
    else:
        assert s.append(F, "features", b"f" * 100, 0.0) == 4
        assert [r.seq for r in s.pending("b") if r.stream == F] == [2, 3, 4]
        assert gap_total(s, F, "drop_oldest") == 1
    assert s.stats()["disk_low"] is True
    s.close()


def test_sqlite_full_raises_spooldiskfull_and_keeps_working(tmp_path: Path) -> None:
    s = open_spool(tmp_path / "s.db", max_bytes=1 << 30, full_policy="drop_newest")
    s.append(F, "features", b"f" * 100, 0.0)
    pages = s._ingest.execute("PRAGMA page_count").fetchone()[0]
    s._ingest.execute(f"PRAGMA max_page_count = {pages + 2}")  # the file may hardly grow: real SQLITE_FULL
    with pytest.raises(SpoolDiskFull, match="disk is full"):
        s.append_many([(F, "features", b"f" * 4096, 0.0)] * 50)
    assert s.stats()["errors"].get("SQLITE_FULL") == 1
    assert [r.seq for r in s.pending("a")] == [1]  # earlier data intact, the failed group left no trace
    # the spool now treats the disk as low: the policy applies instead of another SQLite error
    assert s.append(F, "features", b"f" * 4096, 0.0) is None
    s._ingest.execute("PRAGMA max_page_count = 1073741823")
    s.close()
    s = open_spool(tmp_path / "s.db", max_bytes=1 << 30, full_policy="drop_newest")
    assert s.append(F, "features", b"f", 0.0) == 3
    assert gap_total(s, F, "drop_newest") == 1
    assert s.integrity_check()
    s.close()


def test_gap_records_back_off_while_earlier_ones_are_unacknowledged(tmp_path: Path) -> None:
    s = open_spool(tmp_path / "s.db", max_bytes=100, full_policy="drop_newest", gap_interval=0.2)
    s.append(F, "features", b"x" * 100, 0.0)
    assert s.append(F, "features", b"x", 0.0) is None
    time.sleep(0.25)
    s.append(F, "features", b"x", 0.0)  # dropped too; the first open gap is due: sealed now
    assert [g.count for g in gaps(s)] == [2]
    s.append(F, "features", b"x", 0.0)
    time.sleep(0.25)
    s.append(F, "features", b"x", 0.0)
    assert s.stats()["open_gaps"] == {F: 2}  # not sealed: the first gap record is still unacknowledged
    for u in ("a", "b"):
        s.ack(u, "gap/" + F, 1)
    s.append(F, "features", b"x", 0.0)
    assert s.stats()["open_gaps"] == {} and [g.count for g in gaps(s)] == [3]
    s.close()
