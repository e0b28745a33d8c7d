"""Simulator capacity: 50 machines × 2 channels × 25.6 kHz served from one process.

Runs a :class:`~edgekit.sim.plant.PlantSimulator` (OPC UA + Modbus, no clients attached) for a few
seconds of real time and reports CPU seconds per machine per second of real time
(``time.process_time``, all threads) and whether it kept real time (no skipped blocks, lag below
one block period). Keeping real time needs ``cpu_share_of_one_core`` of a core *available*: on a
host whose load average exceeds its cores the process is starved and skips blocks (reported, with the
load average). Baseline, measured in the same run: generating the same blocks with
``MachineSignal.block`` alone (no servers) — ``serve_vs_physics_ratio`` is the serving overhead.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from _harness import main

from edgekit.sim.config import load_sim_config
from edgekit.sim.physics import FaultSpec, MachineSignal
from edgekit.sim.plant import PlantSimulator

MACHINES = int(os.environ.get("EDGEKIT_SIM_BENCH_MACHINES", "50"))  # override to probe other sizes


def _physics_only(seconds_of_signal: float) -> float:
    """CPU seconds per machine-second to generate blocks (half the machines carry a bearing fault)."""
    sigs = [MachineSignal(seed=i, faults=[FaultSpec("outer_race", 0.5)] if i % 2 else []) for i in range(4)]
    blocks = max(1, int(seconds_of_signal / sigs[0].block_s))
    t0 = time.process_time()
    for s in sigs:
        for k in range(blocks):
            s.block(k)
    return (time.process_time() - t0) / (len(sigs) * blocks * sigs[0].block_s)


async def _serve(seconds: float) -> dict[str, Any]:
    faults = [{"id": f"m{i:02d}", "faults": [{"kind": "outer_race", "severity": 0.5}]} for i in range(2, MACHINES + 1, 2)]
    cfg = load_sim_config(data={"machines": MACHINES, "opcua": {"port": 0}, "modbus": {"port": 0}, "machine": faults})
    t_start = time.perf_counter()
    async with PlantSimulator(cfg) as sim:
        startup = time.perf_counter() - t_start
        await asyncio.sleep(0.5)  # let the first round settle
        p0, w0, n0 = time.process_time(), time.perf_counter(), sim.stats.published
        c0, u0 = sim.stats.compute_s, sim.stats.publish_s
        lag0 = sim.stats.max_lag_s
        await asyncio.sleep(seconds)
        cpu, wall, published = time.process_time() - p0, time.perf_counter() - w0, sim.stats.published - n0
        block_s = sim.machines["m01"].block_s
        compute, publish = sim.stats.compute_s - c0, sim.stats.publish_s - u0
        stats = sim.stats
    expected = MACHINES * wall / block_s
    return {
        "machines": MACHINES,
        "startup_s": round(startup, 2),
        "served_s": round(wall, 2),
        "blocks_published": published,
        "blocks_expected": round(expected, 1),
        "blocks_skipped": stats.skipped,
        "max_lag_s": round(max(stats.max_lag_s, lag0), 4),
        "cpu_s_per_machine_s": cpu / (MACHINES * wall),
        "cpu_share_of_one_core": cpu / wall,
        "wall_share_computing": compute / wall,  # worker thread: physics + process model
        "wall_share_publishing": publish / wall,  # event loop: OPC UA writes, decimation, Modbus registers
        "kept_real_time": bool(stats.skipped == 0 and stats.max_lag_s < block_s and published >= 0.95 * expected),
    }


def measure(quick: bool) -> dict[str, Any]:
    seconds = 3.0 if quick else 20.0
    load_before = os.getloadavg()[0]
    figures = asyncio.run(_serve(seconds))
    figures["loadavg_1min"] = round(max(load_before, os.getloadavg()[0]), 2)  # other work on this host
    physics = _physics_only(2.0 if quick else 10.0)
    figures["physics_only_cpu_s_per_machine_s"] = physics
    figures["serve_vs_physics_ratio"] = figures["cpu_s_per_machine_s"] / physics
    return figures


if __name__ == "__main__":
    main("sim_capacity", measure)
