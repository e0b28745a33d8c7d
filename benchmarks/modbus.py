"""Modbus: polled values per second and requests per scan for 50 devices, edgekit vs raw pymodbus.

A pymodbus TCP server with 50 unit ids runs in a subprocess (its CPU is not counted). Each device
has 32 tags (30 holding-register values of mixed types and byte orders over registers 0..69, and two
coils). The edgekit connector plans them into 2 requests per device scan (naive per-tag polling:
32). For the same time, first a bare pymodbus ``AsyncModbusTcpClient`` issues exactly the planned
requests in a loop (no decoding, no batches: the floor), then the edgekit connector polls with a
1 ms interval (always due) into a counting sink — decoding every value, building PointBatches with
timestamps and quality. The two alternate for several rounds (the machine's load drifts) and each
keeps its best round. Last, raw pymodbus polls the same tags one request per tag (what a naive
gateway does) for the values/s comparison. Reported: requests/s and values/s, client CPU per request, and the ratios
edgekit/raw of wall time and CPU per request (target: overhead <= 25 %, i.e. ratio <= 1.25).

    .venv/bin/python benchmarks/modbus.py [--quick] [--json]
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _harness as harness

DEVICES = 50
TYPES = [("uint16", 1), ("int16", 1), ("float32", 2), ("uint32", 2), ("int64", 4), ("float64", 4)]
ORDERS = ["ABCD", "CDAB", "BADC", "DCBA"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
        self.bad = 0

    async def points(self, batch: Any) -> None:
        self.values += len(batch)
        self.batches += 1
        self.bad += int((batch.quality != 0).sum())

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
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return n, values, wall, cpu, sink.bad


def measure(quick: bool) -> dict[str, Any]:
    from edgekit.connectors.modbus.device import resolve_device
    from edgekit.connectors.modbus.planner import ReadPlanner

    seconds, rounds = (1.0, 3) if quick else (2.0, 6)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port), str(DEVICES)],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("benchmark server did not start")
        cfg = _config(port)
        plan: list[tuple[int, str, int, int]] = []
        naive_plan: list[tuple[int, str, int, int]] = []
        naive = 0
        for dcfg in cfg.devices:
            dev = resolve_device(dcfg, max_registers=125, max_bits=2000)
            planner = ReadPlanner(dev)
            plan += [(dev.unit_id, r.table, r.start, r.count) for r in planner.requests("default")]
            naive_plan += [(dev.unit_id, t.table, t.address, t.words) for t in dev.tags]
            naive += len(dev.tags)
        tags_per_request = naive / len(plan)
        # alternate the two (the machine's load drifts) and keep each one's best round
        raw_runs, ek_runs = [], []
        for _ in range(rounds):
            raw_runs.append(asyncio.run(_raw(port, plan, seconds)))
            ek_runs.append(asyncio.run(_edgekit(cfg, seconds)))
        naive_n, naive_wall, _ = asyncio.run(_raw(port, naive_plan, seconds))  # one request per tag
    finally:
        proc.kill()
        proc.wait()
    raw_n, raw_wall, raw_cpu = min(raw_runs, key=lambda r: r[2] / r[0])
    ek_n, ek_values, ek_wall, ek_cpu, bad = min(ek_runs, key=lambda r: r[3] / r[0])
    raw_wall_per_req = min(r[1] / r[0] for r in raw_runs)
    ek_wall_per_req = min(r[2] / r[0] for r in ek_runs)
    return {
        "devices": DEVICES,
        "tags_per_scan": naive,
        "requests_per_scan": len(plan),
        "naive_requests_per_scan": naive,
        "raw_requests_per_s": round(1 / raw_wall_per_req, 1),
        "raw_values_per_s_equivalent": round(tags_per_request / raw_wall_per_req, 1),
        "raw_cpu_us_per_request": round(raw_cpu / raw_n * 1e6, 1),
        "edgekit_requests_per_s": round(1 / ek_wall_per_req, 1),
        "edgekit_values_per_s": round(ek_values / ek_wall, 1),
        "edgekit_cpu_us_per_request": round(ek_cpu / ek_n * 1e6, 1),
        "edgekit_bad_values": bad,
        "full_scans_per_s_all_devices": round(1 / ek_wall_per_req / len(plan), 2),
        "wall_per_request_ratio": round(ek_wall_per_req / raw_wall_per_req, 3),
        "cpu_per_request_ratio": round((ek_cpu / ek_n) / (raw_cpu / raw_n), 3),
        "naive_vs_planned_requests_ratio": round(naive / len(plan), 1),
        "raw_per_tag_polling_values_per_s": round(naive_n / naive_wall, 1),
        "edgekit_vs_per_tag_polling_values_ratio": round((ek_values / ek_wall) / (naive_n / naive_wall), 2),
    }


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        asyncio.run(_serve(int(sys.argv[2]), int(sys.argv[3])))
    else:
        harness.main("modbus", measure)
