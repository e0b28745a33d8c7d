"""Uplink floor: what the parts issue #8 mandates allow on this machine, with no edgekit code at all.

The uplink target (``benchmarks/uplink.py``) is feature values delivered per second end to end —
durable SQLite spool at ``synchronous=FULL``, ZeroMQ CURVE, a collector writing durably to SQLite
at FULL, then an ACK — at ≥ 0.5 of raw pyzmq PUSH/PULL moving the same 2.4 KB blobs. This
benchmark measures the best ratio those parts reach here when driven by the thinnest possible
Python, so the team knows whether 0.5 is a matter of optimising edgekit or beyond the parts:

* **raw**: exactly ``uplink.raw_rate`` (PUSH → PULL in a ``spawn`` child, one message per
  record, no security, no disk), measured before and after every round; each round's ratios are
  taken against the mean of its two raw runs and reported as median and range over the rounds.
* **curve** (a): the same bytes joined into messages of 384 records (the size of edgekit's segments
  under load; joined before the clock) over CURVE PUSH → PULL; the child only counts: the cost of
  CURVE (and of fewer, bigger messages) alone. Also **curve_per_record**: CURVE with one message per
  record, as the raw baseline sends them.
* **durable_full** (b): the minimal durable pipeline. The sender appends each group of 384 records
  as ONE blob row (``b"".join`` inside the clock) in one transaction to a SQLite WAL file at
  ``synchronous=FULL`` with 32 KiB pages, deleting the rows acknowledged so far in the same
  transaction (so acks cost no fsync of their own, as in edgekit), then sends ``[seq, blob]`` over a
  CURVE DEALER to a ROUTER in a ``spawn`` child; the child drains what has arrived, INSERTs it into
  its own WAL FULL file (32 KiB pages) in one transaction, COMMITs and sends one 8-byte ACK per
  message. The sender keeps at most ``WINDOW`` (8) messages unacknowledged. The clock stops when
  every message is acknowledged and the last acked rows are deleted. No msgpack, no CRC, no seq
  logic beyond an integer, one thread per process (plus libzmq's I/O thread).
* **durable_normal** (c): the same with ``synchronous=NORMAL`` on both files (the fsync share).

Also, per round, one side's SQLite write alone (``stage_sqlite_*``: join 384 records, INSERT, COMMIT;
thread CPU and wall per record), the part the two durable ends pay each.

CPU per record: the main thread's ``time.thread_time`` and the whole process's ``os.times`` (user +
system via ``time.process_time``, which includes libzmq's I/O thread doing CURVE and TCP; the same
figure as uplink.py's ``os.times`` without its 10 ms ticks) on both sides, over the timed part
(medians over the rounds). Same records (``uplink.make_blobs``) and counts as ``uplink.py``
(3,000 quick / 20,000 full).

    .venv/bin/python benchmarks/uplink_floor.py [--quick] [--json]
"""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as harness
import zmq
from uplink import CHANNELS, FEATURES, make_blobs, raw_rate

GROUP = 384  # records per message / spool row (edgekit's segments under load)
WINDOW = 8  # unacknowledged messages the sender allows
PAGE_SIZE = 32768


def _process_cpu() -> float:
    """CPU seconds of this process, every thread (``os.times`` counts in 10 ms ticks: too coarse here)."""
    return time.process_time()


def _open_db(path: str, sync: str, table: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {sync}")
    conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, blob BLOB NOT NULL)")
    return conn


def _curve_server(kind: int, endpoint: str, secret: bytes, conn: Any) -> tuple[zmq.Context[Any], zmq.Socket[Any]]:
    """A CURVE server socket of ``kind`` bound to ``endpoint``; its actual endpoint is sent on ``conn``."""
    ctx: zmq.Context[Any] = zmq.Context()
    s = ctx.socket(kind)
    s.curve_server = True
    s.curve_secretkey = secret
    s.bind(endpoint)
    conn.send(s.getsockopt_string(zmq.LAST_ENDPOINT))
    return ctx, s


# ------------------------------------------------------------------ (a) CURVE PUSH/PULL


def _curve_pull(endpoint: str, secret: bytes, n_msgs: int, conn: Any) -> None:
    ctx, s = _curve_server(zmq.PULL, endpoint, secret, conn)
    s.recv()  # warm-up message: connection and CURVE handshake done
    c0, p0 = time.thread_time(), _process_cpu()
    for _ in range(n_msgs):
        s.recv(copy=False)
    conn.send({"t1": time.perf_counter(), "thread_cpu": time.thread_time() - c0, "process_cpu": _process_cpu() - p0})
    s.close(linger=0)
    ctx.term()


