"""Running-speed harmonics 1×…N× and the order spectrum, read from the shared FFT.

For harmonic/order ``m`` the amplitude is the largest flat-top line amplitude (peak, input unit)
within ``± search_bins`` of ``m × f_r``, the flat-top window applied as a 9-tap convolution at
those bins only (< 0.1 dB scalloping). ``f_r`` is the block's shaft speed, else the ``rpm``
parameter. A line above Nyquist reads NaN.

The order spectrum (``order_<m>_amp``) assumes the speed is constant within a block: resampling onto
a uniform shaft-angle grid is then a rescaling of the frequency axis, and order ``m`` is read at
``m × f_r`` exactly (search 0 bins). Order tracking through run-ups with a tacho is not implemented.
"""

from __future__ import annotations

import numpy as np

from ..errors import PipelineError
from .base import F32, Spectrum, Stage
from .spectral import FLATTOP, WindowGather, apply_gather, gather_plan

__all__ = ["Harmonics", "OrderSpectrum", "speed_or_fallback"]


def speed_or_fallback(stage: str, speed_hz: float | None, rpm: float) -> float:
    if speed_hz is not None and speed_hz > 0:
        return float(speed_hz)
    if rpm > 0:
        return rpm / 60.0
    raise PipelineError(f"{stage} needs a shaft speed: the block carries none and rpm is 0")


class Harmonics(Stage):
    """``h1x_amp`` … ``h<N>x_amp``."""

    prefix = "h"
    suffix = "x_amp"

    def __init__(self, n: int = 4, search_bins: int = 2, rpm: float = 0.0) -> None:
        self.n = n
        self.search_bins = search_bins
        self.rpm = rpm

    def feature_names(self) -> tuple[str, ...]:
        return tuple(f"{self.prefix}{m}{self.suffix}" for m in range(1, self.n + 1))

    def _plan(self, fs: float, n: int) -> None:
        self.offsets_ = np.arange(-self.search_bins, self.search_bins + 1)
        self.bins_: dict[float, tuple[WindowGather, np.ndarray]] = {}  # read plan per shaft speed

    def _bins(self, fr: float, fs: float, n: int) -> tuple[WindowGather, np.ndarray]:
        hit = self.bins_.get(fr)
        if hit is None:
            m = np.arange(1, self.n + 1)
            centre = np.rint(m * fr * n / fs).astype(np.intp)
            k = np.clip(centre[:, None] + self.offsets_, 1, n // 2)
            hit = (gather_plan(n, k, FLATTOP), m * fr >= fs / 2)
            if len(self.bins_) >= 16:  # a varying block speed: keep the cache small
                self.bins_.clear()
            self.bins_[fr] = hit
        return hit

    def _transform(self, s: Spectrum, speed_hz: float | None, unit_scale: F32 | None) -> F32:
        fr = speed_or_fallback(type(self).__name__, speed_hz, self.rpm)
        g, above = self._bins(fr, s.fs, s.n_samples)
        amp = apply_gather(s.X, g).max(axis=-1)
        amp[:, above] = np.nan
        return amp


class OrderSpectrum(Harmonics):
    """``order_1_amp`` … ``order_<N>_amp`` (constant speed within a block)."""

    prefix = "order_"
    suffix = "_amp"

    def __init__(self, n: int = 4, search_bins: int = 0, rpm: float = 0.0) -> None:
        super().__init__(n, search_bins, rpm)
