"""Corrupt spool files: quarantined, new epoch, gap record, the spool keeps working — never a crash."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest
from spool_helpers import cfg, gaps, open_spool

from edgekit.errors import SpoolError
from edgekit.spool import Spool, SpoolCorrupt

F = "features/m1"


def _fill(path: Path, n: int = 50) -> str:
    s = open_spool(path)
    s.append_many([(F, "features", bytes([i % 256]) * 300, float(i)) for i in range(n)])
    s.append_many([("points/d1", "points", b"p" * 200, 0.0)] * 10)
    s.ack("a", F, 5)
    s.ack("b", F, 5)
    epoch = s.epoch
    s.close()
    return epoch


def _page_size(path: Path) -> int:
    """The file's page size, from its SQLite header (32 KiB for new spool files)."""
    return int.from_bytes(path.read_bytes()[16:18], "big")


def _flip_byte_inside(path: Path, marker: bytes, at: int = 1000) -> None:
    """Flip one byte ``at`` bytes into the first copy of ``marker`` in the file (inside a blob)."""
    data = bytearray(path.read_bytes())
    data[data.index(marker) + at] ^= 0xFF
    path.write_bytes(bytes(data))


def test_garbage_header_is_quarantined_with_unknown_count_gap(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "s.db"
    old = _fill(path)
    with open(path, "r+b") as f:
        f.write(b"this is not sqlite" * 10)
    s = open_spool(path)
    assert s.epoch != old
    quarantined = list(tmp_path.glob("s.db.corrupt-*"))
    assert len(quarantined) == 1
    assert s.stats()["quarantined"] == 1
    assert any(r.levelname == "ERROR" and "corrupt" in r.getMessage() for r in caplog.records)
    (g,) = gaps(s)
    assert (g.stream, g.count, g.reason) == ("*", -1, "corrupt")
    assert gaps(s, "b") == [g]  # every uplink routing "gap" hears of it
    assert s.append(F, "features", b"new", 1.0) == 1  # new epoch, numbering restarts
    assert s.integrity_check()
    s.close()


def test_damaged_btree_is_quarantined_and_salvaged_counts_reported(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    old = _fill(path, n=200)
    size = path.stat().st_size
    page = _page_size(path)
    with open(path, "r+b") as f:  # trash one page near the end: a records leaf or index page
        f.seek(size - 3 * page)
        f.write(b"\xa5" * page)
    s = open_spool(path)
    assert s.stats()["quarantined"] == 1
    assert s.epoch != old
    found = {g.stream: g for g in gaps(s)}
    assert found, "a gap record must report the loss"
    for g in found.values():
        assert g.reason == "corrupt"
        assert g.count == -1 or g.count > 0
    s.close()


@pytest.mark.parametrize("seed", range(12))
def test_random_damage_never_crashes(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    path = tmp_path / "s.db"
    _fill(path, n=100)
    data = bytearray(path.read_bytes())
    for _ in range(rng.randint(1, 4)):
        off = rng.randrange(len(data))
        n = rng.randint(1, 4096)
        data[off:off + n] = rng.randbytes(min(n, len(data) - off))
    path.write_bytes(bytes(data))
    s = open_spool(path)  # must not raise
    # whatever was detected, the spool works: admit, page, ack
    seq = s.append("event/gw", "event", b"after", 2.0)
    assert seq is not None
    rows = [r for r in s.pending("a") if r.stream == "event/gw"]
    assert rows and rows[-1].blob == b"after"
    s.ack("a", "event/gw", rows[-1].seq)
    s.close()


def test_newer_format_is_refused_not_quarantined(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _fill(path, n=10)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'format'")
    conn.close()
    with pytest.raises(SpoolError, match="newer"):
        open_spool(path)
    assert not list(tmp_path.glob("*.corrupt-*"))


def test_unopenable_path_is_an_error_not_a_quarantine(tmp_path: Path) -> None:
    path = tmp_path / "dir.db"
    path.mkdir()
    with pytest.raises(SpoolError, match="cannot open"):
        open_spool(path)
    assert path.is_dir() and not list(tmp_path.glob("*.corrupt-*"))


def test_empty_file_becomes_a_fresh_spool(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.touch()
    s = open_spool(path)
    assert s.stats()["quarantined"] == 0
    assert s.append(F, "features", b"x", 0.0) == 1
    s.close()


def test_quarantined_file_stays_readable_for_forensics(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    old = _fill(path, n=200)
    size = path.stat().st_size
    page = _page_size(path)
    with open(path, "r+b") as f:
        f.seek(size - 3 * page)
        f.write(b"\x00\xff" * (page // 2))
    s = Spool(path, cfg(), {"a": ["features", "gap"]})
    meta = dict(s._delivery.execute("SELECT key, value FROM meta").fetchall())
    s.close()
    assert meta["previous_epoch"] == old
    assert Path(meta["quarantined_file"]).exists()


@pytest.mark.parametrize("seed", range(6))
def test_damage_found_during_operation_is_quarantined_and_spool_goes_on(tmp_path: Path, seed: int) -> None:
    """With the open check off, damage surfaces in a query: SpoolCorrupt once, then a new epoch works."""
    path = tmp_path / "s.db"
    old = _fill(path, n=300)
    size = path.stat().st_size
    page = _page_size(path)
    rng = random.Random(seed)
    with open(path, "r+b") as f:
        for _ in range(4):  # trash whole pages past the schema pages
            f.seek(rng.randrange(3, max(4, size // page)) * page)
            f.write(rng.randbytes(page))
    s = open_spool(path, integrity_on_open="off")  # must not raise even if loading hits the damage
    raised = 0
    for _ in range(3):
        try:
            assert s.append(F, "features", b"x" * 500, 1.0) is not None
            s.pending("a", limit=1_000_000)
            s.pending("b", limit=1_000_000)
            s.backlog("b")
        except SpoolCorrupt as exc:
            raised += 1
            assert "quarantined" in str(exc)
    assert raised <= 1  # 0 when loading at open already hit the damage
    assert s.epoch != old and s.stats()["quarantined"] == 1
    assert any(g.reason == "corrupt" for g in gaps(s))
    assert len([r for r in s.pending("b") if r.stream == F]) == 3 - raised
    assert s.integrity_check()
    s.close()


def test_damaged_blob_bytes_fail_the_crc_and_become_a_gap(tmp_path: Path) -> None:
    """SQLite cannot see a flipped byte inside a blob; the per-row CRC does."""
    path = tmp_path / "s.db"
    s = open_spool(path)
    marker = bytes(range(256)) * 8
    # different ts: three 1-record segments, each with its own CRC
    s.append_many([(F, "features", b"a" * 100, 0.0), (F, "features", marker, 1.0), (F, "features", b"c" * 100, 2.0)])
    s.close()  # checkpointed into the main file
    _flip_byte_inside(path, marker)
    s = open_spool(path)  # quick_check passes: the b-tree is intact
    assert s.stats()["quarantined"] == 0
    assert not s.integrity_check()  # the full check includes CRCs
    assert [r.seq for r in s.pending("a") if r.stream == F] == [1, 3]
    (g,) = [g for g in gaps(s) if g.stream == F]
    assert (g.first_seq, g.last_seq, g.count, g.reason) == (2, 2, 1, "corrupt")
    assert s.stats()["dropped"] == {"corrupt": 1}
    assert [r.seq for r in s.pending("b") if r.stream == F] == [1, 3]  # dropped for every uplink
    assert s.integrity_check()
    s.close()


def test_damaged_segment_is_dropped_whole_and_every_record_counted(tmp_path: Path) -> None:
    """One CRC covers a segment: a flipped byte loses all its records, each counted once in the gap."""
    path = tmp_path / "s.db"
    s = open_spool(path)
    marker = bytes(range(256)) * 8
    s.append_many([(F, "features", b"a" * 100, 0.0), (F, "features", marker, 0.0), (F, "features", b"c" * 100, 0.0),
                   (F, "features", b"d" * 100, 5.0)])  # 1..3 one segment, 4 another
    assert s.stats()["segments"] == 2
    s.close()
    _flip_byte_inside(path, marker)
    s = open_spool(path)
    assert [r.seq for r in s.pending("a") if r.stream == F] == [4]
    (g,) = [g for g in gaps(s) if g.stream == F]
    assert (g.first_seq, g.last_seq, g.count, g.reason) == (1, 3, 3, "corrupt")
    assert s.stats()["dropped"] == {"corrupt": 3} and s.stats()["rows"] == 2  # record 4 and the gap record
    assert s.integrity_check()
    s.close()
