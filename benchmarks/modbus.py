"""Modbus: polled values per second and requests per scan for 50 devices, edgekit vs raw pymodbus.

A pymodbus TCP server with 50 unit ids runs in a subprocess (its CPU is not counted). Each device
has 32 tags (30 holding-register values of mixed types and byte orders over registers 0..69, and two
coils). The edgekit connector plans them into 2 requests per device scan (naive per-tag polling:
32). Three clients poll the same server, each over one TCP connection, issuing exactly the same
100 requests per full scan of the 50 devices:

* **raw** — a bare pymodbus ``AsyncModbusTcpClient`` in a loop, no decoding at all (the floor);
* **raw+decoding** — the same, plus what a user of bare pymodbus writes to get values: per tag a
  ``struct`` unpack in its byte order, scaled, kept in a dict with a timestamp;
* **edgekit** — the connector polling with a 1 ms interval (always due) into a counting sink:
  strict response checks, decoding, PointBatches with source/receive timestamps and quality,
  timeouts, health bookkeeping, watchdog.

They alternate, round after round (the shared machine's load drifts by ±30 % within seconds).
Reported: requests/s, values/s, client CPU per request; the ratios edgekit/raw of wall time and CPU
per request both best-round vs best-round and as the median (and range) of per-round paired ratios;
and the same against raw+decoding. Target (issue 4): overhead <= 25 % over raw, ratio <= 1.25. Last,
raw pymodbus polls the same tags one request per tag (what a naive gateway does) for values/s.

    .venv/bin/python benchmarks/modbus.py [--quick] [--json]

Machine instructions per request, independent of the load (see docs/modbus.md, "Benchmark"):

    for n in 600 3000; do for m in raw edgekit; do OPENBLAS_NUM_THREADS=1 valgrind --tool=callgrind \
      --callgrind-out-file=/tmp/cg.$m.$n .venv/bin/python benchmarks/modbus.py --requests $m $n; done; done
"""

from __future__ import annotations

import asyncio
import os
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _harness as harness

DEVICES = 50
WARMUP = 100  # requests (one full scan) before a raw run's clock starts; edgekit gets 0.2 s of polling
TYPES = [("uint16", 1), ("int16", 1), ("float32", 2), ("uint32", 2), ("int64", 4), ("float64", 4)]
ORDERS = ["ABCD", "CDAB", "BADC", "DCBA"]


def _tags() -> list[dict[str, Any]]:
    tags: list[dict[str, Any]] = []
    addr = 0
    for i in range(30):
        kind, words = TYPES[i % len(TYPES)]
        tags.append({"name": f"t{i:02d}", "address": addr, "table": "holding_register", "type": kind,
                     "byte_order": ORDERS[i % 4], "scale": 0.1 if words == 1 else 1.0})
        addr += words
    tags += [{"name": "run", "address": 0, "table": "coil"}, {"name": "fault", "address": 1, "table": "coil"}]
    return tags


async def _serve(port: int, units: int) -> None:
    import logging

    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    devices = [SimDevice(id=u, simdata=(
        [SimData(0, values=[True, False] * 8, datatype=DataType.BITS)],
        [SimData(0, values=[False] * 16, datatype=DataType.BITS)],
        [SimData(0, values=[(u * 1000 + a) & 0xFFFF for a in range(80)], datatype=DataType.REGISTERS)],
        [SimData(0, values=[0] * 8, datatype=DataType.REGISTERS)],
    )) for u in range(1, units + 1)]
    server = ModbusTcpServer(devices, address=("127.0.0.1", port))
    await server.serve_forever(background=True)
    print("ready", flush=True)
    devnull = os.open(os.devnull, os.O_WRONLY)  # nobody reads our pipes from now on: never block on them
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    await asyncio.Event().wait()


class _CountingSink:
    def __init__(self) -> None:
        self.values = 0
        self.batches = 0

    async def points(self, batch: Any) -> None:  # counting only: the sink's work is not edgekit's
        self.values += len(batch)
        self.batches += 1

    async def waveform(self, block: Any) -> None:
        pass

    def event(self, event: Any) -> None:
        pass


