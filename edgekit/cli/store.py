"""``edgekit store stats|export``: look into a collector's store.

``stats --json`` prints one object per gateway, stream and spool epoch: records, first/last seq,
missing seqs in that range, duplicates rejected, NACKed records, gap records and the seqs they
declared lost. ``export --format csv|parquet`` writes one file per table (parquet needs pyarrow);
``features`` holds the rows of every features layout (wide, packed, segments) in the wide shape.
"""

from __future__ import annotations

import argparse
import csv
import json
import sqlite3
from pathlib import Path

from ..errors import EdgekitError

TABLES = ("points", "features", "waveforms", "events", "gaps", "received", "rejected")
"""Exported tables; ``features`` is written from :func:`edgekit.collector.reader.feature_rows`, i.e. the
rows of all three layouts (wide, packed ``feature_frames``, ``feature_segments``) as wide rows."""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("store", help="statistics and export of a collector store")
    ssub = p.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    s = ssub.add_parser("stats", help="per gateway and stream: records, seq range, missing, duplicates, gaps")
    s.add_argument("--store", required=True)
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=stats)
    e = ssub.add_parser("export", help="write every table as CSV or Parquet")
    e.add_argument("--store", required=True)
    e.add_argument("--out", required=True, help="output folder")
    e.add_argument("--format", choices=["csv", "parquet"], default="csv")
    e.set_defaults(func=export)


def _check(path: str) -> None:
    if not Path(path).is_file():
        raise EdgekitError(f"store {path!r} does not exist")


def stats(args: argparse.Namespace) -> int:
    from ..collector import store_stats, store_summary

    _check(args.store)
    rows = store_stats(args.store)
    if args.json:
        print(json.dumps({"summary": store_summary(args.store), "streams": rows}, indent=2))
        return 0
    cols = ["gateway", "stream", "records", "first_seq", "last_seq", "missing", "duplicates_rejected",
            "gaps_declared"]
    print("  ".join(cols))
    for r in rows:
        print("  ".join(str(r[c]) for c in cols))
    return 0


def export(args: argparse.Namespace) -> int:
    from ..collector.reader import feature_columns, feature_rows

    _check(args.store)
    if args.format == "parquet":
        try:
            import pyarrow as pa  # type: ignore[import-not-found]
            import pyarrow.parquet as pq  # type: ignore[import-not-found]
        except ImportError:
            raise EdgekitError("--format parquet needs pyarrow, which is not installed "
                               "(pip install pyarrow), or use --format csv") from None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(f"file:{Path(args.store)}?mode=ro", uri=True)
    try:
        for table in TABLES:
            if table == "features":  # every layout, expanded to the same rows
                names = feature_columns(con)
                rows = list(feature_rows(con, names))
            else:
                cur = con.execute(f"SELECT * FROM {table}")
                names = [d[0] for d in cur.description]
                rows = cur.fetchall()
            if args.format == "csv":
                with open(out / f"{table}.csv", "w", newline="") as f:
                    w = csv.writer(f)
                    w.writerow(names)
                    w.writerows(rows)
            else:
                cols = {n: [r[i] for r in rows] for i, n in enumerate(names)}
                pq.write_table(pa.table(cols), out / f"{table}.parquet")
            print(f"{table}: {len(rows)} rows -> {out / (table + '.' + args.format)}")
    finally:
        con.close()
    return 0
