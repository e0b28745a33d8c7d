"""Velocity r.m.s. in mm/s by integration in the frequency domain, and its severity zone.

``V_k = A_k / (j 2 pi f_k)`` for ``lo <= f_k <= hi`` (else 0), read from the Hann-windowed shared
FFT (the window is applied as a 3-tap convolution on the band's bins only) and summed by Parseval
over the one-sided spectrum, divided by the Hann power gain 0.375 (noise bandwidth 1.5 bins × the
coherent gain² 0.25). Input in g (9.80665 m/s²) or m/s²; output in mm/s.
"""

from __future__ import annotations

import logging

import numpy as np

from ..errors import PipelineError
from .base import F32, Spectrum, Stage
from .spectral import bins_in
from .zones import PROFILES, ZoneProfile, classify

__all__ = ["G", "UNIT_TO_MS2", "Velocity"]

log = logging.getLogger(__name__)

G = 9.80665
UNIT_TO_MS2 = {"g": G, "m/s2": 1.0, "m/s²": 1.0, "m/s^2": 1.0}
HANN_POWER_GAIN = 0.375


class Velocity(Stage):
    """``velocity_rms_mm_s`` and ``zone`` (0=A … 3=D as float)."""

    def __init__(
        self,
        band_hz: tuple[float, float] = (10.0, 1000.0),
        units: str = "g",
        zone_profile: ZoneProfile = PROFILES["iso10816-3-group2-rigid"],
    ) -> None:
        self.band_hz = band_hz
        self.units = units
        self.zone_profile = zone_profile

    def feature_names(self) -> tuple[str, ...]:
        return ("velocity_rms_mm_s", "zone")

    def _plan(self, fs: float, n: int) -> None:
        if self.units not in UNIT_TO_MS2:
            raise PipelineError(f"Velocity units {self.units!r} not supported; use one of g, m/s2")
        lo, hi = self.band_hz
        k0, k1 = bins_in(lo, hi, fs, n)
        if k1 < k0:
            raise PipelineError(f"velocity band {lo}-{hi} Hz holds no bin at fs={fs} Hz, n={n}")
        if hi > fs / 2:
            log.warning("velocity band %s-%s Hz exceeds Nyquist at fs=%s Hz; integrating up to %.1f Hz", lo, hi, fs, k1 * fs / n)
        f = np.arange(k0, k1 + 1) * (fs / n)
        # mm/s squared per |X_w|^2 of an acceleration in m/s^2: one-sided Parseval, Hann power gain.
        self.weights_ = (2.0 / (n * n * HANN_POWER_GAIN) * (1e3 / (2 * np.pi * f)) ** 2).astype(np.float32)
        self.k0_, self.k1_ = k0, k1

    def _transform(self, s: Spectrum, speed_hz: float | None, unit_scale: F32 | None) -> F32:
        S = s.X[:, self.k0_ - 1 : self.k1_ + 2]
        Xw = S[:, 1:-1] - 0.5 * (S[:, :-2] + S[:, 2:])  # Hann as a 3-tap convolution (gain folded in)
        p = np.square(Xw.real) + np.square(Xw.imag)
        v2 = p @ (self.weights_ * 0.25)
        scale = np.float32(UNIT_TO_MS2[self.units]) if unit_scale is None else unit_scale
        v = np.sqrt(v2) * scale
        out = np.empty((s.x.shape[0], 2), dtype=np.float32)
        out[:, 0] = v
        out[:, 1] = classify(v, self.zone_profile)
        return out
