"""Spool basics on real SQLite files: seqs, routing, paging, cumulative acks, pruning, reopen, threads."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from spool_helpers import ROUTES, cfg, open_spool

from edgekit.errors import SpoolError
from edgekit.spool import Spool, SpoolConfig


def test_seqs_start_at_one_per_stream_and_survive_reopen(tmp_path: Path) -> None:
    s = open_spool(tmp_path / "s.db")
    assert s.append_many([("features/m1", "features", b"a", 1.0), ("points/d1", "points", b"b", 1.0),
                          ("features/m1", "features", b"c", 2.0)]) == [1, 1, 2]
    epoch = s.epoch
    s.close()
    s = open_spool(tmp_path / "s.db")
    assert s.epoch == epoch
    assert s.append("features/m1", "features", b"d", 3.0) == 3
    rows = s.pending("a")
    assert [(r.stream, r.seq, r.blob, r.epoch) for r in rows] == [
        ("features/m1", 1, b"a", epoch), ("features/m1", 2, b"c", epoch), ("features/m1", 3, b"d", epoch)]
    s.close()


def test_routing_ack_and_delete_only_when_every_routing_uplink_acked(tmp_path: Path) -> None:
    s = open_spool(tmp_path / "s.db")
    s.append_many([("features/m1", "features", b"f" * 10, 1.0)] * 4 + [("points/d1", "points", b"p" * 7, 1.0)])
    assert [(r.stream, r.seq) for r in s.pending("a")] == [("features/m1", q) for q in (1, 2, 3, 4)]
    assert len(s.pending("b")) == 5
    assert s.backlog("b")[:2] == (5, 47)
    assert s.stats()["segments"] == 2  # features 1..4 are one segment, points 1 another
    s.ack("a", "features/m1", 3)
    assert [r.seq for r in s.pending("a")] == [4]
    assert s.stats()["rows"] == 5  # b has not acked: nothing deleted
    s.ack("b", "features/m1", 2)
    assert s.stats()["rows"] == 5  # seqs 1, 2 acked by both, but their segment also holds 3, 4
    s.ack("b", "features/m1", 1)  # older ack: no-op
    assert s.first_unacked("a") == {"features/m1": 4}
    assert s.first_unacked("b") == {"features/m1": 3, "points/d1": 1}
    s.ack("b", "points/d1", 1)
    assert s.backlog("b") == (2, 40, 1.0)  # bytes of whole segments (1..4 is partly acked)
    assert s.backlog("a")[0] == 1
    s.close()
    s = open_spool(tmp_path / "s.db")  # cursors are durable
    assert [r.seq for r in s.pending("a")] == [4]
    assert [r.seq for r in s.pending("b")] == [3, 4]
    assert s.integrity_check()
    s.close()


def test_unrouted_kind_gets_a_seq_but_is_not_stored(tmp_path: Path) -> None:
    s = open_spool(tmp_path / "s.db")
    assert s.append_many([("waveform/m1", "waveform", b"w", 1.0)] * 2) == [1, 2]
    assert s.stats()["rows"] == 0 and s.stats()["unrouted"] == 2
    s.close()


def test_pending_limits_and_after(tmp_path: Path) -> None:
    s = open_spool(tmp_path / "s.db")
    s.append_many([("features/m1", "features", b"x" * 100, float(i)) for i in range(10)]
                  + [("event/gw", "event", b"e", 0.5)])
    rows = s.pending("a", limit=3)
    assert [(r.stream, r.seq) for r in rows] == [("features/m1", 1), ("features/m1", 2), ("features/m1", 3)]
    assert len(s.pending("a", max_bytes=250)) == 2
    assert len(s.pending("a", max_bytes=10)) == 1  # at least one row, even if it alone is too big
    nxt = s.pending("a", after={"features/m1": 8})
    assert [(r.stream, r.seq) for r in nxt] == [("features/m1", 9), ("features/m1", 10), ("event/gw", 1)]
    s.close()


def test_bad_calls_are_clear_errors(tmp_path: Path) -> None:
    s = open_spool(tmp_path / "s.db")
    with pytest.raises(SpoolError, match="unknown uplink 'c'"):
        s.pending("c")
    with pytest.raises(SpoolError, match="not one of"):
        s.append("x", "pictures", b"", 0.0)
    s.append("features/m1", "features", b"x", 0.0)
    with pytest.raises(SpoolError, match="assigned only up to 1"):
        s.ack("a", "features/m1", 2)
    with pytest.raises(SpoolError, match="unknown record kind"):
        Spool(tmp_path / "t.db", SpoolConfig(), {"a": ["movies"]})
    s.close()
    with pytest.raises(SpoolError, match="closed"):
        s.append("features/m1", "features", b"x", 0.0)


def test_ack_prunes_in_bounded_chunks(tmp_path: Path) -> None:
    s = open_spool(tmp_path / "s.db", prune_chunk=10)
    s.append_many([("features/m1", "features", b"x", float(i)) for i in range(35)])  # 35 segments (ts differ)
    assert s.stats()["segments"] == 35
    s.ack("a", "features/m1", 35)
    s.ack("b", "features/m1", 35)
    assert s.stats()["rows"] == 25  # one chunk per ack
    assert s.pending("a") == [] and s.pending("b") == []
    while s.prune():
        pass
    assert s.stats()["rows"] == 0 and s.stats()["pruned"] == 35
    s.close()


def test_new_uplink_receives_everything_still_stored(tmp_path: Path) -> None:
    s = open_spool(tmp_path / "s.db")
    s.append_many([("features/m1", "features", b"x", 0.0)] * 3)
    s.ack("a", "features/m1", 3)
    s.close()
    s = Spool(tmp_path / "s.db", cfg(), {**ROUTES, "c": ("features",)})
    assert [r.seq for r in s.pending("c")] == [1, 2, 3]
    s.close()
    s = Spool(tmp_path / "s.db", cfg(), {"a": ROUTES["a"]})  # b removed: its holds are released
    assert s.stats()["rows"] == 0
    s.close()


def test_worker_thread_appends_while_loop_thread_acks(tmp_path: Path) -> None:
    s = open_spool(tmp_path / "s.db", synchronous="normal", prune_chunk=16)
    n_batches, per = 60, 20
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for i in range(n_batches):
                s.append_many([("features/m1", "features", bytes([i]) * 50, float(i))] * per)
        except BaseException as exc:  # surfaced by the assert below
            errors.append(exc)

    t = threading.Thread(target=writer)
    t.start()
    got = {"a": 0, "b": 0}
    while t.is_alive() or any(s.pending(u) for u in got):
        for u in got:
            rows = s.pending(u, limit=50)
            for r in rows:
                assert r.seq == got[u] + 1
                got[u] = r.seq
            if rows:
                s.ack(u, "features/m1", rows[-1].seq)
    t.join()
    assert not errors
    assert got == {"a": n_batches * per, "b": n_batches * per}
    while s.prune():
        pass
    assert s.stats()["rows"] == 0 and s.stats()["bytes"] == 0
    assert s.integrity_check()
    s.close()


def test_concurrent_drops_and_prunes_keep_the_byte_count_exact(tmp_path: Path) -> None:
    """Ingest drops (drop_oldest) and delivery prunes delete rows at once; counts must stay exact."""
    import sqlite3

    from edgekit.codec import GapRecord, unpack

    s = Spool(tmp_path / "s.db", cfg(max_bytes=20_000, full_policy="drop_oldest", synchronous="normal",
                                      prune_chunk=8), {"a": ("features", "gap")})
    results: list[int | None] = []
    t = threading.Thread(target=lambda: [results.extend(s.append_many(
        [("features/m1", "features", b"x" * 100, 0.0)] * 10)) for _ in range(300)])
    t.start()
    received: set[int] = set()
    gap_count = 0

    def drain(limit: int) -> None:
        nonlocal gap_count
        rows = s.pending("a", limit=limit)
        last: dict[str, int] = {}
        for r in rows:
            if r.kind == "gap":
                g = unpack(r.blob)
                assert isinstance(g, GapRecord)
                gap_count += g.count
            else:
                received.add(r.seq)
            last[r.stream] = r.seq
        for stream, seq in last.items():
            s.ack("a", stream, seq)

    while t.is_alive():
        drain(64)
        time.sleep(0.003)  # the consumer must fall behind now and then, or the quota never fills
    t.join()
    s.flush_gaps()
    drain(1_000_000)
    assert len(results) == 3000
    missing = {q for q in range(1, 3001)} - received
    assert missing, "the quota never filled: the test did not exercise drops"
    assert gap_count == s.stats()["dropped_total"] >= len(missing)
    with sqlite3.connect(tmp_path / "s.db") as raw:
        segs, rows, nbytes = raw.execute(
            "SELECT count(*), coalesce(sum(last_seq - seq + 1), 0), coalesce(sum(size), 0) FROM records").fetchone()
    raw.close()
    st = s.stats()
    assert (st["segments"], st["rows"], st["bytes"]) == (segs, rows, nbytes)
    assert s.integrity_check()
    s.close()


def test_pending_pages_oldest_first_across_many_streams(tmp_path: Path) -> None:
    """Paging with small limits gives exactly the oldest rows overall (checked against one big read)."""
    import random

    rng = random.Random(7)
    s = Spool(tmp_path / "s.db", cfg(synchronous="normal"), {"a": ("features", "points")})
    streams = [f"features/m{i}" for i in range(12)] + ["points/d1"]
    for _ in range(60):  # skewed interleaving: some streams far busier than others
        s.append_many([(rng.choice(streams[: rng.randint(1, len(streams))]), "features", b"x", 0.0)
                       for _ in range(rng.randint(1, 30))])
    heads = {r.stream: r.seq for r in s.pending("a", limit=1_000_000, max_bytes=1 << 40)}
    for stream in rng.sample(sorted(heads), 5):
        s.ack("a", stream, rng.randint(1, heads[stream]))
    everything = s.pending("a", limit=1_000_000, max_bytes=1 << 40)
    for limit in (1, 2, 5, 17, 64, 256, 1000):
        got = s.pending("a", limit=limit, max_bytes=1 << 40)
        assert [(r.stream, r.seq) for r in got] == [(r.stream, r.seq) for r in everything[:limit]]
    after = {st: 3 for st in streams[::2]}
    want = [r for r in everything if r.seq > after.get(r.stream, 0)][:40]
    assert [(r.stream, r.seq) for r in s.pending("a", limit=40, after=after)] == [(r.stream, r.seq) for r in want]
    s.close()


def test_public_names_are_sorted_and_importable() -> None:
    import edgekit.spool as pkg

    assert pkg.__all__ == sorted(pkg.__all__)
    for name in pkg.__all__:
        assert getattr(pkg, name) is not None


def test_pending_hands_out_only_rows_whose_admission_is_recorded(tmp_path: Path) -> None:
    """A row committed but not yet in the spool's state (append_many between COMMIT and its
    bookkeeping) must not be sent: an ACK for it would be refused as a seq never assigned."""
    import sqlite3
    import zlib

    s = Spool(tmp_path / "s.db", cfg(), {"a": ("features", "gap")})
    s.append_many([("features/m1", "features", b"x" * 10, 0.0)] * 3)
    with sqlite3.connect(tmp_path / "s.db") as raw:  # the same state as that window, frozen
        raw.execute("INSERT INTO records (stream, seq, last_seq, kind, ts, size, crc, blob) VALUES (?,?,?,?,?,?,?,?)",
                    ("features/m1", 4, 4, "features", 0.0, 10, zlib.crc32(b"y" * 10), b"y" * 10))
    assert [r.seq for r in s.pending("a")] == [1, 2, 3]
    s.ack("a", "features/m1", 3)
    s.close()


def test_new_files_use_32k_pages_and_older_4k_files_still_open(tmp_path: Path) -> None:
    import sqlite3

    s = Spool(tmp_path / "new.db", cfg(), {"a": ("features", "gap")})
    s.append_many([("features/m1", "features", b"x" * 2500, 0.0)] * 3)
    s.close()
    with sqlite3.connect(tmp_path / "new.db") as raw:
        assert raw.execute("PRAGMA page_size").fetchone()[0] == 32768
    with sqlite3.connect(tmp_path / "old.db") as raw:  # a file made before: 4 KiB pages, WAL
        raw.execute("PRAGMA page_size = 4096")
        raw.execute("PRAGMA journal_mode = WAL")
    s = Spool(tmp_path / "old.db", cfg(), {"a": ("features", "gap")})
    assert s.append_many([("features/m1", "features", b"y" * 2500, 0.0)] * 2) == [1, 2]
    assert [r.seq for r in s.pending("a")] == [1, 2]
    s.close()
    with sqlite3.connect(tmp_path / "old.db") as raw:
        assert raw.execute("PRAGMA page_size").fetchone()[0] == 4096
    s = Spool(tmp_path / "old.db", cfg(), {"a": ("features", "gap")})
    assert [r.seq for r in s.pending("a")] == [1, 2]
    s.close()


def test_format_1_file_is_migrated_on_open(tmp_path: Path) -> None:
    """A spool written by format 1 (one row per record, no last_seq) opens as 1-record segments."""
    import sqlite3
    import zlib

    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as raw:
        raw.executescript("""
            PRAGMA journal_mode = WAL;
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE streams (stream TEXT PRIMARY KEY, last_seq INTEGER NOT NULL, kinds TEXT NOT NULL DEFAULT '');
            CREATE TABLE records (id INTEGER PRIMARY KEY, stream TEXT NOT NULL, seq INTEGER NOT NULL,
                kind TEXT NOT NULL, ts REAL NOT NULL, size INTEGER NOT NULL, crc INTEGER NOT NULL, blob BLOB NOT NULL);
            CREATE INDEX records_by_stream ON records (stream, seq, kind, size, ts);
            CREATE TABLE cursors (uplink TEXT NOT NULL, stream TEXT NOT NULL, acked INTEGER NOT NULL,
                PRIMARY KEY (uplink, stream));
            CREATE TABLE open_gaps (stream TEXT NOT NULL, reason TEXT NOT NULL, first_seq INTEGER NOT NULL,
                last_seq INTEGER NOT NULL, count INTEGER NOT NULL, since REAL NOT NULL, PRIMARY KEY (stream, reason));
            INSERT INTO meta VALUES ('format', '1'), ('epoch', 'e1'), ('created', '0');
            INSERT INTO streams VALUES ('features/m1', 3, 'features');
            INSERT INTO cursors VALUES ('a', 'features/m1', 1);
        """)
        for q in (1, 2, 3):
            blob = bytes([q]) * 10
            raw.execute("INSERT INTO records (stream, seq, kind, ts, size, crc, blob) VALUES (?,?,?,?,?,?,?)",
                        ("features/m1", q, "features", 0.0, 10, zlib.crc32(blob), blob))
    raw.close()
    s = Spool(path, cfg(), {"a": ("features", "gap")})
    assert s.epoch == "e1" and s.stats()["rows"] == 2 and s.stats()["segments"] == 2  # seq 1 acked: pruned
    assert [(r.seq, r.blob) for r in s.pending("a")] == [(2, b"\x02" * 10), (3, b"\x03" * 10)]
    assert s.append("features/m1", "features", b"n", 0.0) == 4
    s.ack("a", "features/m1", 4)
    assert s.stats()["rows"] == 0
    assert s.integrity_check()
    s.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT value FROM meta WHERE key = 'format'").fetchone() == ("2",)
    raw.close()