def curve_rate(blobs: list[bytes], group: int = GROUP) -> dict[str, float]:
    msgs = [b"".join(blobs[i:i + group]) for i in range(0, len(blobs), group)] if group > 1 else blobs
    srv_pub, srv_sec = zmq.curve_keypair()
    cli_pub, cli_sec = zmq.curve_keypair()
    spawn = mp.get_context("spawn")
    parent, child = spawn.Pipe()
    proc = spawn.Process(target=_curve_pull, args=("tcp://127.0.0.1:*", srv_sec, len(msgs), child))
    proc.start()
    endpoint = parent.recv()
    ctx = zmq.Context()
    s = ctx.socket(zmq.PUSH)
    s.curve_serverkey, s.curve_publickey, s.curve_secretkey = srv_pub, cli_pub, cli_sec
    s.connect(endpoint)
    s.send(b"hello")
    t0, c0, p0 = time.perf_counter(), time.thread_time(), _process_cpu()
    for m in msgs:
        s.send(m, copy=False)
    c1 = time.thread_time()
    out = parent.recv()
    p1 = _process_cpu()  # sends are only queued above: libzmq's I/O thread works until the child has all
    proc.join()
    s.close(linger=0)
    ctx.term()
    return _result(len(blobs), out["t1"] - t0, c1 - c0, p1 - p0, out)


# ------------------------------------------------------------------ (b, c) minimal durable pipeline


def _collector(endpoint: str, secret: bytes, db: str, sync: str, n_msgs: int, conn: Any) -> None:
    store = _open_db(db, sync, "store")
    ctx, s = _curve_server(zmq.ROUTER, endpoint, secret, conn)
    ident, seq, _ = s.recv_multipart()  # warm-up message (seq 0), not stored
    s.send_multipart([ident, seq])
    c0, p0 = time.thread_time(), _process_cpu()
    got = 0
    while got < n_msgs:
        batch = [s.recv_multipart(copy=False)]
        while True:  # group commit: everything that has arrived
            try:
                batch.append(s.recv_multipart(zmq.NOBLOCK, copy=False))
            except zmq.Again:
                break
        store.execute("BEGIN")
        store.executemany("INSERT INTO store (id, blob) VALUES (?, ?)",
                          [(int.from_bytes(m[1].buffer, "little"), m[2].buffer) for m in batch])
        store.execute("COMMIT")
        for m in batch:
            s.send_multipart([m[0], m[1]])
        got += len(batch)
    conn.send({"t1": time.perf_counter(), "thread_cpu": time.thread_time() - c0, "process_cpu": _process_cpu() - p0})
    store.close()
    s.close(linger=1000)
    ctx.term()


def durable_rate(blobs: list[bytes], tmp: Path, sync: str) -> dict[str, float]:
    n_msgs = (len(blobs) + GROUP - 1) // GROUP
    srv_pub, srv_sec = zmq.curve_keypair()
    cli_pub, cli_sec = zmq.curve_keypair()
    tmp.mkdir()
    spawn = mp.get_context("spawn")
    parent, child = spawn.Pipe()
    proc = spawn.Process(target=_collector, args=("tcp://127.0.0.1:*", srv_sec, str(tmp / "store.sqlite"), sync,
                                                  n_msgs, child))
    proc.start()
    endpoint = parent.recv()
    spool = _open_db(str(tmp / "spool.sqlite"), sync, "spool")
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.curve_serverkey, s.curve_publickey, s.curve_secretkey = srv_pub, cli_pub, cli_sec
    s.connect(endpoint)
    s.send_multipart([(0).to_bytes(8, "little"), b""])
    s.recv_multipart()  # warm-up ACK: connection and CURVE handshake done
    t0, c0, p0 = time.perf_counter(), time.thread_time(), _process_cpu()
    acked: list[int] = []
    inflight = 0
    for k, i in enumerate(range(0, len(blobs), GROUP), start=1):
        while True:  # collect the ACKs that have arrived; wait while the window is full
            try:
                acked.append(int.from_bytes(s.recv(zmq.NOBLOCK if inflight < WINDOW else 0), "little"))
                inflight -= 1
            except zmq.Again:
                break
        blob = b"".join(blobs[i:i + GROUP])
        spool.execute("BEGIN")
        if acked:
            spool.executemany("DELETE FROM spool WHERE id = ?", [(a,) for a in acked])
            acked.clear()
        spool.execute("INSERT INTO spool (id, blob) VALUES (?, ?)", (k, blob))
        spool.execute("COMMIT")
        s.send_multipart([k.to_bytes(8, "little"), blob], copy=False)
        inflight += 1
    while inflight:
        acked.append(int.from_bytes(s.recv(), "little"))
        inflight -= 1
    spool.execute("BEGIN")
    spool.executemany("DELETE FROM spool WHERE id = ?", [(a,) for a in acked])
    spool.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    c1, p1 = time.thread_time(), _process_cpu()
    out = parent.recv()
    proc.join()
    left = spool.execute("SELECT count(*) FROM spool").fetchone()[0]
    spool.close()
    s.close(linger=0)
    ctx.term()
    stored = sqlite3.connect(tmp / "store.sqlite")
    total = stored.execute("SELECT count(*), sum(length(blob)) FROM store").fetchone()
    stored.close()
    assert left == 0 and total == (n_msgs, sum(map(len, blobs))), (left, total)
    return _result(len(blobs), elapsed, c1 - c0, p1 - p0, out)


