"""Rebuild every model of the zoo from simulator data (``make models``): deterministic, < 30 s.

Usage: ``python models/build_all.py [OUT_DIR]`` (default models/zoo). The training rows are computed
once and shared by the three trainers (models/train/common.py).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "train"))

import autoencoder
import common
import isolation_forest
import mahalanobis

TRAINERS = (mahalanobis, isolation_forest, autoencoder)


def build_all(out_dir: Path = common.ZOO) -> list[Path]:
    return [t.main(out_dir) for t in TRAINERS]


if __name__ == "__main__":
    t0 = time.perf_counter()
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else common.ZOO
    for p in build_all(out):
        print(p)
    print(f"built {len(TRAINERS)} models in {time.perf_counter() - t0:.1f} s")
