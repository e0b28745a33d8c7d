"""Store files: one created with the segments layout gets 32 KiB pages, one created with a row layout
SQLite's default 4 KiB; a segments store made before with 4 KiB pages keeps them and keeps working
(the page size is fixed when a file is created)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from edgekit import codec
from edgekit.collector import Store, store_summary
from edgekit.collector.reader import read_features
from edgekit.types import FeatureFrame


def _segment(first: int, n: int) -> SimpleNamespace:
    blobs = [codec.pack(FeatureFrame("m01", np.full((2, 3), i, np.float32), ("a", "b", "c"), ("x", "y"),
                                     1.7e9 + i, i, np.zeros(2, np.uint8), ("", ""))) for i in range(first, first + n)]
    return SimpleNamespace(stream="features/m01", seq=first, kind="features", ts=0.0, count=n,
                           blob=codec.pack_segment(blobs, "features"))


def _page_size(path: Path) -> int:
    with sqlite3.connect(path) as raw:
        return int(raw.execute("PRAGMA page_size").fetchone()[0])


def test_new_segments_store_uses_32k_pages_and_an_old_4k_store_keeps_working(tmp_path: Path) -> None:
    for name, pages in (("new.sqlite", None), ("old.sqlite", 4096)):
        path = tmp_path / name
        if pages:
            with sqlite3.connect(path) as raw:  # a store file made before: SQLite's default pages
                raw.execute(f"PRAGMA page_size = {pages}")
                raw.execute("PRAGMA journal_mode = WAL")
                raw.execute("CREATE TABLE placeholder (x)")
        st = Store(path, features_layout="segments")
        st.write("gw-1", "ep", [_segment(1, 64)])
        st.commit()
        st.write("gw-1", "ep", [_segment(33, 64)])  # overlaps 33..64: only 65..96 are new
        st.commit()
        st.close()
        assert _page_size(path) == (pages or 32768)
        summary = store_summary(path)
        assert (summary["records"], summary["missing"], summary["duplicates"]) == (96, 0, 32)
        rows = read_features(path)  # {column: values}, one row per channel
        assert rows["seq"] == [q for q in range(1, 97) for _ in range(2)]
        assert rows["a"] == [float(q) for q in range(1, 97) for _ in range(2)]


def test_row_layout_stores_keep_sqlites_default_pages(tmp_path: Path) -> None:
    for layout in ("wide", "packed"):
        st = Store(tmp_path / f"{layout}.sqlite", features_layout=layout)
        st.write("gw-1", "ep", [_segment(1, 4)])
        st.commit()
        st.close()
        assert _page_size(tmp_path / f"{layout}.sqlite") == 4096
        assert store_summary(tmp_path / f"{layout}.sqlite")["records"] == 4
