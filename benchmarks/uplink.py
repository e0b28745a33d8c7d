"""Uplink: feature values delivered per second end to end, edgekit vs raw pyzmq PUSH/PULL.

The payload is N FeatureFrames of 16 channels × 32 features (512 float32 values each, ≈ 2.6 KB as
packed by ``edgekit.codec``), built before timing. Both paths run with the receiver in a child
process (its CPU is separate, like a data-centre machine), on loopback TCP. Every child is started
with the ``spawn`` context, not ``fork``: while a forked child lives, each page the measuring
process writes is copied first (copy on write), which inflated the gateway's per-thread CPU figures
by about a quarter; a spawned child shares no pages (its start-up, before the clock, is slower):

* **edgekit**: a worker thread hands the frames to a Spool in groups of 64 with ``Spool.submit``, as
  the gateway's worker does (pipelined group commit: the spool's committer thread commits what is
  queued in one transaction, WAL, ``synchronous=FULL``; the uplink is notified at each commit)
  while an UplinkClient (CURVE, credit 2048 — the collector grants the same —
  batches of 64) sends them to a Collector (CURVE, allow-list) that decodes every record into the
  SQLite store (``synchronous=FULL``) and ACKs after each commit; the clock stops when the spool has
  no unacknowledged row.
* **raw**: a PUSH socket sends the same packed blobs, one message each, to a PULL socket in the
  child, which only counts them (no security, no durability, no decoding, no acks).

Reported: values/s for both and their ratio (target ≥ 0.5; the raw figure is the median of three
runs — before, between and after the edgekit runs — with their range), and the same edgekit run with both
SQLite files at ``synchronous=NORMAL`` — the difference is the cost of fsync at every commit —
and the median time of one fsync after writing 64 records' bytes on the same disk
(``fsync_ms_per_commit``). To show where the time goes, also the spool's admission rate during the run and the collector store alone
(decode + insert + commit, no network), and the end-to-end run with the collector's ``packed``
features layout (one row per frame instead of one per channel). ``cpu_us_per_record_*``: CPU
time per delivered record in the segments rounds (median), per thread group — the gateway's
producer thread (``submit``), the spool's committer thread (segment encoding, SQLite insert, commit
and fsync, queued acks and prunes), its event-loop thread (uplink client, spool reads), its other
threads (libzmq I/O: CURVE, TCP), the collector's serve thread and its other threads. Under load
from other jobs the per-thread CPU figures inflate (shared cores), so compare them within a run.

    .venv/bin/python benchmarks/uplink.py [--quick] [--json]
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _harness as harness
import numpy as np
import zmq

from edgekit import codec
from edgekit.types import FeatureFrame

CHANNELS, FEATURES = 16, 32
STREAM = "features/m01"
CREDIT = 2048  # granted by the collector too (its default, 256, would cap the window)


def make_blobs(n: int) -> list[bytes]:
    rng = np.random.default_rng(0)
    names = tuple(f"f{i}" for i in range(FEATURES))
    chans = tuple(f"ch{i}" for i in range(CHANNELS))
    q = np.zeros(CHANNELS, np.uint8)
    return [codec.pack(FeatureFrame("m01", rng.normal(size=(CHANNELS, FEATURES)).astype(np.float32), names, chans,
                                    1.7e9 + i, i, q, ("",) * CHANNELS)) for i in range(n)]


# ------------------------------------------------------------------ raw baseline


def _pull(endpoint: str, n: int, conn: Any) -> None:
    ctx = zmq.Context()
    s = ctx.socket(zmq.PULL)
    s.bind(endpoint)
    conn.send(s.getsockopt_string(zmq.LAST_ENDPOINT))
    for _ in range(n):
        s.recv(copy=False)
    conn.send(time.perf_counter())
    s.close(linger=0)
    ctx.term()


def raw_rate(blobs: list[bytes]) -> float:
    spawn = mp.get_context("spawn")  # no copy-on-write of this process's pages (module docstring)
    parent, child = spawn.Pipe()
    proc = spawn.Process(target=_pull, args=("tcp://127.0.0.1:*", len(blobs), child))
    proc.start()
    endpoint = parent.recv()
    ctx = zmq.Context()
    s = ctx.socket(zmq.PUSH)
    s.connect(endpoint)
    s.send(blobs[0])  # connection up before the clock starts
    t0 = time.perf_counter()
    for b in blobs[1:]:
        s.send(b, copy=False)
    t1 = parent.recv()
    proc.join()
    s.close(linger=0)
    ctx.term()
    return (len(blobs) - 1) * CHANNELS * FEATURES / (t1 - t0)


# ------------------------------------------------------------------ edgekit path


def _collect(store: str, secret: bytes, allow: str, sync: str, layout: str, ready: Any, stop: Any) -> None:
    from edgekit.collector import Collector

    c = Collector(["tcp://127.0.0.1:*"], store, allow_dir=allow, secret_key=secret, synchronous=sync, credit=CREDIT,
                  features_layout=layout)
    t = threading.Thread(target=lambda: (stop.wait(), flag.set()))
    flag = threading.Event()
    t.start()

    def report() -> None:
        c.ready.wait()
        ready.send(c.endpoints[0])

    threading.Thread(target=report).start()
    t0, p0 = time.thread_time(), _process_cpu()
    c.serve(flag)
    ready.send({"collector_thread_cpu_s": time.thread_time() - t0, "collector_process_cpu_s": _process_cpu() - p0})


def _process_cpu() -> float:
    """CPU seconds (user + system) of this process, every thread."""
    t = os.times()
    return t.user + t.system


def _thread_cpu(prefix: str) -> float:
    """CPU seconds of the live threads whose names start with ``prefix``."""
    return sum(time.clock_gettime(time.pthread_getcpuclockid(t.ident)) for t in threading.enumerate()
               if t.name.startswith(prefix) and t.ident is not None)


def edgekit_rate(blobs: list[bytes], sync: str, tmp: Path, layout: str = "wide") -> dict[str, float]:
    from edgekit.config.parse import parse
    from edgekit.spool import Spool, SpoolConfig
    from edgekit.uplink import UplinkClient, UplinkConfig
    from edgekit.uplink.security import generate_keypair, parse_secret_key

    tmp.mkdir()
    srv_pub, srv_sec = generate_keypair(tmp / "keys", "collector")
    gw_pub, gw_sec = generate_keypair(tmp / "keys", "gw-1")
    allow = tmp / "allow"
    allow.mkdir()
    (allow / "gw-1.key").write_bytes(gw_pub.read_bytes())
    ctx = mp.get_context("spawn")  # no copy-on-write of this process's pages (module docstring)
    parent, child = ctx.Pipe()
    stop = ctx.Event()
    proc = ctx.Process(target=_collect, args=(str(tmp / "store.sqlite"), parse_secret_key(srv_sec.read_text()),
                                              str(allow), sync.upper(), layout, child, stop))
    proc.start()
    endpoint = parent.recv()
    spool = Spool(tmp / "spool.sqlite", parse(SpoolConfig, {"synchronous": sync, "max_bytes": "2GiB",
                                                            "reserve_free_bytes": 0}, "spool"),
                  {"dc": ("features", "gap")})
    cfg = parse(UplinkConfig, {"name": "dc", "endpoints": [endpoint], "server_public_key": str(srv_pub),
                               "secret_key": {"file": str(gw_sec)}, "credit": CREDIT, "batch_records": 64,
                               "compression": "none"}, "uplinks[0]")
    client = UplinkClient(cfg, spool, "gw-1")

    async def run() -> dict[str, float]:
        task = asyncio.create_task(client.run())
        while client.state != "connected":
            await asyncio.sleep(0.01)
        append_s = [0.0, 0.0]

        def produce() -> None:
            # as the gateway's worker does: groups of 64 submitted to the spool's committer thread
            # (pipelined group commit, ts = commit time), the uplink notified when each is committed
            t, c = time.perf_counter(), time.thread_time()
            last = None
            for i in range(0, len(blobs), 64):
                last = spool.submit([(STREAM, "features", b, None) for b in blobs[i:i + 64]], notify)
            assert last is not None
            last.result()
            append_s[0], append_s[1] = time.perf_counter() - t, time.thread_time() - c

        def notify(_admission: object) -> None:
            client.notify()

        t0, c0, p0 = time.perf_counter(), time.thread_time(), _process_cpu()
        worker = threading.Thread(target=produce)
        worker.start()
        while client.delivered < len(blobs):
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - t0
        loop_cpu, gateway_cpu = time.thread_time() - c0, _process_cpu() - p0
        committer_cpu = _thread_cpu("spool-commit:")  # packer + writer, started by the first submit
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        worker.join()
        spool.flush()  # the last acks are applied by the spool's committer thread
        assert spool.backlog("dc")[0] == 0
        return {"elapsed": elapsed, "append_s": append_s[0], "producer_cpu_s": append_s[1], "loop_cpu_s": loop_cpu,
                "committer_cpu_s": committer_cpu,
                "gateway_cpu_s": gateway_cpu}

    try:
        out = asyncio.run(run())
    finally:
        spool.close()
        stop.set()
        cpu = parent.recv() if parent.poll(10) else {}
        proc.join(10)
    from edgekit.collector import store_summary

    summary = store_summary(tmp / "store.sqlite")
    assert summary["records"] == len(blobs) and summary["missing"] == 0, summary
    values = len(blobs) * CHANNELS * FEATURES
    per = 1e6 / len(blobs)  # CPU seconds -> µs per record
    return {"values_per_s": values / out["elapsed"], "spool_append_values_per_s": values / out["append_s"],
            "cpu_us_per_record": {
                "gateway_producer_thread": out["producer_cpu_s"] * per, "gateway_loop_thread": out["loop_cpu_s"] * per,
                "gateway_committer_thread": out["committer_cpu_s"] * per,
                "gateway_other_threads": (out["gateway_cpu_s"] - out["producer_cpu_s"] - out["loop_cpu_s"]
                                          - out["committer_cpu_s"]) * per,
                "collector_serve_thread": cpu.get("collector_thread_cpu_s", float("nan")) * per,
                "collector_other_threads": (cpu.get("collector_process_cpu_s", float("nan"))
                                            - cpu.get("collector_thread_cpu_s", float("nan"))) * per}}


def store_rate(blobs: list[bytes], tmp: Path, layout: str, segment: int = 1) -> float:
    """The collector's store alone: decode + insert + commit every 64 records (synchronous=FULL).

    ``segment`` > 1: the records arrive as segments of that many (as the spool stores and sends them)."""
    from types import SimpleNamespace

    from edgekit.collector import Store

    st = Store(tmp / f"store-only-{layout}-{segment}.sqlite", features_layout=layout)
    recs = [SimpleNamespace(stream=STREAM, seq=i + 1, kind="features", ts=0.0, count=len(blobs[i:i + segment]),
                            blob=codec.pack_segment(blobs[i:i + segment], "features"))
            for i in range(0, len(blobs), segment)]
    per_commit = max(1, 64 // segment)
    t0 = time.perf_counter()
    for i in range(0, len(recs), per_commit):
        st.write("gw-1", "ep", recs[i:i + per_commit])
        st.commit()
    elapsed = time.perf_counter() - t0
    st.close()
    return len(blobs) * CHANNELS * FEATURES / elapsed


def spool_rate(blobs: list[bytes], tmp: Path, sync: str) -> float:
    """The spool's admission alone (no uplink reading or acking): append_many in groups of 64."""
    from edgekit.config.parse import parse
    from edgekit.spool import Spool, SpoolConfig

    spool = Spool(tmp / f"spool-only-{sync}.sqlite", parse(SpoolConfig, {
        "synchronous": sync, "max_bytes": "2GiB", "reserve_free_bytes": 0}, "spool"), {"dc": ("features", "gap")})
    t0 = time.perf_counter()
    for i in range(0, len(blobs), 64):
        spool.append_many([(STREAM, "features", b, 0.0) for b in blobs[i:i + 64]])
    elapsed = time.perf_counter() - t0
    spool.close()
    return len(blobs) * CHANNELS * FEATURES / elapsed


