"""Read planner: 200 tags scattered over 2,000 registers — requests per scan against the naive
per-tag count, greedy == optimal (dynamic programming), and refused addresses learned live."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from modbus_helpers import CollectSink, Running, start_tcp_server

from edgekit.config.parse import parse
from edgekit.connectors import modbus
from edgekit.connectors.modbus.config import ModbusConnectionConfig
from edgekit.connectors.modbus.device import ResolvedTag, resolve_device
from edgekit.connectors.modbus.planner import ReadPlanner, coalesce
from edgekit.types import Quality

KINDS = {"uint16": 1, "int16": 1, "float32": 2, "uint32": 2, "int64": 4, "float64": 4}


def scattered_tags(seed: int = 7, n: int = 200, span: int = 2000) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    slots = np.sort(rng.choice(span // 4, size=n, replace=False)) * 4
    kinds = rng.choice(list(KINDS), size=n)
    return [{"name": f"t{i:03d}", "address": int(a), "table": "holding_register", "type": str(k)}
            for i, (a, k) in enumerate(zip(slots, kinds, strict=True))]


def cfg_for(tags: list[dict[str, Any]], port: int = 502, **kw: Any) -> ModbusConnectionConfig:
    return parse(ModbusConnectionConfig, {"name": "p", "port": port, "timeout": "500ms", "retries": 0,
                                          "devices": [{"name": "d", "tags": tags, "poll": {"default": "50ms"}}], **kw},
                 "modbus[0]")


def optimal_count(tags: list[ResolvedTag], limit: int, max_gap: int) -> int:
    """Fewest requests covering sorted tags in consecutive runs (span <= limit, gaps <= max_gap)."""
    ts = sorted(tags, key=lambda t: t.address)
    best = [0] + [math.inf] * len(ts)
    for j in range(1, len(ts) + 1):
        end = ts[j - 1].end
        for i in range(j, 0, -1):  # run ts[i-1 .. j-1]
            if i < j and ts[i].address - ts[i - 1].end > max_gap:
                break
            end = max(end, ts[i - 1].end)
            if end - ts[i - 1].address > limit:
                break
            best[j] = min(best[j], best[i - 1] + 1)
    return int(best[-1])


@pytest.mark.parametrize("max_gap", [0, 4, 16, 64])
def test_200_tags_over_2000_registers_request_counts(max_gap: int) -> None:
    cfg = cfg_for(scattered_tags(), max_gap=max_gap)
    dev = resolve_device(cfg.devices[0], max_registers=125, max_bits=2000)
    planner = ReadPlanner(dev, max_gap=max_gap)
    reqs = planner.requests("default")
    naive = len(dev.tags)
    assert naive == 200
    # every tag read exactly once, every request within the protocol limit and max_gap
    assert sorted(t.name for r in reqs for t in r.tags) == sorted(t.name for t in dev.tags)
    assert all(1 <= r.count <= 125 for r in reqs)
    assert len(reqs) == optimal_count(list(dev.tags), 125, max_gap)
    if max_gap >= 16:
        assert len(reqs) <= naive // 5
    print(f"max_gap={max_gap}: {len(reqs)} requests per scan (naive per-tag: {naive})")


def test_planner_respects_barriers_and_limits() -> None:
    def t(a: int, w: int = 1) -> ResolvedTag:
        return ResolvedTag(f"t{a}", "holding_register", a, "uint16" if w == 1 else "float32", w, 0, "ABCD",
                           1.0, 0.0, "", 0.0, "default", False)
    tags = [t(0), t(2), t(10), t(200, 2), t(323, 2)]
    assert [(r.start, r.count) for r in coalesce("holding_register", tags, limit=125, max_gap=16)] == \
        [(0, 11), (200, 2), (323, 2)]
    assert [(r.start, r.count) for r in coalesce("holding_register", tags, limit=125, max_gap=200)] == \
        [(0, 125)[:1] + (11,), (200, 125)]
    assert [(r.start, r.count) for r in coalesce("holding_register", tags, limit=125, max_gap=16,
                                                 barriers=[(5, 6)])] == [(0, 3), (10, 1), (200, 2), (323, 2)]


async def test_refused_addresses_are_learned_live(port: int) -> None:
    tags = scattered_tags()
    cfg = cfg_for(tags, port)
    dev = resolve_device(cfg.devices[0], max_registers=125, max_bits=2000)
    planner = ReadPlanner(dev)
    used = {a for t in dev.tags for a in range(t.address, t.end)}
    # holes: unused registers that the initial plan reads across (so the device refuses merged reads)
    spanned = sorted({a for r in planner.requests("default") for a in range(r.start, r.end)} - used)
    rng = np.random.default_rng(1)
    holes = set(rng.choice(spanned, size=10, replace=False).tolist())
    regs = {a: a & 0xFFFF for a in range(2000) if a not in holes}
    server = await start_tcp_server({1: {"holding_register": regs}}, port)
    connector = modbus.build(cfg)
    sink = CollectSink()
    try:
        async with Running(connector, sink):
            await sink.wait_for(lambda: len(sink.of("d")) >= 2, timeout=20)
            learned = connector.devices["d"].planner
            steady = learned.total_requests()
            r0, n0 = connector.link.requests, len(sink.of("d"))
            await sink.wait_for(lambda: len(sink.of("d")) >= n0 + 5)
            r1, n1 = connector.link.requests, len(sink.of("d"))
    finally:
        await server.shutdown()
    refused = learned.refused_ranges()["holding_register"]
    assert all(any(lo <= h < hi for lo, hi in refused) for h in holes)  # every hole found
    assert not any(lo <= a < hi for lo, hi in refused for a in used)  # no tag address refused
    assert all(q == Quality.GOOD for q in sink.of("d")[-1].quality)
    # after learning: exactly the planned requests per scan, no more bisecting
    assert (r1 - r0) == steady * (n1 - n0)
    print(f"planned {len(planner.requests('default'))} -> {steady} requests per scan after learning "
          f"{len(refused)} refused ranges (naive 200)")
