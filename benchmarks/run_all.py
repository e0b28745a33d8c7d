"""Run every benchmark in this folder (``make bench``) and print one table of their figures.

``python benchmarks/run_all.py [--quick]``: each ``benchmarks/<name>.py`` runs in its own process
with ``--json``; a failing benchmark is reported in the table, not hidden.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rows: list[tuple[str, str, str]] = []
    failed = 0
    for script in sorted(HERE.glob("*.py")):
        if script.name.startswith("_") or script.name == "run_all.py":
            continue
        cmd = [sys.executable, str(script), "--json", *(["--quick"] if args.quick else [])]
        print(f"running {script.name} …", file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            failed += 1
            rows.append((script.stem, "FAILED", proc.stderr.strip().splitlines()[-1:][0] if proc.stderr.strip() else ""))
            continue
        figures = json.loads(proc.stdout.strip().splitlines()[-1])
        for key, value in figures.items():
            if key in ("benchmark", "python", "quick"):
                continue
            rows.append((script.stem, key, f"{value:.4g}" if isinstance(value, float) else str(value)))
    w0 = max((len(r[0]) for r in rows), default=9)
    w1 = max((len(r[1]) for r in rows), default=6)
    print(f"{'benchmark':<{w0}}  {'figure':<{w1}}  value")
    for b, k, v in rows:
        print(f"{b:<{w0}}  {k:<{w1}}  {v}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