def _config(port: int) -> Any:
    from edgekit.config.parse import parse
    from edgekit.connectors.modbus.config import ModbusConnectionConfig

    tags = _tags()
    return parse(ModbusConnectionConfig, {
        "name": "bench", "port": port, "timeout": "2s", "retries": 0,
        "devices": [{"name": f"m{u:02d}", "unit_id": u, "poll": {"default": "1ms"}, "tags": tags}
                    for u in range(1, DEVICES + 1)],
    }, "modbus[0]")


async def _raw(port: int, plan: list[tuple[int, str, int, int]], seconds: float) -> tuple[int, float, float]:
    from pymodbus.client import AsyncModbusTcpClient

    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0, reconnect_delay=0)
    await client.connect()
    calls = {"holding_register": client.read_holding_registers, "coil": client.read_coils}
    for unit, table, start, count in plan[:WARMUP]:  # warm-up, as edgekit gets one
        await calls[table](start, count=count, device_id=unit)
    n = 0
    t0, c0 = time.perf_counter(), time.process_time()
    deadline = t0 + seconds
    while time.perf_counter() < deadline:
        for unit, table, start, count in plan:
            rr = await calls[table](start, count=count, device_id=unit)
            if rr.isError():
                raise RuntimeError(f"raw request failed: {rr}")
            n += 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    client.close()
    return n, wall, cpu


_STRUCT = {"uint16": "H", "int16": "h", "float32": "f", "uint32": "I", "int64": "q", "float64": "d"}


def _hand_decoder(table: str, start: int, tags: Any) -> Any:
    """What a user of bare pymodbus writes to get engineering values: per tag, unpack its registers
    (byte order by packing the block big- or little-endian and choosing the struct endianness),
    scale, and keep a timestamped dict — plain Python, no batching, no quality, no checks."""
    if table == "coil":
        offs = [(t.name, t.address - start) for t in tags]
        return lambda rr: {name: float(rr.bits[off]) for name, off in offs}
    lanes = {"ABCD": (0, ">"), "DCBA": (0, "<"), "BADC": (1, ">"), "CDAB": (1, "<")}
    fields = []
    for t in tags:
        little, endian = lanes[t.byte_order]
        fields.append((t.name, little, struct.Struct(endian + _STRUCT[t.type]), 2 * (t.address - start), t.scale))

    def decode(rr: Any) -> dict[str, float]:
        regs = rr.registers
        bufs = (struct.pack(f">{len(regs)}H", *regs), struct.pack(f"<{len(regs)}H", *regs))
        return {name: fmt.unpack_from(bufs[little], off)[0] * scale for name, little, fmt, off, scale in fields}

    return decode


async def _raw_decoding(port: int, plan: list[tuple[int, str, int, int]], decoders: list[Any],
                        seconds: float) -> tuple[int, float, float]:
    """Raw pymodbus issuing the same requests and decoding every value by hand (see _hand_decoder)."""
    from pymodbus.client import AsyncModbusTcpClient

    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0, reconnect_delay=0)
    await client.connect()
    calls = {"holding_register": client.read_holding_registers, "coil": client.read_coils}
    latest: dict[tuple[int, str], tuple[float, float]] = {}
    for (unit, table, start, count), decode in list(zip(plan, decoders, strict=True))[:WARMUP]:  # warm-up
        decode(await calls[table](start, count=count, device_id=unit))
    n = 0
    t0, c0 = time.perf_counter(), time.process_time()
    deadline = t0 + seconds
    while time.perf_counter() < deadline:
        for (unit, table, start, count), decode in zip(plan, decoders, strict=True):
            rr = await calls[table](start, count=count, device_id=unit)
            if rr.isError():
                raise RuntimeError(f"raw request failed: {rr}")
            now = time.time()
            for name, value in decode(rr).items():
                latest[unit, name] = (value, now)
            n += 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    client.close()
    return n, wall, cpu


