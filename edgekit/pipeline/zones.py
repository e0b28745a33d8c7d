"""Vibration severity zones: named threshold profiles (with provenance) and vectorised classification.

A :class:`ZoneProfile` holds the three boundaries A/B, B/C, C/D of velocity r.m.s. in mm/s. A value
``v`` is in zone A (0) if ``v < A/B``, B (1) if ``A/B <= v < B/C``, C (2) if ``B/C <= v < C/D``,
else D (3): a value exactly on a boundary belongs to the worse zone. The built-in tables are public
transcriptions of ISO 10816-3 (2009, superseded by ISO 20816-3:2022) annex A and the ISO 10816-1
(1995) annex B example classes; they are *evaluation aids*, and a result is never "ISO compliant".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..errors import ConfigError

__all__ = ["PROFILES", "ZONE_LETTERS", "ZoneProfile", "classify", "resolve"]

ZONE_LETTERS = ("A", "B", "C", "D")


@dataclass(frozen=True, slots=True)
class ZoneProfile:
    name: str
    bounds_mm_s: tuple[float, float, float]
    provenance: str

    def __post_init__(self) -> None:
        a, b, c = self.bounds_mm_s
        if not 0 < a < b < c:
            raise ConfigError(self.name, f"zone bounds {self.bounds_mm_s!r} must be 0 < A/B < B/C < C/D")

    def classify(self, velocity_mm_s: npt.ArrayLike) -> npt.NDArray[np.float32]:
        return classify(velocity_mm_s, self)


_I3 = "ISO 10816-3:2009 annex A as transcribed in public sources (superseded by ISO 20816-3:2022)"
_I1 = "ISO 10816-1:1995 annex B example (as transcribed in public sources)"

PROFILES: dict[str, ZoneProfile] = {
    p.name: p
    for p in (
        ZoneProfile("iso10816-3-group1-rigid", (2.3, 4.5, 7.1), _I3 + ", group 1 (> 300 kW), rigid"),
        ZoneProfile("iso10816-3-group1-flexible", (3.5, 7.1, 11.0), _I3 + ", group 1 (> 300 kW), flexible"),
        ZoneProfile("iso10816-3-group2-rigid", (1.4, 2.8, 4.5), _I3 + ", group 2 (15-300 kW), rigid"),
        ZoneProfile("iso10816-3-group2-flexible", (2.3, 4.5, 7.1), _I3 + ", group 2 (15-300 kW), flexible"),
        ZoneProfile("iso10816-1-class-i", (0.71, 1.8, 4.5), _I1 + ", class I (small machines)"),
        ZoneProfile("iso10816-1-class-ii", (1.12, 2.8, 7.1), _I1 + ", class II (medium machines)"),
        ZoneProfile("iso10816-1-class-iii", (1.8, 4.5, 11.2), _I1 + ", class III (large, rigid)"),
        ZoneProfile("iso10816-1-class-iv", (2.8, 7.1, 18.0), _I1 + ", class IV (large, soft)"),
    )
}


def resolve(name: str, user: Mapping[str, ZoneProfile] | None = None) -> ZoneProfile:
    """The profile called ``name``: a user table first, then the built-ins."""
    if user and name in user:
        return user[name]
    if name in PROFILES:
        return PROFILES[name]
    known = sorted({*PROFILES, *(user or {})})
    raise ConfigError("zone_profile", f"{name!r} is not a zone profile; known: {', '.join(known)}")


def classify(velocity_mm_s: npt.ArrayLike, profile: ZoneProfile) -> npt.NDArray[np.float32]:
    """Zone index (0=A … 3=D) as float32 for every value; NaN stays NaN."""
    v = np.asarray(velocity_mm_s, dtype=np.float32)
    bounds = np.asarray(profile.bounds_mm_s, dtype=np.float32)
    zone = np.searchsorted(bounds, v, side="right").astype(np.float32)
    zone[np.isnan(v)] = np.nan
    return zone
