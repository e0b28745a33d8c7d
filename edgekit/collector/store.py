"""The collector's embedded store: one SQLite file that sqlite3, pandas and duckdb read directly.

On-disk contract (format version 2, ``PRAGMA user_version = 2``; WAL, ``synchronous=FULL`` by default)::

    received(gateway, stream, epoch, seq, kind, ts, at, status, last_seq)
            PRIMARY KEY (gateway, stream, epoch, seq)
        one row per *range* of records ``seq`` … ``last_seq`` accepted (status 'ok') or rejected for
        good (status 'nack') together — a segment, or the part of it that was new; ranges of one
        (gateway, stream, epoch) never overlap. This is the deduplication key: a record whose seq
        lies in a stored range is counted as a duplicate, not stored; a segment that overlaps stored
        ranges (a resend after a crash) has only its new records stored.
        Format 1 (one row per record, no ``last_seq``) is migrated on open: ``last_seq = seq``.
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
    feature_segments(gateway, stream, seq, last_seq, asset, names, channels, reasons, n_frames,
                     n_channels, n_features, t0, block_seq, quality, "values")
        the ``segments`` layout (``features_layout="segments"``, ``--features-layout segments``):
        one row per run of frames of one stream with the same asset/names/channels/reasons —
        as the gateway sent them (a stacked segment is stored without touching each frame).
        Frame ``i`` has seq ``seq + i``; ``t0`` ``<f8 [n_frames]``, ``block_seq`` ``<i8 [n_frames]``,
        ``quality`` ``|u1 [n_frames, n_channels]``, ``values`` ``<f4 [n_frames, n_channels,
        n_features]`` little-endian BLOBs; names/channels/reasons JSON lists. The readers
        (:mod:`edgekit.collector.reader`, ``edgekit store export``) expand it, and ``feature_frames``,
        into the same rows as ``features``
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
an ACKed record survives a crash of the collector or its machine (``synchronous=FULL``). A store
file created with the ``segments`` layout uses 32 KiB SQLite pages, otherwise SQLite's default
(4 KiB); a file keeps the page size it was created with, whatever layout opens it later (all are
read and written alike).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import codec
from ..errors import DecodeError, EdgekitError
from ..types import Event, FeatureFrame, PointBatch, WaveformBlock
from .fastframe import FrameParts, features_view

__all__ = ["Store", "WriteResult", "store_summary", "store_stats"]

FORMAT_VERSION = 2
SEGMENTS_PAGE_SIZE = 32768  # SQLite page size of a store file created with the segments layout
LAYOUTS = ("wide", "packed", "segments")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS received (
    gateway TEXT NOT NULL, stream TEXT NOT NULL, epoch TEXT NOT NULL, seq INTEGER NOT NULL,
    kind TEXT NOT NULL, ts REAL, at REAL NOT NULL, status TEXT NOT NULL, last_seq INTEGER,
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
CREATE TABLE IF NOT EXISTS feature_segments (
    gateway TEXT, stream TEXT, seq INTEGER, last_seq INTEGER, asset TEXT, names TEXT, channels TEXT,
    reasons TEXT, n_frames INTEGER, n_channels INTEGER, n_features INTEGER, t0 BLOB, block_seq BLOB,
    quality BLOB, "values" BLOB);
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
_SEGMENTS_SQL = "INSERT INTO feature_segments VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
_SEGMENTS_ZEROBLOB_SQL = "INSERT INTO feature_segments VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,zeroblob(?))"
_RECEIVED_SQL = ("INSERT INTO received (gateway, stream, epoch, seq, kind, ts, at, status, last_seq) "
                 "VALUES (?,?,?,?,?,?,?,?,?)")


def _blob(a: np.ndarray) -> memoryview:
    """A contiguous array's bytes for binding as a BLOB without a copy (SQLite copies them itself;
    the array is a view into the received message, alive until the rows are inserted)."""
    if a.size == 0:  # memoryview cannot cast a view with zeros in its shape
        return memoryview(b"")
    return memoryview(np.ascontiguousarray(a)).cast("B")  # type: ignore[arg-type]  # ndarray is a buffer


@dataclass(frozen=True, slots=True)
class _Rec:
    """One record of a segment, as ``_rows_for`` reads it."""

    stream: str
    seq: int
    kind: str
    ts: float
    blob: bytes | memoryview


@dataclass
class WriteResult:
    """Outcome of :meth:`Store.write` for one DATA message."""

    stored: int = 0
    duplicates: int = 0
    nacks: list[tuple[str, int, str, int]] = field(default_factory=list)  # (stream, seq, reason, count)
    acks: dict[str, int] = field(default_factory=dict)  # stream -> highest seq handled


class Store:
    """Append-only writer of the store file (one per collector; see module docstring)."""

    def __init__(self, path: str | Path, *, synchronous: str = "FULL", features_layout: str = "wide") -> None:
        if synchronous not in ("FULL", "NORMAL", "OFF"):
            raise EdgekitError(f"synchronous {synchronous!r} is not one of FULL, NORMAL, OFF")
        if features_layout not in LAYOUTS:
            raise EdgekitError(f"features_layout {features_layout!r} is not one of {', '.join(LAYOUTS)}")
        self.features_layout = features_layout
        self._json_cache: dict[tuple[str, ...], str] = {}
        self.path = Path(path)
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        if features_layout == "segments":
            # a new file only (an existing one keeps its page size): a 64-frame segment (~150 KB) is
            # 5 overflow pages instead of 37 — fewer WAL frames and write calls per commit. Not for
            # the row layouts: their small commits would write 32 KiB WAL frames for a few rows
            self._conn.execute(f"PRAGMA page_size={SEGMENTS_PAGE_SIZE}")
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(f"PRAGMA synchronous={synchronous}")
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > FORMAT_VERSION:
            raise EdgekitError(f"{self.path}: store format {version} is newer than this edgekit ({FORMAT_VERSION})")
        # one transaction (one fsync) for the schema and a new file's version, not one per statement;
        # a format-1 file gets its version from the migration
        stamp = f"PRAGMA user_version={FORMAT_VERSION};" if version not in (1, FORMAT_VERSION) else ""
        self._conn.executescript(f"BEGIN;\n{_SCHEMA}\n{stamp}\nCOMMIT;")
        if version == 1 or "last_seq" not in {r[1] for r in self._conn.execute("PRAGMA table_info(received)")}:
            self._migrate_v1()
        self._feature_cols = {r[1] for r in self._conn.execute("PRAGMA table_info(features)")}
        self._feature_sql: dict[tuple[str, ...], str] = {}
        self._in_tx = False
        self._dups: dict[tuple[str, str, str], int] = {}

    def __repr__(self) -> str:
        return f"<Store {self.path}>"

    def _migrate_v1(self) -> None:
        """Format 1 → 2: every ``received`` row becomes the 1-record range ``seq`` … ``seq``."""
        c = self._conn
        c.execute("BEGIN IMMEDIATE")
        try:
            if "last_seq" not in {r[1] for r in c.execute("PRAGMA table_info(received)")}:
                c.execute("ALTER TABLE received ADD COLUMN last_seq INTEGER")
            c.execute("UPDATE received SET last_seq = seq WHERE last_seq IS NULL")
            c.execute(f"PRAGMA user_version={FORMAT_VERSION}")
            c.execute("COMMIT")
        except BaseException:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise

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
        """Insert one message's segments (``stream, seq, kind, ts, blob`` and ``count``, default 1)
        in the open transaction.

        Per segment: one range query finds which of its seqs are stored already (duplicates,
        counted); the new ones are decoded and their rows collected per table, then inserted with
        one ``executemany`` per table. A stacked features segment is handled with array slices, no
        per-frame decoding. A segment that does not parse as ``count`` records is NACKed whole.
        """
        self._begin()
        res = WriteResult()
        now = time.time()
        cur = self._conn.cursor()
        rejected: list[tuple[Any, ...]] = []
        rows: dict[str, list[tuple[Any, ...]]] = {}
        for r in records:
            count = int(getattr(r, "count", 1))
            last = r.seq + count - 1
            res.acks[r.stream] = max(res.acks.get(r.stream, -1), last)
            runs = self._new_runs(cur, gateway, r.stream, epoch, r.seq, last)
            dup = count - sum(hi - lo + 1 for lo, hi in runs)
            if dup:
                res.duplicates += dup
                key = (gateway, r.stream, epoch)
                self._dups[key] = self._dups.get(key, 0) + dup
            if not runs:
                continue
            why: str | None = None
            view: codec.StackedFeatures | list[memoryview] | None = None
            if r.kind not in _KINDS:
                why = f"unknown record kind {r.kind!r}"
            else:
                try:
                    view = codec.segment_view(r.blob, count)
                except DecodeError as exc:
                    why = f"undecodable segment of {count} records: {exc}"
                if isinstance(view, codec.StackedFeatures) and r.kind != "features":
                    why = f"stacked features segment, header says {r.kind!r}"
            for lo, hi in runs:
                if why is not None:
                    self._nack(cur, gateway, epoch, r, lo, hi, why, now, res, rejected)
                elif isinstance(view, codec.StackedFeatures):
                    self._stacked_rows(cur, gateway, r.stream, r.seq, view, lo, hi, rows)
                    cur.execute(_RECEIVED_SQL, (gateway, r.stream, epoch, lo, r.kind, r.ts, now, "ok", hi))
                    res.stored += hi - lo + 1
                else:
                    assert view is not None
                    self._record_rows(cur, gateway, epoch, r, view, lo, hi, now, res, rows, rejected)
        for sql, table_rows in rows.items():
            if sql == _SEGMENTS_SQL:
                self._insert_segments(cur, table_rows)
            else:
                cur.executemany(sql, table_rows)
        if rejected:
            cur.executemany("INSERT INTO rejected VALUES (?,?,?,?,?,?,?,?)", rejected)
        return res

    @staticmethod
    def _new_runs(cur: sqlite3.Cursor, gateway: str, stream: str, epoch: str, lo: int, hi: int) -> list[tuple[int, int]]:
        """The sub-ranges of ``lo`` … ``hi`` not covered by stored ``received`` ranges (ascending).

        Ranges of one stream never overlap, so walking them backwards from ``hi`` stops at the first
        one that ends before ``lo`` (usually the first row read)."""
        covered: list[tuple[int, int]] = []
        for seq, last in cur.execute(
                "SELECT seq, last_seq FROM received WHERE gateway = ? AND stream = ? AND epoch = ? AND seq <= ? "
                "ORDER BY seq DESC", (gateway, stream, epoch, hi)):
            if last < lo:
                break
            covered.append((seq, last))
        runs, at = [], lo
        for seq, last in reversed(covered):
            if seq > at:
                runs.append((at, seq - 1))
            at = max(at, last + 1)
        if at <= hi:
            runs.append((at, hi))
        return runs

    def _nack(self, cur: sqlite3.Cursor, gateway: str, epoch: str, r: Any, lo: int, hi: int, why: str, now: float,
              res: WriteResult, rejected: list[tuple[Any, ...]]) -> None:
        """Records ``lo`` … ``hi`` of segment ``r`` can never be accepted: remember them, NACK them."""
        cur.execute(_RECEIVED_SQL, (gateway, r.stream, epoch, lo, r.kind, r.ts, now, "nack", hi))
        blob = bytes(r.blob) if (lo, hi) == (r.seq, r.seq + int(getattr(r, "count", 1)) - 1) else b""
        rejected.append((gateway, r.stream, epoch, lo, r.kind, why, now, blob))
        res.nacks.append((r.stream, lo, why, hi - lo + 1))

    def _insert_segments(self, cur: sqlite3.Cursor, rows: list[tuple[Any, ...]]) -> None:
        """``feature_segments`` rows (``_SEGMENTS_SQL`` parameters): the large ``values`` BLOB is
        written into the new row through an incremental blob handle — bound as a parameter, sqlite3
        would first copy it into a buffer of its own (≈ 1 MB per segment of a few hundred frames)."""
        for row in rows:
            values = row[-1]
            cur.execute(_SEGMENTS_ZEROBLOB_SQL, (*row[:-1], len(values)))
            rowid = cur.lastrowid
            if rowid is None:  # pragma: no cover - an INSERT into a rowid table always sets it
                raise sqlite3.OperationalError("feature_segments INSERT gave no rowid")
            if len(values):
                with self._conn.blobopen("feature_segments", "values", rowid) as blob:
                    blob.write(values)

    def _record_rows(self, cur: sqlite3.Cursor, gateway: str, epoch: str, r: Any, blobs: list[memoryview], lo: int,
                     hi: int, now: float, res: WriteResult, rows: dict[str, list[tuple[Any, ...]]],
                     rejected: list[tuple[Any, ...]]) -> None:
        """Records ``lo`` … ``hi`` of a record-by-record segment: decode each; store or NACK it."""
        start = lo  # first seq of the current run of accepted records
        parts: list[FrameParts] = []
        for seq in range(lo, hi + 1):
            blob = blobs[seq - r.seq]
            rec = _Rec(r.stream, seq, r.kind, r.ts, blob)
            why = self._rows_for(cur, gateway, rec, rows, parts)
            if why is None:
                continue
            if seq > start:
                cur.execute(_RECEIVED_SQL, (gateway, r.stream, epoch, start, r.kind, r.ts, now, "ok", seq - 1))
                res.stored += seq - start
            cur.execute(_RECEIVED_SQL, (gateway, r.stream, epoch, seq, r.kind, r.ts, now, "nack", seq))
            rejected.append((gateway, r.stream, epoch, seq, r.kind, why, now, bytes(blob)))
            res.nacks.append((r.stream, seq, why, 1))
            start = seq + 1
        if start <= hi:
            cur.execute(_RECEIVED_SQL, (gateway, r.stream, epoch, start, r.kind, r.ts, now, "ok", hi))
            res.stored += hi - start + 1
        if parts:  # the segments layout: consecutive frames sharing asset/names/channels/reasons, one row
            self._parts_to_segments(gateway, r.stream, parts, rows)

    def _rows_for(self, cur: sqlite3.Cursor, gw: str, r: Any, out: dict[str, list[tuple[Any, ...]]],
                  parts: list[FrameParts]) -> str | None:
        """Decode one record into ``out[insert sql]`` rows (features in the segments layout: into
        ``parts``, with the record's spool seq); return a NACK reason if it can never be accepted."""
        if r.kind not in _KINDS:
            return f"unknown record kind {r.kind!r}"
        key = (gw, r.stream, r.seq)
        if r.kind == "features":
            fast = features_view(r.blob)
            if fast is not None:
                self._feature_rows(cur, key, fast, out, parts)
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
                rec.values.shape[1]), out, parts)
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
                      out: dict[str, list[tuple[Any, ...]]], parts: list[FrameParts] | None = None) -> None:
        if self.features_layout == "segments" and parts is not None:
            parts.append(replace(f, spool_seq=key[2]))
            return
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

    def _stacked_rows(self, cur: sqlite3.Cursor, gateway: str, stream: str, first: int, v: codec.StackedFeatures,
                      lo: int, hi: int, out: dict[str, list[tuple[Any, ...]]]) -> None:
        """Frames ``lo`` … ``hi`` (spool seqs) of a stacked segment whose first frame has seq ``first``."""
        a, b = lo - first, hi - first + 1
        n, c, f = b - a, v.values.shape[1], v.values.shape[2]
        if self.features_layout == "segments":
            out.setdefault(_SEGMENTS_SQL, []).append(
                (gateway, stream, lo, hi, v.asset, self._json(v.names), self._json(v.channels), self._json(v.reasons),
                 n, c, f, _blob(v.t0[a:b]), _blob(v.seq[a:b]), _blob(v.quality[a:b]), _blob(v.values[a:b])))
            return
        for i in range(a, b):
            self._feature_rows(cur, (gateway, stream, first + i), FrameParts(
                v.asset, int(v.seq[i]), float(v.t0[i]), v.names, v.channels, v.reasons, v.values[i].tobytes(),
                v.quality[i].tobytes(), c, f), out)

    def _parts_to_segments(self, gateway: str, stream: str, parts: list[FrameParts],
                           out: dict[str, list[tuple[Any, ...]]]) -> None:
        """Frames decoded one by one, grouped into ``feature_segments`` rows (consecutive seqs, same header)."""
        group: list[FrameParts] = []

        def flush() -> None:
            if not group:
                return
            g0 = group[0]
            out.setdefault(_SEGMENTS_SQL, []).append(
                (gateway, stream, g0.spool_seq, g0.spool_seq + len(group) - 1, g0.asset, self._json(g0.names),
                 self._json(g0.channels), self._json(g0.reasons), len(group), g0.n_channels, g0.n_features,
                 np.array([p.t0 for p in group], "<f8").tobytes(), np.array([p.seq for p in group], "<i8").tobytes(),
                 b"".join(p.quality for p in group), b"".join(p.values for p in group)))
            group.clear()

        for p in parts:
            if group and not (p.spool_seq == group[-1].spool_seq + 1 and p.asset == group[0].asset
                              and p.names == group[0].names and p.channels == group[0].channels
                              and p.reasons == group[0].reasons):
                flush()
            group.append(p)
        flush()

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
        cols = {r[1] for r in con.execute("PRAGMA table_info(received)")}
        last = "last_seq" if "last_seq" in cols else "seq"  # a format-1 store not opened for writing since
        rows = con.execute(
            f"SELECT gateway, stream, epoch, sum({last} - seq + 1), min(seq), max({last}), "
            f"sum(CASE WHEN status = 'nack' THEN {last} - seq + 1 ELSE 0 END) "
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