async def _edgekit(cfg: Any, seconds: float) -> tuple[int, int, float, float, int]:
    from edgekit.connectors import modbus

    connector = modbus.build(cfg)
    sink = _CountingSink()
    task = asyncio.create_task(connector.run(sink))
    while not connector.link.connected:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # warm-up
    r0, v0 = connector.link.requests, sink.values
    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.sleep(seconds)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    n, values = connector.link.requests - r0, sink.values - v0
    failed = sum(connector.health()["errors"].values())  # every BAD point comes from a counted error
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return n, values, wall, cpu, failed


@contextmanager
def _server() -> Iterator[int]:
    """The benchmark's pymodbus server (DEVICES unit ids) in a subprocess; yields its port."""
    port = harness.free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port), str(DEVICES)],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("benchmark server did not start")
        yield port
    finally:
        proc.kill()
        proc.wait()


def measure(quick: bool) -> dict[str, Any]:
    from edgekit.connectors.modbus.device import resolve_device
    from edgekit.connectors.modbus.planner import ReadPlanner

    seconds, rounds = (0.5, 5) if quick else (1.0, 10)
    with _server() as port:
        cfg = _config(port)
        plan: list[tuple[int, str, int, int]] = []
        decoders: list[Any] = []
        naive_plan: list[tuple[int, str, int, int]] = []
        naive = 0
        for dcfg in cfg.devices:
            dev = resolve_device(dcfg, max_registers=125, max_bits=2000)
            planner = ReadPlanner(dev)
            plan += [(dev.unit_id, r.table, r.start, r.count) for r in planner.requests("default")]
            decoders += [_hand_decoder(r.table, r.start, r.tags) for r in planner.requests("default")]
            naive_plan += [(dev.unit_id, t.table, t.address, t.words) for t in dev.tags]
            naive += len(dev.tags)
        tags_per_request = naive / len(plan)
        # the three alternate, round after round (the machine's load drifts): each round's edgekit run
        # is compared with the raw runs right next to it (paired ratios), and the best rounds with
        # each other
        raw_runs, dec_runs, ek_runs = [], [], []
        for _ in range(rounds):
            raw_runs.append(asyncio.run(_raw(port, plan, seconds)))
            ek_runs.append(asyncio.run(_edgekit(cfg, seconds)))
            dec_runs.append(asyncio.run(_raw_decoding(port, plan, decoders, seconds)))
        naive_n, naive_wall, _ = asyncio.run(_raw(port, naive_plan, seconds))  # one request per tag
    raw_wall = [w / n for n, w, _ in raw_runs]
    raw_cpu = [c / n for n, _, c in raw_runs]
    dec_wall = [w / n for n, w, _ in dec_runs]
    dec_cpu = [c / n for n, _, c in dec_runs]
    ek_wall = [w / n for n, _, w, _, _ in ek_runs]
    ek_cpu = [c / n for n, _, _, c, _ in ek_runs]
    ek_values = sum(r[1] for r in ek_runs) / sum(r[2] for r in ek_runs)

    def paired(ek: list[float], base: list[float]) -> list[float]:
        return sorted(e / b for e, b in zip(ek, base, strict=True))

    def span(ratios: list[float]) -> str:
        return f"{ratios[0]:.2f}..{ratios[-1]:.2f}"

    cpu_pairs, wall_pairs = paired(ek_cpu, raw_cpu), paired(ek_wall, raw_wall)
    dcpu_pairs, dwall_pairs = paired(ek_cpu, dec_cpu), paired(ek_wall, dec_wall)
    return {
        "devices": DEVICES,
        "tags_per_scan": naive,
        "requests_per_scan": len(plan),
        "naive_requests_per_scan": naive,
        "rounds": rounds,
        "raw_requests_per_s": round(1 / min(raw_wall), 1),
        "raw_values_per_s_equivalent": round(tags_per_request / min(raw_wall), 1),
        "raw_cpu_us_per_request": round(min(raw_cpu) * 1e6, 1),
        "raw_decoding_requests_per_s": round(1 / min(dec_wall), 1),
        "raw_decoding_cpu_us_per_request": round(min(dec_cpu) * 1e6, 1),
        "edgekit_requests_per_s": round(1 / min(ek_wall), 1),
        "edgekit_values_per_s": round(ek_values, 1),
        "edgekit_cpu_us_per_request": round(min(ek_cpu) * 1e6, 1),
        "edgekit_failed_requests": sum(r[4] for r in ek_runs),
        "full_scans_per_s_all_devices": round(1 / min(ek_wall) / len(plan), 2),
        # target (issue 4): <= 1.25 against bare pymodbus (no decoding at all: the floor)
        "wall_per_request_ratio": round(min(ek_wall) / min(raw_wall), 3),
        "cpu_per_request_ratio": round(min(ek_cpu) / min(raw_cpu), 3),
        "wall_per_request_ratio_paired_median": round(statistics.median(wall_pairs), 3),
        "wall_per_request_ratio_paired_range": span(wall_pairs),
        "cpu_per_request_ratio_paired_median": round(statistics.median(cpu_pairs), 3),
        "cpu_per_request_ratio_paired_range": span(cpu_pairs),
        # the same work: bare pymodbus plus hand-written per-tag decoding of every value
        "wall_vs_raw_decoding_ratio": round(min(ek_wall) / min(dec_wall), 3),
        "cpu_vs_raw_decoding_ratio": round(min(ek_cpu) / min(dec_cpu), 3),
        "cpu_vs_raw_decoding_ratio_paired_median": round(statistics.median(dcpu_pairs), 3),
        "wall_vs_raw_decoding_ratio_paired_median": round(statistics.median(dwall_pairs), 3),
        "naive_vs_planned_requests_ratio": round(naive / len(plan), 1),
        "raw_per_tag_polling_values_per_s": round(naive_n / naive_wall, 1),
        "edgekit_vs_per_tag_polling_values_ratio": round(ek_values / (naive_n / naive_wall), 2),
    }


