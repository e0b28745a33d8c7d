"""The collector's embedded store: one SQLite file that sqlite3, pandas and duckdb read directly.

On-disk contract (format version 1, ``PRAGMA user_version = 1``; WAL, ``synchronous=FULL`` by default)::

    received(gateway, stream, epoch, seq, kind, ts, at, status)   PRIMARY KEY (gateway, stream, epoch, seq)
        one row per record ever accepted (status 'ok') or rejected for good (status 'nack');
        this is the deduplication key: a second copy of a record is counted, not stored
    duplicates(gateway, stream, epoch, count)   duplicates rejected so far
    points(gateway, stream, seq, device, tag, value, text, source_ts, recv_ts, quality, reason)
        long format: one row per tag reading (NaN values are NULL)
    features(gateway, stream, seq, asset, block_seq, t0, channel, quality, reason, <feature>…)
        wide format: one row per channel of a FeatureFrame, one REAL column per feature name
        (``"rms"``, ``"kurtosis"``…; a column is added the first time a name appears; rows of
        frames without that feature hold NULL) — ``pd.read_sql("SELECT * FROM features", con)``
        gives a ready DataFrame. A feature named like a fixed column is stored as ``f_<name>``.
    feature_frames(gateway, stream, seq, asset, block_seq, t0, n_channels, n_features, channels,
                   names, reasons, quality, "values")
        the ``packed`` layout (``Store(features_layout="packed")``, ``edgekit collect
        --features-layout packed``): one row per frame, ``values`` the (channels, features) float32
        LE BLOB, ``quality`` one byte per channel, channels/names/reasons JSON lists — ≈ channels×
        fewer SQLite rows, for high ingest rates; ``features`` stays empty then
    waveforms(gateway, stream, seq, asset, block_seq, t0, fs, n_channels, n_samples, channels,
              units, speed_hz, quality, reason, data)
        ``data`` is the (channels, samples) float32 little-endian array as a BLOB:
        ``np.frombuffer(data, "<f4").reshape(n_channels, n_samples)``; channels/units are JSON lists
    events(gateway, stream, seq, ts, kind, source, severity, message, data)   data is JSON
    gaps(gateway, stream, seq, gap_stream, first_seq, last_seq, count, reason, ts)
        losses the gateway declared (quota drops, corrupt spool); gap_stream is the stream that
        lost records, first/last refer to its seqs
    rejected(gateway, stream, epoch, seq, kind, reason, at, blob)   records NACKed, kept for forensics

A batch of records is written in one transaction; the collector commits *before* it acknowledges, so
an ACKed record survives a crash of the collector or its machine (``synchronous=FULL``).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import codec
from ..errors import DecodeError, EdgekitError
from ..types import Event, FeatureFrame, PointBatch, WaveformBlock
from .fastframe import FrameParts, features_view

__all__ = ["Store", "WriteResult", "store_summary", "store_stats"]

FORMAT_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS received (
    gateway TEXT NOT NULL, stream TEXT NOT NULL, epoch TEXT NOT NULL, seq INTEGER NOT NULL,
    kind TEXT NOT NULL, ts REAL, at REAL NOT NULL, status TEXT NOT NULL,
    PRIMARY KEY (gateway, stream, epoch, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS duplicates (
    gateway TEXT NOT NULL, stream TEXT NOT NULL, epoch TEXT NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (gateway, stream, epoch)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS points (
    gateway TEXT, stream TEXT, seq INTEGER, device TEXT, tag TEXT, value REAL, text TEXT,
    source_ts REAL, recv_ts REAL, quality INTEGER, reason TEXT);
CREATE TABLE IF NOT EXISTS features (
    gateway TEXT, stream TEXT, seq INTEGER, asset TEXT, block_seq INTEGER, t0 REAL, channel TEXT,
    quality INTEGER, reason TEXT);
CREATE TABLE IF NOT EXISTS feature_frames (
    gateway TEXT, stream TEXT, seq INTEGER, asset TEXT, block_seq INTEGER, t0 REAL, n_channels INTEGER,
    n_features INTEGER, channels TEXT, names TEXT, reasons TEXT, quality BLOB, "values" BLOB);
CREATE TABLE IF NOT EXISTS waveforms (
    gateway TEXT, stream TEXT, seq INTEGER, asset TEXT, block_seq INTEGER, t0 REAL, fs REAL,
    n_channels INTEGER, n_samples INTEGER, channels TEXT, units TEXT, speed_hz REAL,
    quality INTEGER, reason TEXT, data BLOB);
CREATE TABLE IF NOT EXISTS events (
    gateway TEXT, stream TEXT, seq INTEGER, ts REAL, kind TEXT, source TEXT, severity INTEGER,
    message TEXT, data TEXT);
CREATE TABLE IF NOT EXISTS gaps (
    gateway TEXT, stream TEXT, seq INTEGER, gap_stream TEXT, first_seq INTEGER, last_seq INTEGER,
    count INTEGER, reason TEXT, ts REAL);
CREATE TABLE IF NOT EXISTS rejected (
    gateway TEXT, stream TEXT, epoch TEXT, seq INTEGER, kind TEXT, reason TEXT, at REAL, blob BLOB);
"""
_FIXED_FEATURE_COLUMNS = {"gateway", "stream", "seq", "asset", "block_seq", "t0", "channel", "quality", "reason"}
_KINDS = {"points", "waveform", "features", "event", "gap"}
_PACKED_SQL = "INSERT INTO feature_frames VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"


