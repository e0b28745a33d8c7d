"""The store with segments: per-record dedup of overlapping segments, NACKs, the segments layout and
its readers (same rows as the wide and packed layouts), the format-1 migration."""

from __future__ import annotations

import argparse
import csv
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from edgekit import codec
from edgekit.cli import store as store_cli
from edgekit.collector import Store, store_stats
from edgekit.collector.reader import read_features
from edgekit.types import FeatureFrame

NAMES = ("rms", "kurtosis", "seq")  # "seq" collides with a fixed column: stored as f_seq


def frame(i: int, asset: str = "m01") -> FeatureFrame:
    vals = np.arange(2 * len(NAMES), dtype=np.float32).reshape(2, len(NAMES)) + i
    vals[1, 0] = np.nan
    return FeatureFrame(asset, vals, NAMES, ("de", "fe"), 100.0 + i, 1000 + i, np.array([0, 2], np.uint8), ("", "cable"))


def seg(stream: str, first: int, blobs: list[bytes], kind: str = "features") -> SimpleNamespace:
    return SimpleNamespace(stream=stream, seq=first, kind=kind, ts=1.0, blob=codec.pack_segment(blobs, kind),
                           count=len(blobs))


def frames_blobs(lo: int, hi: int) -> list[bytes]:
    return [codec.pack(frame(i)) for i in range(lo, hi + 1)]


@pytest.mark.parametrize("layout", ["wide", "packed", "segments"])
def test_overlapping_segments_store_each_record_once(tmp_path: Path, layout: str) -> None:
    st = Store(tmp_path / "s.sqlite", features_layout=layout)
    r1 = st.write("gw", "ep", [seg("f/m01", 1, frames_blobs(1, 10))])
    st.commit()
    # after a crash: a segment overlapping what is stored, and a resend of a part of the first one
    r2 = st.write("gw", "ep", [seg("f/m01", 5, frames_blobs(5, 14)), seg("f/m01", 3, frames_blobs(3, 4))])
    r3 = st.write("gw", "ep", [seg("f/m01", 20, frames_blobs(20, 22)), seg("f/m01", 16, frames_blobs(16, 21))])
    st.commit()
    st.close()
    assert (r1.stored, r1.duplicates, r1.acks) == (10, 0, {"f/m01": 10})
    assert (r2.stored, r2.duplicates, r2.acks) == (4, 8, {"f/m01": 14})
    assert (r3.stored, r3.duplicates, r3.acks) == (7, 2, {"f/m01": 22})  # 16..19 fill a hole below 20..22
    (s,) = store_stats(tmp_path / "s.sqlite")
    assert (s["records"], s["first_seq"], s["last_seq"], s["missing"], s["duplicates_rejected"]) == (21, 1, 22, 1, 10)
    rows = read_features(tmp_path / "s.sqlite")
    got = sorted(zip(rows["seq"], rows["channel"], strict=True))
    assert got == sorted((q, ch) for q in [*range(1, 15), *range(16, 23)] for ch in ("de", "fe"))


def test_segments_layout_keeps_a_stacked_segment_as_one_row(tmp_path: Path) -> None:
    st = Store(tmp_path / "s.sqlite", features_layout="segments")
    st.write("gw", "ep", [seg("f/m01", 1, frames_blobs(1, 64))])
    st.commit()
    st.close()
    con = sqlite3.connect(tmp_path / "s.sqlite")
    assert con.execute("SELECT count(*) FROM feature_segments").fetchone()[0] == 1
    assert con.execute("SELECT count(*) FROM received").fetchone()[0] == 1  # one range, not 64 rows
    n, nc, nf, vals = con.execute('SELECT n_frames, n_channels, n_features, "values" FROM feature_segments').fetchone()
    con.close()
    v = np.frombuffer(vals, "<f4").reshape(n, nc, nf)
    assert np.array_equal(v[5], frame(6).values, equal_nan=True)


