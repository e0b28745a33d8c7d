"""SIGTERM to `edgekit run`: reading stops, the pipeline drains into the spool, exit 0 in bounded time."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def _config(tmp: Path) -> Path:
    rng = np.random.default_rng(3)
    t = np.arange(200_000) / 12_000.0
    x = (0.5 * np.sin(2 * np.pi * 29.95 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    np.save(tmp / "rec.npy", np.stack([x, -x]))
    cfg = tmp / "gw.toml"
    cfg.write_text(f"""
[gateway]
id = "gw-term"
data_dir = "{tmp / 'data'}"
shutdown_timeout = "5s"
queue_blocks = 4

[[replay]]
name = "bench"
file = "{tmp / 'rec.npy'}"
fs = 12000
block = 4096
rpm = 1797
speedup = 40

[pipeline]
bearing = "6205"
rpm = 1797

# the collector is down for this whole test: everything must stay in the spool
[[uplinks]]
name = "datacentre"
endpoints = ["ipc://{tmp / 'no-collector.ipc'}"]
routes = ["points", "features", "event", "gap"]
""")
    return cfg


def _wait_for_rows(spool: Path, want: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    rows = 0
    while time.monotonic() < deadline and rows < want:
        time.sleep(0.3)
        if spool.exists():
            try:
                with sqlite3.connect(f"file:{spool}?mode=ro", uri=True) as con:
                    rows = con.execute("SELECT count(*) FROM records").fetchone()[0]
            except sqlite3.Error:
                rows = 0
    return rows


def test_sigterm_drains_pipeline_into_spool_and_exits_cleanly(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "edgekit", "run", str(cfg), "--log-level", "info"],
                            stderr=subprocess.PIPE, text=True)
    try:
        rows = _wait_for_rows(tmp_path / "data" / "spool.sqlite", 20, timeout=120)
        assert rows >= 20, "gateway produced no spooled records"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err[-3000:]
    assert took < 5 + 5, f"shutdown took {took:.1f}s (shutdown_timeout 5s)"
    m = re.search(r"stopped cleanly: (\d+) items received, (\d+) processed, (\d+) records spooled", err)
    assert m, err[-3000:]
    received, processed, spooled = map(int, m.groups())
    assert received == processed > 0, "items accepted from the connector were not all processed"
    from edgekit.spool import Spool
    from edgekit.spool.config import SpoolConfig

    routes = {"datacentre": ("points", "features", "event", "gap")}
    sp = Spool(tmp_path / "data" / "spool.sqlite", SpoolConfig(), routes)
    try:
        assert sp.integrity_check()
        pending_rows, _, _ = sp.backlog("datacentre")
        assert pending_rows == spooled, f"spool holds {pending_rows} unacked rows, gateway spooled {spooled}"
    finally:
        sp.close()