def pack_rate(blobs: list[bytes]) -> float:
    """Encoding segments of 64 frames (codec.pack_segment, the stacked layout), values/s."""
    t0 = time.perf_counter()
    for i in range(0, len(blobs), 64):
        codec.pack_segment(blobs[i:i + 64], "features")
    return len(blobs) * CHANNELS * FEATURES / (time.perf_counter() - t0)


def fsync_ms(blobs: list[bytes], tmp: Path, rounds: int = 30) -> float:
    """Median time of one fsync after appending 64 records' bytes to a file (the disk's commit cost)."""
    chunk = b"".join(blobs[:64])
    times = []
    with open(tmp / "fsync-probe", "wb") as f:
        for _ in range(rounds):
            f.write(chunk)
            f.flush()
            t = time.perf_counter()
            os.fsync(f.fileno())
            times.append(time.perf_counter() - t)
    return 1e3 * sorted(times)[len(times) // 2]


def _median(xs: list[float]) -> float:
    return sorted(xs)[len(xs) // 2]


def measure(quick: bool) -> harness.Figures:
    n = 3000 if quick else 20000
    rounds = 3 if quick else 5
    blobs = make_blobs(n)
    with tempfile.TemporaryDirectory() as d:
        # the raw run is short (a fraction of a second) and load on a shared machine swings: it is
        # measured before, between and after the edgekit runs and the median is the baseline
        raws = [raw_rate(blobs)]
        full = edgekit_rate(blobs, "full", Path(d) / "full")
        raws.append(raw_rate(blobs))
        normal = edgekit_rate(blobs, "normal", Path(d) / "normal")
        packed = edgekit_rate(blobs, "full", Path(d) / "packed", "packed")
        raws.append(raw_rate(blobs))
        raw = sorted(raws)[1]
        # the segments layout: `rounds` rounds of raw / edgekit / raw, the ratio of each round against
        # the mean of its two raw runs; reported as median and range over the rounds
        ratios, seg_rates, seg_raws, admit = [], [], [], []
        cpus: list[dict[str, float]] = []
        for r in range(rounds):
            before = raw_rate(blobs)
            e = edgekit_rate(blobs, "full", Path(d) / f"segments-{r}", "segments")
            after = raw_rate(blobs)
            seg_raws.extend([before, after])
            seg_rates.append(e["values_per_s"])
            admit.append(e["spool_append_values_per_s"])
            cpus.append(e["cpu_us_per_record"])
            ratios.append(e["values_per_s"] / ((before + after) / 2))
        seg_normal = edgekit_rate(blobs, "normal", Path(d) / "segments-normal", "segments")
        store_only = store_rate(blobs, Path(d), "wide")
        store_packed = store_rate(blobs, Path(d), "packed")
        store_segments = store_rate(blobs, Path(d), "segments", segment=64)
        spool_full = spool_rate(blobs, Path(d), "full")
        spool_normal = spool_rate(blobs, Path(d), "normal")
        packing = pack_rate(blobs)
        fsync = fsync_ms(blobs, Path(d))
    seg_full = _median(seg_rates)
    return {
        "records": n,
        "values_per_record": CHANNELS * FEATURES,
        "record_bytes": len(blobs[0]),
        "raw_pushpull_values_per_s": round(raw),
        "raw_pushpull_min_max": f"{min(raws):.0f}-{max(raws):.0f}",
        "edgekit_full_values_per_s": round(full["values_per_s"]),
        "edgekit_normal_values_per_s": round(normal["values_per_s"]),
        "spool_append_full_values_per_s": round(full["spool_append_values_per_s"]),
        "edgekit_full_packed_values_per_s": round(packed["values_per_s"]),
        "collector_store_full_values_per_s": round(store_only),
        "collector_store_full_packed_values_per_s": round(store_packed),
        "edgekit_vs_raw_ratio": full["values_per_s"] / raw,
        "edgekit_packed_vs_raw_ratio": packed["values_per_s"] / raw,
        "fsync_cost_ratio": normal["values_per_s"] / full["values_per_s"],
        "fsync_ms_per_commit": round(fsync, 3),
        # the segment path (collector --features-layout segments), the target's figure
        "segments_rounds": rounds,
        "segments_raw_values_per_s_median": round(_median(seg_raws)),
        "segments_raw_min_max": f"{min(seg_raws):.0f}-{max(seg_raws):.0f}",
        "edgekit_full_segments_values_per_s": round(seg_full),
        "edgekit_full_segments_min_max": f"{min(seg_rates):.0f}-{max(seg_rates):.0f}",
        "edgekit_segments_vs_raw_ratio": _median(ratios),
        "edgekit_segments_vs_raw_ratio_min_max": f"{min(ratios):.3f}-{max(ratios):.3f}",
        "edgekit_normal_segments_values_per_s": round(seg_normal["values_per_s"]),
        "segments_fsync_cost_ratio": seg_normal["values_per_s"] / seg_full,
        # where the time goes: each stage alone, same records, groups of 64
        "stage_spool_admission_full_values_per_s": round(spool_full),
        "stage_spool_admission_normal_values_per_s": round(spool_normal),
        "stage_spool_admission_in_run_values_per_s": round(_median(admit)),
        "stage_pack_segment_values_per_s": round(packing),
        "stage_collector_store_segments_full_values_per_s": round(store_segments),
        # CPU per delivered record in the segments rounds (median per thread group), both processes
        **{f"cpu_us_per_record_{k}": round(_median([c[k] for c in cpus]), 1) for k in cpus[0]},
        "cpu_us_per_record_total": round(_median([sum(c.values()) for c in cpus]), 1),
    }


if __name__ == "__main__":
    harness.main("uplink", measure)