def test_all_three_layouts_read_and_export_as_the_same_rows(tmp_path: Path) -> None:
    def fill(layout: str) -> Path:
        path = tmp_path / f"{layout}.sqlite"
        st = Store(path, features_layout=layout)
        single = SimpleNamespace(stream="f/m02", seq=1, kind="features", ts=1.0, blob=codec.pack(frame(7, "m02")))
        mixed = [codec.pack(frame(1)), codec.pack(frame(2, "m03")), codec.pack(frame(3))]  # not stackable
        st.write("gw", "ep", [seg("f/m01", 1, frames_blobs(1, 5)), single, seg("f/mix", 1, mixed)])
        st.commit()
        st.close()
        return path

    tables = {}
    for layout in ("wide", "packed", "segments"):
        path = fill(layout)
        rows = read_features(path)
        assert "f_seq" in rows and len(rows["seq"]) == 2 * (5 + 1 + 3)
        tables[layout] = sorted(zip(*rows.values(), strict=True), key=repr)
        out = tmp_path / f"out-{layout}"
        assert store_cli.export(argparse.Namespace(store=str(path), out=str(out), format="csv")) == 0
        with open(out / "features.csv") as f:
            exported = list(csv.reader(f))
        assert exported[0] == list(rows) and len(exported) == 1 + 2 * 9
    assert tables["wide"] == tables["packed"] == tables["segments"]
    nan_row = next(r for r in tables["segments"] if r[6] == "fe")
    assert nan_row[9] is None  # NaN reads as NULL/None in every layout


def test_bad_segments_are_nacked_whole_and_bad_records_alone(tmp_path: Path) -> None:
    st = Store(tmp_path / "s.sqlite", features_layout="segments")
    broken = SimpleNamespace(stream="f/a", seq=1, kind="features", ts=1.0,
                             blob=codec.pack_segment(frames_blobs(1, 4), "features"), count=5)  # holds 4, says 5
    mixed = seg("f/b", 1, [codec.pack(frame(1)), b"junk", codec.pack(frame(3))])
    res = st.write("gw", "ep", [broken, mixed])
    st.commit()
    st.close()
    assert res.stored == 2
    assert [(s, q, n) for s, q, _why, n in res.nacks] == [("f/a", 1, 5), ("f/b", 2, 1)]
    assert res.acks == {"f/a": 5, "f/b": 3}
    stats = {s["stream"]: s for s in store_stats(tmp_path / "s.sqlite")}
    assert (stats["f/a"]["records"], stats["f/a"]["nacked"]) == (5, 5)
    assert (stats["f/b"]["records"], stats["f/b"]["nacked"], stats["f/b"]["missing"]) == (3, 1, 0)


def test_format_1_store_is_migrated_and_keeps_deduplicating(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite"
    Store(path).close()
    con = sqlite3.connect(path)
    con.executescript("""
        ALTER TABLE received DROP COLUMN last_seq;  -- back to the format-1 table
        DROP TABLE feature_segments;
        INSERT INTO received VALUES ('gw', 'f/m01', 'ep', 1, 'features', 1.0, 0, 'ok'),
                                    ('gw', 'f/m01', 'ep', 2, 'features', 1.0, 0, 'ok');
        PRAGMA user_version = 1;
    """)
    con.close()
    (s,) = store_stats(path)  # read-only, before any migration
    assert (s["records"], s["last_seq"]) == (2, 2)
    st = Store(path, features_layout="segments")
    res = st.write("gw", "ep", [seg("f/m01", 1, frames_blobs(1, 4))])
    st.commit()
    st.close()
    assert (res.stored, res.duplicates) == (2, 2)
    (s,) = store_stats(path)
    assert (s["records"], s["missing"], s["duplicates_rejected"]) == (4, 0, 2)
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 2
    con.close()


def test_segment_values_written_through_blob_handles_are_exact_and_transactional(tmp_path: Path) -> None:
    st = Store(tmp_path / "s.sqlite", features_layout="segments")
    blobs_a, blobs_b = frames_blobs(1, 40), frames_blobs(41, 43)
    st.write("gw", "ep", [seg("f/a", 1, blobs_a), seg("f/b", 41, blobs_b)])  # two rows in one write
    empty = codec.pack(FeatureFrame("m01", np.zeros((0, 0), np.float32), (), (), 1.0, 7, np.zeros(0, np.uint8), ()))
    st.write("gw", "ep", [seg("f/e", 1, [empty, empty])])  # a zero-length values BLOB
    st.commit()
    st.write("gw", "ep", [seg("f/c", 1, frames_blobs(50, 60))])
    st.rollback()  # not committed: no row, no values
    st.close()
    con = sqlite3.connect(tmp_path / "s.sqlite")
    rows = con.execute('SELECT stream, typeof("values"), "values" FROM feature_segments ORDER BY stream').fetchall()
    con.close()
    assert [(r[0], r[1]) for r in rows] == [("f/a", "blob"), ("f/b", "blob"), ("f/e", "blob")]
    for (_stream, _type, vals), blobs in zip(rows, [blobs_a, blobs_b], strict=False):
        want = b"".join(codec.unpack(b).values.astype("<f4").tobytes() for b in blobs)  # type: ignore[union-attr]
        assert vals == want
    assert rows[2][2] == b""