@dataclass
class WriteResult:
    """Outcome of :meth:`Store.write` for one DATA message."""

    stored: int = 0
    duplicates: int = 0
    nacks: list[tuple[str, int, str]] = field(default_factory=list)  # (stream, seq, reason)
    acks: dict[str, int] = field(default_factory=dict)  # stream -> highest seq handled


class Store:
    """Append-only writer of the store file (one per collector; see module docstring)."""

    def __init__(self, path: str | Path, *, synchronous: str = "FULL", features_layout: str = "wide") -> None:
        if synchronous not in ("FULL", "NORMAL", "OFF"):
            raise EdgekitError(f"synchronous {synchronous!r} is not one of FULL, NORMAL, OFF")
        if features_layout not in ("wide", "packed"):
            raise EdgekitError(f"features_layout {features_layout!r} is not one of wide, packed")
        self.features_layout = features_layout
        self._json_cache: dict[tuple[str, ...], str] = {}
        self.path = Path(path)
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(f"PRAGMA synchronous={synchronous}")
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > FORMAT_VERSION:
            raise EdgekitError(f"{self.path}: store format {version} is newer than this edgekit ({FORMAT_VERSION})")
        self._conn.executescript(_SCHEMA)
        self._conn.execute(f"PRAGMA user_version={FORMAT_VERSION}")
        self._feature_cols = {r[1] for r in self._conn.execute("PRAGMA table_info(features)")}
        self._feature_sql: dict[tuple[str, ...], str] = {}
        self._in_tx = False
        self._dups: dict[tuple[str, str, str], int] = {}

    def __repr__(self) -> str:
        return f"<Store {self.path}>"

    def _begin(self) -> None:
        if not self._in_tx:
            self._conn.execute("BEGIN")
            self._in_tx = True

    def commit(self) -> None:
        """Make everything written since the last commit durable (one fsync under FULL).

        Raises :class:`sqlite3.Error` (and forgets the batch) if SQLite already rolled the
        transaction back on its own (disk full, I/O error) or the commit fails.
        """
        if not self._in_tx:
            return
        if not self._conn.in_transaction:
            self._reset()
            raise sqlite3.OperationalError("the store transaction was rolled back by SQLite (disk full or I/O error)")
        for (gw, stream, epoch), n in self._dups.items():
            self._conn.execute(
                "INSERT INTO duplicates VALUES (?,?,?,?) ON CONFLICT (gateway, stream, epoch) "
                "DO UPDATE SET count = count + excluded.count", (gw, stream, epoch, n))
        self._conn.execute("COMMIT")
        self._in_tx = False
        self._dups.clear()

    def rollback(self) -> None:
        """Forget everything written since the last commit (safe to call in any state)."""
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        finally:
            self._reset()

    def _reset(self) -> None:
        self._in_tx = False
        self._dups.clear()
        # columns added in a rolled-back transaction are gone again
        self._feature_sql.clear()
        self._feature_cols = {r[1] for r in self._conn.execute("PRAGMA table_info(features)")}

    def close(self) -> None:
        self.rollback()
        self._conn.close()

    def write(self, gateway: str, epoch: str, records: Iterable[Any]) -> WriteResult:
        """Insert one message's records (``stream, seq, kind, ts, blob``) in the open transaction.

        Which records are already stored is read with one range query per stream; the rows of every
        table are then inserted with one ``executemany`` each (no per-record round trip).
        """
        self._begin()
        res = WriteResult()
        now = time.time()
        recs = list(records)
        cur = self._conn.cursor()
        seen = self._existing(cur, gateway, epoch, recs)
        received: list[tuple[Any, ...]] = []
        rejected: list[tuple[Any, ...]] = []
        rows: dict[str, list[tuple[Any, ...]]] = {}
        for r in recs:
            prev = res.acks.get(r.stream, -1)
            res.acks[r.stream] = max(prev, r.seq)
            if (r.stream, r.seq) in seen:
                res.duplicates += 1
                key = (gateway, r.stream, epoch)
                self._dups[key] = self._dups.get(key, 0) + 1
                continue
            seen.add((r.stream, r.seq))
            reason = self._rows_for(cur, gateway, r, rows)
            if reason is None:
                res.stored += 1
                received.append((gateway, r.stream, epoch, r.seq, r.kind, r.ts, now, "ok"))
            else:
                received.append((gateway, r.stream, epoch, r.seq, r.kind, r.ts, now, "nack"))
                rejected.append((gateway, r.stream, epoch, r.seq, r.kind, reason, now, r.blob))
                res.nacks.append((r.stream, r.seq, reason))
        # plain INSERT: a key stored twice would be a bug here, and fails the batch (never ACKed)
        cur.executemany("INSERT INTO received VALUES (?,?,?,?,?,?,?,?)", received)
        for sql, table_rows in rows.items():
            cur.executemany(sql, table_rows)
        if rejected:
            cur.executemany("INSERT INTO rejected VALUES (?,?,?,?,?,?,?,?)", rejected)
        return res

    @staticmethod
    def _existing(cur: sqlite3.Cursor, gateway: str, epoch: str, recs: list[Any]) -> set[tuple[str, int]]:
        """(stream, seq) of ``recs`` already in ``received`` (one primary-key range scan per stream)."""
        bounds: dict[str, tuple[int, int]] = {}
        for r in recs:
            lo, hi = bounds.get(r.stream, (r.seq, r.seq))
            bounds[r.stream] = (min(lo, r.seq), max(hi, r.seq))
        seen: set[tuple[str, int]] = set()
        for stream, (lo, hi) in bounds.items():
            seen.update((stream, int(q)) for (q,) in cur.execute(
                "SELECT seq FROM received WHERE gateway = ? AND stream = ? AND epoch = ? AND seq BETWEEN ? AND ?",
                (gateway, stream, epoch, lo, hi)))
        return seen

    def _rows_for(self, cur: sqlite3.Cursor, gw: str, r: Any, out: dict[str, list[tuple[Any, ...]]]) -> str | None:
        """Decode one record into ``out[insert sql]`` rows; return a NACK reason if it can never be accepted."""
        if r.kind not in _KINDS:
            return f"unknown record kind {r.kind!r}"
        key = (gw, r.stream, r.seq)
        if r.kind == "features":
            fast = features_view(r.blob)
            if fast is not None:
                self._feature_rows(cur, key, fast, out)
                return None
        try:
            rec = codec.unpack(r.blob)
        except DecodeError as exc:
            return f"undecodable record: {exc}"
        if codec.kind_of(rec) != r.kind:
            return f"record is a {codec.kind_of(rec)!r}, header says {r.kind!r}"
        if isinstance(rec, PointBatch):
            n = len(rec)
            text = rec.text or (None,) * n
            reasons = rec.reasons or ("",) * n
            out.setdefault("INSERT INTO points VALUES (?,?,?,?,?,?,?,?,?,?,?)", []).extend(
                (*key, rec.device, t, v, tx, s, rv, q, why) for t, v, tx, s, rv, q, why in zip(
                    rec.tags, rec.values.tolist(), text, rec.source_ts.tolist(), rec.recv_ts.tolist(),
                    rec.quality.tolist(), reasons, strict=True))
        elif isinstance(rec, FeatureFrame):
            if rec.reasons and len(rec.reasons) != len(rec.channels):
                return f"features record has {len(rec.reasons)} reasons for {len(rec.channels)} channels"
            self._feature_rows(cur, key, FrameParts(
                rec.asset, rec.seq, rec.t0, rec.names, rec.channels, rec.reasons,
                rec.values.astype("<f4").tobytes(), rec.quality.tobytes(), rec.values.shape[0],
                rec.values.shape[1]), out)
        elif isinstance(rec, WaveformBlock):
            out.setdefault("INSERT INTO waveforms VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", []).append(
                (*key, rec.asset, rec.seq, rec.t0, rec.fs, rec.data.shape[0], rec.data.shape[1],
                 json.dumps(list(rec.channels)), json.dumps(list(rec.units)), rec.speed_hz,
                 int(rec.quality), rec.reason, rec.data.astype("<f4").tobytes()))
        elif isinstance(rec, Event):
            out.setdefault("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?)", []).append(
                (*key, rec.ts, rec.kind.value, rec.source, int(rec.severity), rec.message,
                 json.dumps(rec.data, default=str)))
        else:
            out.setdefault("INSERT INTO gaps VALUES (?,?,?,?,?,?,?,?,?)", []).append(
                (*key, rec.stream, rec.first_seq, rec.last_seq, rec.count, rec.reason, rec.ts))
        return None

    def _feature_rows(self, cur: sqlite3.Cursor, key: tuple[str, str, int], f: FrameParts,
                      out: dict[str, list[tuple[Any, ...]]]) -> None:
        if self.features_layout == "packed":
            out.setdefault(_PACKED_SQL, []).append(
                (*key, f.asset, f.seq, f.t0, f.n_channels, f.n_features, self._json(f.channels),
                 self._json(f.names), self._json(f.reasons), f.quality, f.values))
            return
        sql = self._features_sql(cur, f.names)
        reasons = f.reasons or ("",) * f.n_channels
        head = (*key, f.asset, f.seq, f.t0)
        values = np.frombuffer(f.values, "<f4").reshape(f.n_channels, f.n_features).tolist()
        # NaN binds as NULL in SQLite, so the float rows go in as they are (no per-value Python work)
        out.setdefault(sql, []).extend(
            (*head, ch, q, why, *row) for ch, q, why, row in zip(f.channels, f.quality, reasons, values, strict=True))

    def _json(self, items: tuple[str, ...]) -> str:
        text = self._json_cache.get(items)
        if text is None:
            text = json.dumps(list(items))
            if len(self._json_cache) < 4096:
                self._json_cache[items] = text
        return text

    def _features_sql(self, cur: sqlite3.Cursor, names: tuple[str, ...]) -> str:
        sql = self._feature_sql.get(names)
        if sql is None:
            cols = [f"f_{n}" if n in _FIXED_FEATURE_COLUMNS else n for n in names]
            for c in cols:
                if c not in self._feature_cols:
                    quoted = '"' + c.replace('"', '""') + '"'
                    cur.execute(f"ALTER TABLE features ADD COLUMN {quoted} REAL")
                    self._feature_cols.add(c)
            quoted_cols = ", ".join('"' + c.replace('"', '""') + '"' for c in cols)
            marks = ", ".join("?" * (9 + len(cols)))
            sql = (f"INSERT INTO features (gateway, stream, seq, asset, block_seq, t0, channel, quality, reason, "
                   f"{quoted_cols}) VALUES ({marks})")
            if len(self._feature_sql) < 1024:
                self._feature_sql[names] = sql
        return sql


