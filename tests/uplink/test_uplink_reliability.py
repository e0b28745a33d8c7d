"""Reliability under crashes and outages, with real processes, sockets, SQLite files and SIGKILL.

1. the collector is SIGKILLed and restarted mid-stream, repeatedly;
2. the gateway is SIGKILLed at random points ≥ 20 times (also during spool commits);
3. the link is cut by a fault-injecting proxy at sustained load (3 s here, 60 s in the slow test).
In every case each seq the spool admitted is in the store exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from faultproxy import FaultProxy  # type: ignore[import-not-found]
from portutil import free_port
from uplink_helpers import Keys, make_keys  # type: ignore[import-not-found]

from edgekit.collector import run_in_thread, store_stats
from edgekit.config.parse import parse
from edgekit.spool import Spool, SpoolConfig

HERE = Path(__file__).resolve().parent
PY = sys.executable
STREAM = "features/m01"
CHANNELS = 4


def gateway_cmd(spool: Path, endpoint: str, keys: Keys, *extra: str) -> list[str]:
    return [PY, str(HERE / "gateway_proc.py"), "--spool", str(spool), "--endpoint", endpoint,
            "--server-key", str(keys.server_public), "--secret", str(keys.gateways["gw-1"][1]),
            "--channels", str(CHANNELS), *extra]


def collector_cmd(store: Path, endpoint: str, keys: Keys) -> list[str]:
    return [PY, str(HERE / "collector_proc.py"), "--bind", endpoint, "--store", str(store),
            "--keys", str(keys.server_secret), "--allow", str(keys.allow), "--log-level", "warning"]


def spool_last_seq(path: Path) -> int:
    con = sqlite3.connect(path)
    try:
        row = con.execute("SELECT last_seq FROM streams WHERE stream = ?", (STREAM,)).fetchone()
    finally:
        con.close()
    return int(row[0]) if row else 0


def assert_exactly_once(store: Path, n: int) -> dict[str, Any]:
    stats = [s for s in store_stats(store) if s["stream"] == STREAM]
    assert len(stats) == 1, stats
    s = stats[0]
    assert (s["records"], s["first_seq"], s["last_seq"], s["missing"]) == (n, 1, n, 0), s
    con = sqlite3.connect(store)
    try:
        rows, distinct = con.execute("SELECT count(*), count(DISTINCT seq) FROM features").fetchone()
    finally:
        con.close()
    assert (rows, distinct) == (n * CHANNELS, n)  # decoded once per record, one row per channel
    return s


def read_json(proc: subprocess.Popen[str], pred: Any, timeout: float = 20.0) -> dict[str, Any]:
    """The next JSON line printed by ``proc`` (or its forked children) for which ``pred`` holds."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode}")
        if line.startswith("{"):
            obj = dict(json.loads(line))
            if pred(obj):
                return obj
    raise AssertionError("expected output did not come")


