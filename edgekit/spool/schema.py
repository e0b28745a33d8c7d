"""The spool file: schema DDL, opening with the configured pragmas, checking, quarantine and salvage.

Format and invariants are described in the :mod:`edgekit.spool` package docstring.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from ..errors import SpoolError
from .config import SpoolConfig

__all__ = [
    "FORMAT_VERSION", "Salvage", "check_file", "connect", "create_schema", "migrate_v1", "quarantine", "salvage",
]

log = logging.getLogger("edgekit.spool")

FORMAT_VERSION = 2
PAGE_SIZE = 32768  # new files; see connect()

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS streams (
    stream TEXT PRIMARY KEY, last_seq INTEGER NOT NULL, kinds TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY, stream TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,
    ts REAL NOT NULL, size INTEGER NOT NULL, crc INTEGER NOT NULL, blob BLOB NOT NULL,
    last_seq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS records_by_last ON records (stream, last_seq, seq, kind, size, ts);
CREATE TABLE IF NOT EXISTS cursors (
    uplink TEXT NOT NULL, stream TEXT NOT NULL, acked INTEGER NOT NULL, PRIMARY KEY (uplink, stream));
CREATE TABLE IF NOT EXISTS open_gaps (
    stream TEXT NOT NULL, reason TEXT NOT NULL, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL,
    count INTEGER NOT NULL, since REAL NOT NULL, PRIMARY KEY (stream, reason));
"""
_TABLES = {"meta", "streams", "records", "cursors", "open_gaps"}


def connect(path: Path, cfg: SpoolConfig, synchronous: str | None = None) -> sqlite3.Connection:
    """Open one connection in autocommit mode (we issue BEGIN IMMEDIATE/COMMIT ourselves).

    ``synchronous`` overrides ``cfg.synchronous`` for this connection (the delivery side's acks)."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False,
                           timeout=cfg.busy_timeout)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(cfg.busy_timeout * 1000)}")
        # takes effect in a new file only (an existing one keeps its page size): a segment of 64
        # feature frames (~130 KB) is 5 overflow pages of 32 KiB instead of 17 of 8 KiB — fewer
        # WAL frames to write per commit and to walk when the segment is pruned
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.DatabaseError(f"cannot switch {path} to WAL mode (got {mode!r})")
        conn.execute(f"PRAGMA synchronous = {(synchronous or cfg.synchronous).upper()}")
        # builds with SQLITE_SECURE_DELETE (Debian's, this venv's) zero every freed page, i.e. write
        # each pruned record a second time: FAST zeroes only what is written anyway (acks ~2x cheaper)
        conn.execute("PRAGMA secure_delete = FAST")
        conn.execute(f"PRAGMA journal_size_limit = {int(cfg.wal_size_limit)}")
    except BaseException:
        conn.close()
        raise
    return conn


def create_schema(conn: sqlite3.Connection, extra_meta: dict[str, str] | None = None) -> str:
    """Create the tables in an empty file and write meta; returns the new epoch."""
    epoch = uuid.uuid4().hex
    conn.execute("BEGIN IMMEDIATE")
    try:
        for stmt in _DDL.split(";"):
            if stmt.strip():
                conn.execute(stmt)
        meta = {"format": str(FORMAT_VERSION), "epoch": epoch, "created": repr(time.time()), **(extra_meta or {})}
        conn.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", meta.items())
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return epoch


def check_file(conn: sqlite3.Connection, mode: str) -> str | None:
    """Return why the open file is unusable (``None`` if fine). Raises SpoolError for a newer format.

    SQLite errors from a damaged file propagate as :class:`sqlite3.DatabaseError`.
    """
    if mode != "off":
        pragma = "quick_check" if mode == "quick" else "integrity_check"
        rows = [r[0] for r in conn.execute(f"PRAGMA {pragma}").fetchall()]
        if rows != ["ok"]:
            return f"{pragma} failed: {'; '.join(str(r) for r in rows[:5])}"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables:
        return "empty"
    if not _TABLES <= tables:
        return f"missing tables {sorted(_TABLES - tables)}"
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    fmt = meta.get("format")
    if fmt is None or not fmt.isdigit() or "epoch" not in meta:
        return f"meta table has no valid format/epoch ({meta!r})"
    if int(fmt) > FORMAT_VERSION:
        raise SpoolError(f"spool file has format {fmt}, newer than this edgekit understands "
                         f"({FORMAT_VERSION}); refusing to touch it")
    if int(fmt) == 1:
        migrate_v1(conn)
    elif int(fmt) != FORMAT_VERSION:
        return f"unsupported format {fmt}"
    return None


def migrate_v1(conn: sqlite3.Connection) -> None:
    """Format 1 → 2 in place, in one transaction: every row becomes a 1-record segment.

    ``last_seq`` is added and set to ``seq``, the old index is replaced, ``meta.format`` becomes 2.
    A crash before COMMIT leaves the file at format 1 and the next open migrates again.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        cols = {r[1] for r in conn.execute("PRAGMA table_info(records)")}
        if "last_seq" not in cols:
            conn.execute("ALTER TABLE records ADD COLUMN last_seq INTEGER NOT NULL DEFAULT 0")
        conn.execute("UPDATE records SET last_seq = seq")
        conn.execute("DROP INDEX IF EXISTS records_by_stream")
        conn.execute("CREATE INDEX IF NOT EXISTS records_by_last ON records (stream, last_seq, seq, kind, size, ts)")
        conn.execute("UPDATE meta SET value = ? WHERE key = 'format'", (str(FORMAT_VERSION),))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    log.info("spool migrated from format 1 to %d (rows kept as 1-record segments)", FORMAT_VERSION)


@dataclass(frozen=True)
class Salvage:
    """What could still be read from a quarantined file: its epoch and per-stream losses."""

    epoch: str | None
    streams: tuple[tuple[str, int, int, int], ...]  # (stream, first stored seq, last seq, stored rows)


def salvage(path: Path) -> Salvage:
    """Best effort: read the epoch and, per stream, what was still stored (never raises)."""
    epoch: str | None = None
    streams: list[tuple[str, int, int, int]] = []
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error:
        return Salvage(None, ())
    try:
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()
            epoch = None if row is None else str(row[0])
        except sqlite3.Error:
            pass
        try:
            for stream, last_seq in conn.execute("SELECT stream, last_seq FROM streams").fetchall():
                if str(stream).startswith("gap/"):
                    continue
                try:
                    first, n = conn.execute("SELECT min(seq), coalesce(sum(last_seq - seq + 1), 0) FROM records "
                                            "WHERE stream = ?", (stream,)).fetchone()
                except sqlite3.OperationalError:  # a format-1 file (no last_seq): one record per row
                    first, n = conn.execute(
                        "SELECT min(seq), count(*) FROM records WHERE stream = ?", (stream,)).fetchone()
                if n:
                    streams.append((str(stream), int(first), int(last_seq), int(n)))
        except sqlite3.Error:
            streams = []
    finally:
        conn.close()
    return Salvage(epoch, tuple(streams))


def quarantine(path: Path) -> Path:
    """Rename ``path`` and its -wal/-shm to ``<path>.corrupt-<UTC time>``; returns the new name."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        n += 1
    for suffix in ("-wal", "-shm", ""):
        src = Path(f"{path}{suffix}")
        if src.exists():
            os.replace(src, f"{target}{suffix}")
    return target