async def _count_raw(port: int, plan: list[tuple[int, str, int, int]], n: int) -> None:
    from pymodbus.client import AsyncModbusTcpClient

    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=20, retries=0, reconnect_delay=0)
    await client.connect()
    calls = {"holding_register": client.read_holding_registers, "coil": client.read_coils}
    done = 0
    while done < n:
        for unit, table, start, count in plan[:n - done]:
            rr = await calls[table](start, count=count, device_id=unit)
            if rr.isError():
                raise RuntimeError(f"raw request failed: {rr}")
            done += 1
    client.close()


async def _count_edgekit(cfg: Any, n: int) -> None:
    from edgekit.connectors import modbus

    done = asyncio.Event()

    class Sink(_CountingSink):
        async def points(self, batch: Any) -> None:
            await super().points(batch)
            if connector.link.requests >= n:
                done.set()

    connector = modbus.build(cfg)
    task = asyncio.create_task(connector.run(Sink()))
    await done.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    if sum(connector.health()["errors"].values()):
        raise RuntimeError(f"edgekit requests failed: {connector.health()['errors']}")


def count(mode: str, n: int) -> None:
    """``--requests raw|edgekit N``: issue N requests of the benchmark's plan (timeouts 20 s) and exit —
    for instruction counts under ``valgrind --tool=callgrind`` (the server subprocess is not traced):
    per request = (count at N=3000 - count at N=600) / 2400, independent of the machine's load."""
    from dataclasses import replace

    from edgekit.connectors.modbus.device import resolve_device
    from edgekit.connectors.modbus.planner import ReadPlanner

    with _server() as port:
        cfg = replace(_config(port), timeout=20.0)
        if mode == "raw":
            plan = [(dev.unit_id, r.table, r.start, r.count) for dev in
                    (resolve_device(d, max_registers=125, max_bits=2000) for d in cfg.devices)
                    for r in ReadPlanner(dev).requests("default")]
            asyncio.run(_count_raw(port, plan, n))
        else:
            asyncio.run(_count_edgekit(cfg, n))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        asyncio.run(_serve(int(sys.argv[2]), int(sys.argv[3])))
    elif len(sys.argv) == 4 and sys.argv[1] == "--requests" and sys.argv[2] in ("raw", "edgekit"):
        count(sys.argv[2], int(sys.argv[3]))
    else:
        harness.main("modbus", measure)
