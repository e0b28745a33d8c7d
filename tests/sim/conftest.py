"""Simulator test fixtures: one running plant for the whole session (servers take 2-6 s to start)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from edgekit.sim.config import load_sim_config
from edgekit.sim.plant import PlantSimulator

PLANT_CFG = {
    "machines": 3,
    "seed": 11,
    "speedup": 4.0,
    "opcua": {"port": 0},
    "modbus": {"port": 0},
    "machine": [
        {"id": "m02", "ambient_c": -12.5, "faults": [{"kind": "outer_race", "severity": 0.8}]},
        {"id": "m03", "rpm": 2950.0, "bearing": "6203", "faults": [{"kind": "unbalance", "severity": 0.4}]},
    ],
}


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def plant() -> AsyncIterator[PlantSimulator]:
    async with PlantSimulator(load_sim_config(data=PLANT_CFG)) as sim:
        await sim.machines["m01"].wait_block(1)
        yield sim