def sqlite_stage(blobs: list[bytes], path: Path, sync: str) -> dict[str, float]:
    """One side's SQLite write alone: join 384 records, INSERT the blob, COMMIT (thread CPU and wall per record)."""
    db = _open_db(str(path), sync, "store")
    t0, c0 = time.perf_counter(), time.thread_time()
    for k, i in enumerate(range(0, len(blobs), GROUP), start=1):
        blob = b"".join(blobs[i:i + GROUP])
        db.execute("BEGIN")
        db.execute("INSERT INTO store (id, blob) VALUES (?, ?)", (k, blob))
        db.execute("COMMIT")
    per = 1e6 / len(blobs)
    out = {"wall": (time.perf_counter() - t0) * per, "cpu": (time.thread_time() - c0) * per}
    db.close()
    return out


def _result(n: int, elapsed: float, thread_cpu: float, process_cpu: float, child: dict[str, float]) -> dict[str, float]:
    per = 1e6 / n
    return {"values_per_s": n * CHANNELS * FEATURES / elapsed,
            "cpu_sender_thread": thread_cpu * per, "cpu_sender_process": process_cpu * per,
            "cpu_receiver_thread": child["thread_cpu"] * per, "cpu_receiver_process": child["process_cpu"] * per,
            "cpu_total": (process_cpu + child["process_cpu"]) * per}


def _median(xs: list[float]) -> float:
    return sorted(xs)[len(xs) // 2]


def measure(quick: bool) -> harness.Figures:
    n = 3000 if quick else 20000  # as uplink.py
    rounds = 3 if quick else 5
    blobs = make_blobs(n)
    kinds = ("curve", "curve_per_record", "durable_full", "durable_normal")
    rates: dict[str, list[float]] = {k: [] for k in kinds}
    ratios: dict[str, list[float]] = {k: [] for k in kinds}
    cpus: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    raws: list[float] = []
    stages: dict[str, list[dict[str, float]]] = {"FULL": [], "NORMAL": []}
    with tempfile.TemporaryDirectory() as d:
        for r in range(rounds):
            before = raw_rate(blobs)
            got = {"curve": curve_rate(blobs), "curve_per_record": curve_rate(blobs, 1),
                   "durable_full": durable_rate(blobs, Path(d) / f"full-{r}", "FULL"),
                   "durable_normal": durable_rate(blobs, Path(d) / f"normal-{r}", "NORMAL")}
            after = raw_rate(blobs)
            for sync in stages:
                stages[sync].append(sqlite_stage(blobs, Path(d) / f"stage-{sync}-{r}.sqlite", sync))
            raws.extend([before, after])
            for k, e in got.items():
                rates[k].append(e["values_per_s"])
                ratios[k].append(e["values_per_s"] / ((before + after) / 2))
                cpus[k].append({c: v for c, v in e.items() if c.startswith("cpu_")})
    figures: harness.Figures = {
        "records": n, "record_bytes": len(blobs[0]), "records_per_message": GROUP, "window": WINDOW,
        "rounds": rounds,
        "raw_pushpull_values_per_s_median": round(_median(raws)),
        "raw_pushpull_min_max": f"{min(raws):.0f}-{max(raws):.0f}",
    }
    for k in kinds:
        figures[f"{k}_values_per_s"] = round(_median(rates[k]))
        figures[f"{k}_min_max"] = f"{min(rates[k]):.0f}-{max(rates[k]):.0f}"
        figures[f"{k}_vs_raw_ratio"] = _median(ratios[k])
        figures[f"{k}_vs_raw_ratio_min_max"] = f"{min(ratios[k]):.3f}-{max(ratios[k]):.3f}"
        for c in cpus[k][0]:
            figures[f"{k}_{c.replace('cpu_', 'cpu_us_per_record_')}"] = round(_median([x[c] for x in cpus[k]]), 2)
    for sync, xs in stages.items():  # one side's SQLite write alone (join + INSERT + COMMIT), µs per record
        figures[f"stage_sqlite_{sync.lower()}_cpu_us_per_record"] = round(_median([x["cpu"] for x in xs]), 2)
        figures[f"stage_sqlite_{sync.lower()}_wall_us_per_record"] = round(_median([x["wall"] for x in xs]), 2)
    return figures


if __name__ == "__main__":
    harness.main("uplink_floor", measure)
