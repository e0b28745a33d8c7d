"""The delivery cache: segments admitted by this process go to the uplinks from memory, byte for byte
as SQLite holds them, bounded by ``delivery_cache_bytes``, forgotten when pruned; a reopened spool
reads (and CRC-checks) everything from the file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from spool_helpers import open_spool

from edgekit.codec import segment_blobs

F = "features/m1"


def _stored(path: Path) -> dict[tuple[str, int], bytes]:
    con = sqlite3.connect(path)
    try:
        return {(s, q): bytes(b) for s, q, b in con.execute("SELECT stream, seq, blob FROM records")}
    finally:
        con.close()


def test_cached_segments_are_the_stored_bytes_and_pruned_ones_are_forgotten(tmp_path: Path) -> None:
    s = open_spool(tmp_path / "s.db")
    recs = [bytes([i]) * 300 for i in range(8)]
    s.append_many([(F, "features", b, 0.0) for b in recs[:4]])
    s.append_many([(F, "features", b, 1.0) for b in recs[4:]])
    assert len(s._hot) == 2 and s._hot_bytes == sum(len(b) for _last, b in s._hot.values())
    rows = s.pending_segments("a")
    assert [(r.seq, r.count) for r in rows] == [(1, 4), (5, 4)]
    stored = _stored(tmp_path / "s.db")
    assert [r.blob for r in rows] == [stored[(F, 1)], stored[(F, 5)]]
    assert segment_blobs(rows[0].blob, 4) + segment_blobs(rows[1].blob, 4) == recs
    s.ack("a", F, 4)
    s.ack("b", F, 4)  # every routing uplink acked segment 1..4: pruned, and gone from the cache
    assert list(s._hot) == [(F, 5)]
    s.close()
    assert not s._hot and s._hot_bytes == 0


def test_cache_is_bounded_and_a_miss_reads_the_file(tmp_path: Path) -> None:
    s = open_spool(tmp_path / "s.db", delivery_cache_bytes=2000)
    for i in range(5):
        s.append_many([(F, "features", bytes([i]) * 300, float(i)), (F, "features", bytes([i]) * 300, float(i))])
    assert s._hot_bytes <= 2000 and 0 < len(s._hot) < 5
    assert (F, 1) not in s._hot  # the oldest went first
    rows = s.pending_segments("a")
    assert [r.seq for r in rows] == [1, 3, 5, 7, 9]
    assert [r.blob for r in rows] == [_stored(tmp_path / "s.db")[(F, q)] for q in (1, 3, 5, 7, 9)]
    s.close()
    off = open_spool(tmp_path / "off.db", delivery_cache_bytes=0)
    off.append_many([(F, "features", b"x" * 100, 0.0), (F, "features", b"y" * 100, 0.0)])
    assert not off._hot and [r.count for r in off.pending_segments("a")] == [2]
    off.close()


def test_reopened_spool_starts_with_an_empty_cache(tmp_path: Path) -> None:
    s = open_spool(tmp_path / "s.db")
    s.append_many([(F, "features", b"a" * 100, 0.0), (F, "features", b"b" * 100, 0.0)])
    s.close()
    s = open_spool(tmp_path / "s.db")
    assert not s._hot
    assert [r.seq for r in s.pending("a")] == [1, 2]
    s.close()
