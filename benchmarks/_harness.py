"""Shared harness for edgekit benchmarks.

Every benchmark is a script ``benchmarks/<name>.py`` that ends with::

    if __name__ == "__main__":
        harness.main("name", measure)

where ``measure(quick: bool) -> dict[str, float | int | str]`` runs the edgekit path *and* its
baseline (bare scipy FFT, raw pymodbus, raw asyncua, raw pyzmq) in the same process and returns
the figures, including ``*_ratio`` entries. ``--quick`` makes it small enough for a smoke run;
``--json`` prints exactly one JSON object ``{"benchmark": name, ...figures}`` on stdout.
Benchmarks never assert timing: they measure and print.
"""

from __future__ import annotations

import argparse
import json
import platform
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

Figures = dict[str, Any]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def best_of(fn: Callable[[], object], repeat: int = 5, number: int = 1) -> float:
    """Smallest wall time of ``repeat`` runs of ``number`` calls, in seconds per call."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def main(name: str, measure: Callable[[bool], Figures], argv: list[str] | None = None) -> Figures:
    parser = argparse.ArgumentParser(prog=f"benchmarks/{name}.py")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    figures: Figures = {"benchmark": name, "quick": args.quick, "python": platform.python_version()}
    t0 = time.perf_counter()
    figures.update(measure(args.quick))
    figures["wall_s"] = round(time.perf_counter() - t0, 2)
    if args.json:
        print(json.dumps(figures, default=float))
    else:
        width = max(len(k) for k in figures)
        for key, value in figures.items():
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
            print(f"{key:<{width}}  {shown}")
    sys.stdout.flush()
    return figures
