"""Configuration: bad-config case folders (config.toml + the error it must give), the sample, profiles."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from edgekit.config.parse import parse
from edgekit.connectors.opcua import OpcUaConnectionConfig
from edgekit.connectors.opcua.profile import expand
from edgekit.errors import ConfigError
from edgekit.resources import profiles_dir

CASES = Path(__file__).parent / "cases"
SAMPLE = Path(__file__).resolve().parents[2] / "edgekit" / "connectors" / "opcua" / "sample.toml"


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir()))
def test_bad_config_case(case: str) -> None:
    data = tomllib.loads((CASES / case / "config.toml").read_text())
    expected = (CASES / case / "error.txt").read_text().strip()
    with pytest.raises(ConfigError) as info:
        parse(OpcUaConnectionConfig, data["opcua"][0], "opcua[0]")
    assert expected in str(info.value)


def test_sample_config_parses() -> None:
    data = tomllib.loads(SAMPLE.read_text())
    cfg = parse(OpcUaConnectionConfig, data["opcua"][0], "opcua[0]")
    exp = expand(cfg)
    assert len(exp.nodes) == 2 * 10 + 2 and len(exp.waveforms) == 2 + 1
    assert exp.nodes[0].namespace == "" and exp.nodes[2].namespace == "urn:edgekit:sim"


@pytest.mark.parametrize("profile", sorted(p.stem for p in (profiles_dir() / "opcua").glob("*.toml")))
def test_every_shipped_profile_expands(profile: str) -> None:
    cfg = parse(OpcUaConnectionConfig, {"name": "p", "endpoint": "opc.tcp://h:1/x", "profile": profile,
                                        "machines": ["Machine07"]})
    exp = expand(cfg)
    assert exp.nodes and all("{machine}" not in n.node_id + n.browse_path + n.device for n in exp.nodes)
    assert all(w.asset == "Machine07" for w in exp.waveforms)


def test_machines_must_match_the_template() -> None:
    with pytest.raises(ConfigError, match="machines only make sense with a profile"):
        parse(OpcUaConnectionConfig, {"name": "p", "endpoint": "opc.tcp://h:1/x", "machines": ["M"],
                                      "nodes": [{"tag": "a", "node_id": "i=1"}]})


def test_build_gives_a_runtime_connector() -> None:
    from edgekit.connectors.opcua import build
    from edgekit.runtime.interfaces import Connector

    cfg = parse(OpcUaConnectionConfig, {"name": "p", "endpoint": "opc.tcp://h:1/x", "profile": "edgekit-sim",
                                        "machines": ["Machine01"]})
    connector = build(cfg)
    assert isinstance(connector, Connector) and connector.name == "p"
    health = connector.health()
    assert {"state", "last_good_read", "errors", "subscriptions"} <= set(health)
    assert health["state"] == "init" and health["subscriptions"] == 0