def store_stats(path: str | Path) -> list[dict[str, Any]]:
    """Per gateway, stream and epoch: records, first/last seq, missing seqs, duplicates, gaps declared."""
    con = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT gateway, stream, epoch, count(*), min(seq), max(seq), sum(status = 'nack') "
            "FROM received GROUP BY gateway, stream, epoch ORDER BY gateway, stream, epoch").fetchall()
        dups = {(g, s, e): n for g, s, e, n in con.execute("SELECT * FROM duplicates")}
        gaps: dict[tuple[str, str], tuple[int, int]] = {}
        for g, s, n, c in con.execute(
                "SELECT gateway, gap_stream, count(*), sum(count) FROM gaps GROUP BY gateway, gap_stream"):
            gaps[(g, s)] = (n, c)
    finally:
        con.close()
    out = []
    for g, s, e, n, lo, hi, nacked in rows:
        gap_records, gap_count = gaps.get((g, s), (0, 0))
        out.append({
            "gateway": g, "stream": s, "epoch": e, "records": n, "first_seq": lo, "last_seq": hi,
            "missing": (hi - lo + 1) - n, "duplicates_rejected": dups.get((g, s, e), 0),
            "nacked": nacked, "gap_records": gap_records, "gaps_declared": gap_count,
        })
    return out


def store_summary(path: str | Path) -> dict[str, Any]:
    """Totals over the whole store: ``records``, ``duplicates``, ``missing``, ``gaps_declared``, ``streams``."""
    stats = store_stats(path)
    return {
        "records": sum(s["records"] for s in stats),
        "duplicates": sum(s["duplicates_rejected"] for s in stats),
        "missing": sum(s["missing"] for s in stats),
        "gaps_declared": sum(s["gaps_declared"] for s in stats),
        "nacked": sum(s["nacked"] for s in stats),
        "streams": len(stats),
        "gateways": sorted({s["gateway"] for s in stats}),
    }
