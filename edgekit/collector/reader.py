"""Features out of a collector store as the same rows whatever the layout (wide, packed, segments).

The store (:mod:`edgekit.collector.store`) keeps FeatureFrames in one of three layouts. Readers
should not care: :func:`feature_rows` yields one row per frame and channel with the ``features``
table's columns — ``gateway, stream, seq, asset, block_seq, t0, channel, quality, reason`` and one
column per feature name (a name equal to a fixed column is ``f_<name>``; NaN and features a frame
does not have are ``None``) — from all three tables of a store, in that order (wide rows, then
``feature_frames``, then ``feature_segments``, each in insertion order).

    from edgekit.collector.reader import read_features
    columns = read_features("store.sqlite")     # {column: [values]}
    df = pandas.DataFrame(columns)              # if pandas is installed

``edgekit store export`` writes these rows as ``features.csv`` / ``features.parquet``.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FIXED_COLUMNS", "feature_columns", "feature_rows", "read_features"]

FIXED_COLUMNS = ("gateway", "stream", "seq", "asset", "block_seq", "t0", "channel", "quality", "reason")


def _col(name: str) -> str:
    return f"f_{name}" if name in FIXED_COLUMNS else name


def _tables(con: sqlite3.Connection) -> set[str]:
    return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def feature_columns(con: sqlite3.Connection) -> list[str]:
    """The fixed columns, then every feature column of any layout (first seen first)."""
    tables = _tables(con)
    cols = list(FIXED_COLUMNS)
    seen = set(cols)

    def add(name: str) -> None:
        if name not in seen:
            seen.add(name)
            cols.append(name)

    if "features" in tables:
        for r in con.execute("PRAGMA table_info(features)"):
            add(str(r[1]))
    for table in ("feature_frames", "feature_segments"):
        if table in tables:
            for (names,) in con.execute(f"SELECT DISTINCT names FROM {table}"):
                for n in json.loads(names):
                    add(_col(n))
    return cols


def _clean(v: float) -> float | None:
    return None if math.isnan(v) else v


def feature_rows(con: sqlite3.Connection, columns: list[str] | None = None) -> Iterator[tuple[Any, ...]]:
    """One tuple per frame and channel, in ``columns`` order (default :func:`feature_columns`)."""
    cols = columns or feature_columns(con)
    index = {c: i for i, c in enumerate(cols)}
    tables = _tables(con)
    width = len(cols)
    if "features" in tables:
        have = {str(r[1]) for r in con.execute("PRAGMA table_info(features)")}
        sel = ", ".join('"' + c.replace('"', '""') + '"' if c in have else "NULL" for c in cols)
        yield from con.execute(f"SELECT {sel} FROM features ORDER BY rowid")

    def expand(gw: str, stream: str, seq: int, asset: str, block_seq: int, t0: float, channels: list[str],
               names: list[str], reasons: list[str], quality: np.ndarray, values: np.ndarray) -> Iterator[tuple[Any, ...]]:
        slots = [index[_col(n)] for n in names]
        for c, ch in enumerate(channels):
            row: list[Any] = [None] * width
            row[:9] = [gw, stream, seq, asset, block_seq, t0, ch, int(quality[c]), reasons[c] if reasons else ""]
            for slot, v in zip(slots, values[c].tolist(), strict=True):
                row[slot] = _clean(v)
            yield tuple(row)

    if "feature_frames" in tables:
        for gw, stream, seq, asset, bseq, t0, nc, nf, chans, names, reasons, q, vals in con.execute(
                'SELECT gateway, stream, seq, asset, block_seq, t0, n_channels, n_features, channels, names, '
                'reasons, quality, "values" FROM feature_frames ORDER BY rowid'):
            yield from expand(gw, stream, seq, asset, bseq, t0, json.loads(chans), json.loads(names),
                              json.loads(reasons), np.frombuffer(q, np.uint8),
                              np.frombuffer(vals, "<f4").reshape(nc, nf))
    if "feature_segments" in tables:
        for gw, stream, seq, asset, chans, names, reasons, n, nc, nf, t0, bseq, q, vals in con.execute(
                'SELECT gateway, stream, seq, asset, channels, names, reasons, n_frames, n_channels, n_features, '
                't0, block_seq, quality, "values" FROM feature_segments ORDER BY rowid'):
            ch, nm, rs = json.loads(chans), json.loads(names), json.loads(reasons)
            t0s, bseqs = np.frombuffer(t0, "<f8").tolist(), np.frombuffer(bseq, "<i8").tolist()
            qs = np.frombuffer(q, np.uint8).reshape(n, nc)
            vs = np.frombuffer(vals, "<f4").reshape(n, nc, nf)
            for i in range(n):
                yield from expand(gw, stream, seq + i, asset, bseqs[i], t0s[i], ch, nm, rs, qs[i], vs[i])


def read_features(path: str | Path) -> dict[str, list[Any]]:
    """Every feature row of the store at ``path`` as ``{column: [values]}`` (``pandas.DataFrame(...)``)."""
    con = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)
    try:
        cols = feature_columns(con)
        out: dict[str, list[Any]] = {c: [] for c in cols}
        lists = [out[c] for c in cols]
        for row in feature_rows(con, cols):
            for lst, v in zip(lists, row, strict=True):
                lst.append(v)
        return out
    finally:
        con.close()
