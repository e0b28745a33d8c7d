"""Rolling-bearing geometry and defect frequencies (FTF, BPFO, BPFI, BSF) as multiples of shaft speed.

A :class:`BearingGeometry` holds the number of rolling elements ``n``, element diameter ``d``, pitch
diameter ``D`` (same length unit) and contact angle ``phi``. :func:`defect_multipliers` gives the
classical kinematic frequencies per Hz of shaft speed (vibration.md):

    FTF  = 1/2 (1 - d/D cos phi)         BPFO = n/2 (1 - d/D cos phi)
    BPFI = n/2 (1 + d/D cos phi)         BSF  = D/(2d) (1 - (d/D cos phi)^2)

The catalogue carries provenance per entry. 6205-2RS and 6203-2RS are the CWRU test-rig bearings
(geometry from the CWRU data center); the others use the bore/outside-diameter mean as pitch diameter
and common ball sizes — check them against your manufacturer's data before trusting absolute lines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["CATALOGUE", "BearingGeometry", "DefectMultipliers", "defect_multipliers", "lookup"]


@dataclass(frozen=True, slots=True)
class DefectMultipliers:
    """Defect frequencies per Hz of shaft speed (multiply by ``f_r`` to get Hz)."""

    ftf: float
    bpfo: float
    bpfi: float
    bsf: float

    def as_dict(self) -> dict[str, float]:
        return {"ftf": self.ftf, "bpfo": self.bpfo, "bpfi": self.bpfi, "bsf": self.bsf}


@dataclass(frozen=True, slots=True)
class BearingGeometry:
    """Geometry of one rolling bearing. Diameters in any one length unit; angle in degrees."""

    name: str
    n_elements: int
    element_diameter: float
    pitch_diameter: float
    contact_angle_deg: float = 0.0
    provenance: str = "user supplied"

    def __post_init__(self) -> None:
        if self.n_elements < 3:
            raise ConfigError("n_elements", f"{self.n_elements!r} must be >= 3")
        if not 0 < self.element_diameter < self.pitch_diameter:
            raise ConfigError(
                "element_diameter",
                f"{self.element_diameter!r} must be > 0 and smaller than pitch_diameter {self.pitch_diameter!r}",
            )
        if not 0 <= self.contact_angle_deg < 90:
            raise ConfigError("contact_angle_deg", f"{self.contact_angle_deg!r} must be in [0, 90)")

    def multipliers(self) -> DefectMultipliers:
        return defect_multipliers(self)


def defect_multipliers(g: BearingGeometry) -> DefectMultipliers:
    """FTF, BPFO, BPFI and BSF as multiples of shaft speed for geometry ``g``."""
    r = g.element_diameter / g.pitch_diameter * math.cos(math.radians(g.contact_angle_deg))
    n = g.n_elements
    return DefectMultipliers(
        ftf=0.5 * (1 - r),
        bpfo=n / 2 * (1 - r),
        bpfi=n / 2 * (1 + r),
        bsf=g.pitch_diameter / (2 * g.element_diameter) * (1 - r * r),
    )


_CWRU = "CWRU Bearing Data Center test-rig specification (inches)"
_APPROX = "approximate: pitch = (bore + OD)/2, common ball size (mm); verify with the manufacturer"

CATALOGUE: dict[str, BearingGeometry] = {
    g.name: g
    for g in (
        BearingGeometry("6205", 9, 0.3126, 1.537, 0.0, _CWRU + ", SKF 6205-2RS JEM drive end"),
        BearingGeometry("6203", 8, 0.2656, 1.122, 0.0, _CWRU + ", SKF 6203-2RS JEM fan end"),
        BearingGeometry("6204", 8, 7.938, 33.5, 0.0, _APPROX),
        BearingGeometry("6206", 9, 9.525, 46.0, 0.0, _APPROX),
        BearingGeometry("6305", 8, 10.319, 43.5, 0.0, _APPROX),
        BearingGeometry("6308", 8, 15.081, 65.0, 0.0, _APPROX),
    )
}


def lookup(name: str) -> BearingGeometry:
    """A catalogue bearing by designation; ``"6205-2RS"`` and ``"SKF 6205"`` are accepted too."""
    key = name.strip().upper().removeprefix("SKF").strip().split("-")[0]
    try:
        return CATALOGUE[key]
    except KeyError:
        raise ConfigError(
            "bearing", f"{name!r} is not in the catalogue; known: {', '.join(sorted(CATALOGUE))} "
            "(or give [pipeline.bearing_geometry])"
        ) from None
