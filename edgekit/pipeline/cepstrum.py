"""Real cepstrum of the shared FFT: ``c = irfft(log|X|)``; harmonic and sideband families show as
peaks at the quefrency of their spacing. Features: ``cep_peak_quefrency_s`` (the quefrency, in s,
of the largest cepstral value for spacings within ``range_hz``, i.e. quefrencies 1/hi … 1/lo) and
``cep_peak_amp`` (that value; unitless, natural-log magnitude).
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft

from ..errors import PipelineError
from .base import F32, Spectrum, Stage

__all__ = ["Cepstrum"]


class Cepstrum(Stage):
    def __init__(self, range_hz: tuple[float, float] = (5.0, 500.0)) -> None:
        self.range_hz = range_hz

    def feature_names(self) -> tuple[str, ...]:
        return ("cep_peak_quefrency_s", "cep_peak_amp")

    def _plan(self, fs: float, n: int) -> None:
        q0 = max(1, int(np.ceil(fs / self.range_hz[1])))
        q1 = min(n // 2, int(np.floor(fs / self.range_hz[0])))
        if q1 < q0:
            raise PipelineError(f"cepstrum range {self.range_hz} Hz holds no quefrency at fs={fs} Hz, n={n}")
        self.q_ = (q0, q1)

    def _transform(self, s: Spectrum, speed_hz: float | None, unit_scale: F32 | None) -> F32:
        mag = np.abs(s.X)
        floor = mag.mean(axis=1, keepdims=True) * np.float32(1e-6) + np.float32(1e-30)
        logmag = np.log(mag + floor)
        c = sfft.irfft(logmag, n=s.n_samples, axis=-1, workers=1)
        q0, q1 = self.q_
        seg = c[:, q0 : q1 + 1]
        k = np.argmax(seg, axis=1)
        out = np.empty((c.shape[0], 2), dtype=np.float32)
        out[:, 0] = (k + q0) / s.fs
        out[:, 1] = np.take_along_axis(seg, k[:, None], axis=1)[:, 0]
        return out