def test_gateway_sigkilled_20_times_delivers_every_committed_seq_once(tmp_path: Path) -> None:
    keys = make_keys(tmp_path)
    store, spool = tmp_path / "store.sqlite", tmp_path / "spool.sqlite"
    rng = random.Random(20261129)
    zygote = subprocess.Popen([PY, str(HERE / "gateway_proc.py"), "--zygote"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert zygote.stdin is not None
    try:
        with run_in_thread(["tcp://127.0.0.1:0"], store, allow_dir=keys.allow,
                           secret_key=keys.server_secret_key()) as col:
            argv = gateway_cmd(spool, col.endpoints[0], keys, "--rate", "1500", "--batch", "5",
                               "--report", "0.05")[2:]
            kills = 0
            for _ in range(22):
                zygote.stdin.write(json.dumps(argv) + "\n")
                zygote.stdin.flush()
                pid = read_json(zygote, lambda o: "forked" in o)["forked"]
                read_json(zygote, lambda o, pid=pid: o.get("pid") == pid)  # spool open, appending
                time.sleep(rng.uniform(0.0, 0.2))
                os.kill(pid, signal.SIGKILL)
                kills += 1
            time.sleep(0.2)
            admitted = spool_last_seq(spool)
            assert admitted > 100
            final = subprocess.run([PY, str(HERE / "gateway_proc.py"), *argv[:-6], "--until-drained"],
                                   capture_output=True, text=True, timeout=60)
            assert final.returncode == 0, final.stderr
            stats = assert_exactly_once(store, admitted)
    finally:
        zygote.kill()
        zygote.wait()
    s = Spool(spool, parse(SpoolConfig, {}, "spool"), {"dc": ("features", "gap")})
    try:
        assert s.integrity_check()
        assert s.backlog("dc")[0] == 0
        assert s.stats()["quarantined"] == 0
    finally:
        s.close()
    print(f"\n[gateway kill] kills={kills} admitted={admitted} duplicates_rejected={stats['duplicates_rejected']}")


def test_collector_sigkilled_and_restarted_stores_every_seq_once(tmp_path: Path) -> None:
    keys = make_keys(tmp_path)
    store, spool = tmp_path / "store.sqlite", tmp_path / "spool.sqlite"
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    n = 2000
    zygote = subprocess.Popen([PY, str(HERE / "collector_proc.py"), "--zygote"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert zygote.stdin is not None
    argv = collector_cmd(store, endpoint, keys)[2:]

    def start_collector() -> int:
        assert zygote.stdin is not None
        zygote.stdin.write(json.dumps(argv) + "\n")
        zygote.stdin.flush()
        return int(read_json(zygote, lambda o: "forked" in o)["forked"])

    rng = random.Random(5)
    kills = 0
    col = start_collector()
    gw = subprocess.Popen(gateway_cmd(spool, endpoint, keys, "--rate", "600", "--max-records", str(n),
                                      "--until-drained", "--report", "0.2"), stdout=subprocess.PIPE, text=True)
    try:
        read_json(gw, lambda o: o.get("delivered", 0) > 0)  # delivery under way
        for _ in range(5):
            time.sleep(rng.uniform(0.2, 0.5))
            os.kill(col, signal.SIGKILL)
            kills += 1
            time.sleep(rng.uniform(0.0, 0.3))
            col = start_collector()
        out, _ = gw.communicate(timeout=60)
        assert gw.returncode == 0
        assert json.loads(out.strip().splitlines()[-1])["done"]
    finally:
        gw.kill()
        os.kill(col, signal.SIGTERM)  # clean stop (exit status is checked in the CLI test)
        time.sleep(0.3)
        zygote.kill()
        zygote.wait()
    assert spool_last_seq(spool) == n
    stats = assert_exactly_once(store, n)
    print(f"\n[collector kill] kills={kills} records={n} duplicates_rejected={stats['duplicates_rejected']}")


async def _link_cut(tmp_path: Path, cut_s: float, rate: float) -> dict[str, float]:
    keys = make_keys(tmp_path)
    store, spool = tmp_path / "store.sqlite", tmp_path / "spool.sqlite"
    col = run_in_thread(["tcp://127.0.0.1:0"], store, allow_dir=keys.allow, secret_key=keys.server_secret_key())
    host, port = col.endpoints[0][len("tcp://"):].rsplit(":", 1)
    proxy = await FaultProxy(host, int(port)).start()
    n = int(rate * (cut_s + 2.5))
    proc = await asyncio.create_subprocess_exec(
        *gateway_cmd(spool, proxy.endpoint, keys, "--rate", str(rate), "--max-records", str(n),
                     "--until-drained", "--report", "0.1"),
        stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    reports: list[dict[str, Any]] = []

    async def read() -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            reports.append(json.loads(line))

    reader = asyncio.create_task(read())
    try:
        while not reports or reports[-1]["appended"] < rate * 1.0:
            await asyncio.sleep(0.05)
        rss_before = reports[-1]["rss_kb"]
        proxy.cut()
        await asyncio.sleep(cut_s)
        backlog_at_restore = reports[-1]["backlog"]
        delivered_at_restore = reports[-1]["delivered"]
        t_restore = time.monotonic()
        proxy.restore()
        # drained: the backlog is back to what live traffic keeps in flight
        while reports[-1]["backlog"] > max(20, rate * 0.05) and time.monotonic() - t_restore < 60:
            await asyncio.sleep(0.02)
        drain_s = time.monotonic() - t_restore
        delivered_drain = reports[-1]["delivered"] - delivered_at_restore
        assert await asyncio.wait_for(proc.wait(), 60) == 0
        await reader
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await proxy.close()
        col.stop()
    assert backlog_at_restore >= rate * cut_s * 0.8  # the outage really held data back
    assert_exactly_once(store, n)
    rss_max = max(r["rss_kb"] for r in reports)
    drain_rate = delivered_drain / drain_s
    return {"backlog_at_restore": backlog_at_restore, "drain_s": drain_s, "drain_rate": drain_rate,
            "drain_ratio": drain_rate / rate, "rss_growth_kb": rss_max - rss_before}


async def test_link_cut_3s_nothing_lost_backlog_drains_fast(tmp_path: Path) -> None:
    fig = await _link_cut(tmp_path, cut_s=3.0, rate=300.0)
    print(f"\n[link cut 3s] {fig}")
    assert fig["drain_ratio"] >= 5.0
    assert fig["rss_growth_kb"] < 20_000  # the backlog lives in the spool file, not in RAM


@pytest.mark.slow
async def test_link_cut_60s_nothing_lost_backlog_drains_fast(tmp_path: Path) -> None:
    fig = await _link_cut(tmp_path, cut_s=60.0, rate=250.0)
    print(f"\n[link cut 60s] {fig}")
    assert fig["drain_ratio"] >= 5.0
    assert fig["rss_growth_kb"] < 20_000
