"""Simulator configuration: the commented sample parses; bad input names the key and what is allowed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edgekit.errors import ConfigError
from edgekit.sim.config import SimConfig, load_sim_config, parse_fault_flag

REPO = Path(__file__).resolve().parents[2]


def test_example_sim_toml_parses_with_overrides_and_fault_schedules() -> None:
    cfg = load_sim_config(REPO / "examples" / "sim.toml")
    assert cfg.machine_ids() == ["m01", "m02", "m03", "m04"]
    assert cfg.machine_config("m01").faults == []
    m2 = cfg.machine_config("m02")
    assert [(f.kind, f.severity, f.onset, f.ramp) for f in m2.faults] == [("outer_race", 0.8, 60.0, 300.0)]
    m3 = cfg.machine_config("m03")
    assert (m3.rpm, m3.bearing, m3.ambient_c, m3.fs) == (2950.0, "6203", -8.5, 25600.0)
    assert [f.kind for f in m3.faults] == ["unbalance", "inner_race"]
    assert cfg.machine_config("m04").gear_teeth == 27


def test_defaults_without_a_file() -> None:
    cfg = load_sim_config(data={})
    assert (cfg.machines, cfg.opcua.port, cfg.modbus.port, cfg.defaults.block) == (3, 4840, 5020, 8192)
    assert cfg.opcua.security.enabled is False


@pytest.mark.parametrize(
    ("data", "path", "words"),
    [
        ({"machinez": 3}, "machinez", ["unknown key", "machines"]),
        ({"machines": 0}, "machines", ["1..247"]),
        ({"speedup": 0}, "speedup", ["> 0"]),
        ({"defaults": {"bearing": "9999"}}, "defaults.bearing", ["6205"]),
        ({"defaults": {"resonance_hz": 20000.0}}, "defaults.resonance_hz", ["fs/2"]),
        ({"machine": [{"id": "m07"}]}, "machine[0].id", ["m01"]),
        ({"machine": [{"id": "m01", "faults": [{"kind": "rust"}]}]}, "machine[0].faults[0].kind", ["outer_race"]),
        ({"machine": [{"id": "m01", "faults": [{"kind": "gear"}]}]}, "machine[0].faults[0].kind", ["gear_teeth"]),
        ({"machine": [{"id": "m01", "faults": [{"kind": "ball", "onset": "soon"}]}]},
         "machine[0].faults[0].onset", ["duration"]),
        ({"modbus": {"decimation": 3}}, "modbus.decimation", ["divide"]),
        ({"opcua": {"security": {"policies": ["Basic128Rsa15"]}}}, "opcua.security.policies[0]", ["Basic256Sha256"]),
        ({"opcua": {"security": {"allow_anonymous": False}}}, "opcua.security.users", ["at least one user"]),
    ],
)
def test_bad_config_names_the_key(data: dict[str, Any], path: str, words: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_sim_config(data=data)
    assert info.value.path == path
    for w in words:
        assert w in info.value.message


def test_fault_flag() -> None:
    mid, f = parse_fault_flag("m02:outer_race:0.8:onset=60:ramp=5m")
    assert (mid, f.kind, f.severity, f.onset, f.ramp) == ("m02", "outer_race", 0.8, 60.0, 300.0)
    cfg = SimConfig().with_fault(mid, f)
    assert cfg.machine_config("m02").faults == [f]
    for bad in ("m02:outer_race", "m02:outer_race:0.8:when=3", "x:unbalance:1"):
        with pytest.raises(ConfigError, match="--fault"):
            parse_fault_flag(bad)


def test_toml_syntax_error_is_a_config_error(tmp_path: Path) -> None:
    p = tmp_path / "sim.toml"
    p.write_text("machines = = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_sim_config(p)


def test_docs_list_every_config_key() -> None:
    from edgekit.config.parse import describe

    text = (REPO / "docs" / "simulator.md").read_text()
    missing = [key for key, *_ in describe(SimConfig) if f"`{key}`" not in text]
    assert not missing, f"docs/simulator.md lacks {missing}"


def test_bearings_come_from_the_pipeline_catalogue() -> None:
    from edgekit.pipeline.bearings import CATALOGUE
    from edgekit.sim.config import bearing_geometry
    from edgekit.sim.physics import BEARINGS

    for name, local in BEARINGS.items():  # the physics' fallback copy agrees with the authority
        assert bearing_geometry(name).bpfo() == pytest.approx(local.bpfo(), rel=1e-12)
        assert bearing_geometry(name).bsf() == pytest.approx(local.bsf(), rel=1e-12)
    other = next(n for n in CATALOGUE if n not in BEARINGS)
    cfg = load_sim_config(data={"machine": [{"id": "m01", "bearing": other}]})
    assert cfg.machine_config("m01").bearing == other


def test_public_api_names() -> None:
    import edgekit.sim as sim

    assert sorted(sim.__all__) == sim.__all__
    for name in sim.__all__:
        assert getattr(sim, name) is not None
    assert sim.PlantSimulator.__name__ == "PlantSimulator"
    import importlib

    module = importlib.import_module("edgekit.sim.spawn")
    assert module.spawn is sim.spawn and module.wait_ready is sim.wait_ready
    assert callable(sim.spawn) and sim.spawn.__name__ == "spawn"  # the function, not the module
