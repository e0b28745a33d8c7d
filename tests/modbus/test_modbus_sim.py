"""The ``edgekit-sim`` profile against the real simulator (edgekit.sim): values, bits, strings,
waveform blocks and a setpoint write round trip."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest
import pytest_asyncio
from modbus_helpers import CollectSink, Running

from edgekit.config.parse import parse
from edgekit.connectors import modbus
from edgekit.connectors.modbus.config import ModbusConnectionConfig
from edgekit.types import Quality

plant_mod = pytest.importorskip("edgekit.sim.plant")
sim_config = pytest.importorskip("edgekit.sim.config")


@pytest_asyncio.fixture
async def plant() -> AsyncIterator[object]:
    cfg = sim_config.load_sim_config(data={"machines": 2, "seed": 3, "speedup": 2.0, "opcua": {"enabled": False},
                                           "modbus": {"port": 0}})
    async with plant_mod.PlantSimulator(cfg) as sim:
        await sim.machines["m01"].wait_block(1)
        yield sim


async def test_sim_profile_reads_every_tag_and_waveform(plant: object) -> None:
    port = plant.modbus_port  # type: ignore[attr-defined]
    devices = [{"name": f"m0{i}", "unit_id": i, "profile": "edgekit-sim",
                "poll": {"default": "200ms", "slow": "1s", "wave": "100ms"}} for i in (1, 2)]
    cfg = parse(ModbusConnectionConfig, {"name": "sim", "port": port, "timeout": "1s", "devices": devices}, "modbus[0]")
    connector = modbus.build(cfg)
    sink = CollectSink()

    def merged(dev: str) -> dict[str, tuple[float, int, str, str | None]]:
        out: dict[str, tuple[float, int, str, str | None]] = {}
        for b in sink.of(dev):
            for i, t in enumerate(b.tags):
                out[t] = (float(b.values[i]), int(b.quality[i]), b.reasons[i] if b.reasons else "",
                          b.text[i] if b.text else None)
        return out

    async with Running(connector, sink):
        await sink.wait_for(lambda: all(len(merged(d)) == 17 for d in ("m01", "m02"))
                            and {b.asset for b in sink.blocks} == {"m01", "m02"}, timeout=20)
        before = {d: merged(d) for d in ("m01", "m02")}
        await connector.write("m01", "setpoint_rpm", 1234)
        await connector.write("m01", "remote_enable", True)
        n = len(sink.of("m01"))
        await sink.wait_for(lambda: len(sink.of("m01")) > n + 2 and merged("m01")["setpoint_rpm"][0] == 1234)
    health = connector.health()
    assert health["errors"] == {}, health
    for dev, unit in (("m01", 1), ("m02", 2)):
        got = before[dev]
        bad = {k: v[2] for k, v in got.items() if v[1] != Quality.GOOD}
        assert bad == {}
        assert got["name"][3] == f"MACHINE-{unit:02d}"
        assert got["speed_rpm"][0] == pytest.approx(1480, rel=0.05)
        assert 0 < got["bearing_temp_c"][0] < 150
        assert -40 < got["ambient_c"][0] < 60
        status = int(got["status"][0])
        assert got["status_running"][0] == status & 1 and got["status_fault_active"][0] == (status >> 1) & 1
        assert got["running"][0] in (0.0, 1.0) and got["fault_active"][0] in (0.0, 1.0)
        assert got["total_rev"][0] > 0 and got["energy_wh"][0] >= 0 and got["vib_rms_g"][0] > 0
    assert merged("m01")["remote_enable"][0] == 1.0
    blocks = [b for b in sink.blocks if b.asset == "m02"]  # m01's speed follows the new setpoint
    b = blocks[-1]
    assert b.channels == ("ch0", "ch1") and b.units == ("g", "g") and b.data.shape == (2, 1024)
    assert b.fs == pytest.approx(3200.0)
    assert b.speed_hz == pytest.approx(1480 / 60, rel=0.05)
    assert 0 < float(np.sqrt(np.mean(b.data[0] ** 2))) < 16
    assert all(x.seq > y.seq for x, y in zip(blocks[1:], blocks[:-1], strict=False))
