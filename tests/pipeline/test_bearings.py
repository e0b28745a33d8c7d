"""Bearing catalogue and defect multipliers against the published check values (vibration.md)."""

from __future__ import annotations

import math

import pytest

from edgekit.errors import ConfigError
from edgekit.pipeline import CATALOGUE, BearingGeometry, defect_multipliers, lookup
from edgekit.pipeline.zones import PROFILES, ZoneProfile, resolve


@pytest.mark.parametrize(
    ("name", "ftf", "bpfo", "bpfi", "bsf"),
    [("6205", 0.3983, 3.5848, 5.4152, 2.3567), ("6203", 0.3817, 3.0530, 4.9469, 1.9937)],
)
def test_check_values(name: str, ftf: float, bpfo: float, bpfi: float, bsf: float) -> None:
    m = lookup(name).multipliers()
    assert m.ftf == pytest.approx(ftf, abs=2e-4)
    assert m.bpfo == pytest.approx(bpfo, abs=2e-4)
    assert m.bpfi == pytest.approx(bpfi, abs=2e-4)
    assert m.bsf == pytest.approx(bsf, abs=2e-4)


def test_identities_for_every_catalogue_bearing() -> None:
    for g in CATALOGUE.values():
        m = defect_multipliers(g)
        assert m.bpfo + m.bpfi == pytest.approx(g.n_elements)  # n/2 (1-r) + n/2 (1+r)
        assert m.bpfo == pytest.approx(g.n_elements * m.ftf)
        assert 0.3 < m.ftf < 0.5 and g.provenance


def test_custom_geometry_and_contact_angle() -> None:
    g = BearingGeometry("7205", 12, 7.9, 38.5, 40.0)
    r = 7.9 / 38.5 * math.cos(math.radians(40))
    assert g.multipliers().bpfi == pytest.approx(6 * (1 + r))
    with pytest.raises(ConfigError, match="n_elements"):
        BearingGeometry("x", 2, 1.0, 2.0)
    with pytest.raises(ConfigError, match="element_diameter"):
        BearingGeometry("x", 8, 3.0, 2.0)


def test_lookup_spellings_and_errors() -> None:
    assert lookup("6205-2RS") is lookup("SKF 6205") is CATALOGUE["6205"]
    with pytest.raises(ConfigError, match="not in the catalogue; known: 6203, 6204"):
        lookup("22210")


def test_zone_profiles_resolve_with_user_tables_first() -> None:
    user = {"iso10816-3-group2-rigid": ZoneProfile("iso10816-3-group2-rigid", (1.0, 2.0, 3.0), "site override")}
    assert resolve("iso10816-3-group2-rigid", user).provenance == "site override"
    assert resolve("iso10816-1-class-ii") is PROFILES["iso10816-1-class-ii"]
    with pytest.raises(ConfigError, match="known: iso10816-1-class-i"):
        resolve("iso-compliant")
    with pytest.raises(ConfigError, match="must be 0 < A/B < B/C < C/D"):
        ZoneProfile("bad", (2.0, 1.0, 3.0), "x")
