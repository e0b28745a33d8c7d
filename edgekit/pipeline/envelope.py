"""Envelope spectrum (rolling-bearing demodulation) computed from the shared block FFT.

Band-pass and analytic signal share one step: the bins of the band ``[lo, hi]`` are copied, doubled,
to the start of a shorter buffer (a frequency shift, which leaves ``|z|`` unchanged) and inverse
transformed. The buffer length ``M = next_fast_len(band bins + max_env_hz/Δf)`` keeps the (squared)
envelope spectrum free of aliasing up to ``max_env_hz`` while costing far less than a full-length
inverse FFT. Envelope ``|z|`` (or ``|z|²`` with ``squared=True``), mean removed (DC bin zeroed),
spectrum with a Hann window (3-tap in frequency), amplitudes as one-sided peak values. Δf = fs/N.

With ``kurtogram_levels > 0`` the band is chosen per channel and block instead: among bands of
width fs/4, fs/6, fs/8, fs/12, … (binary and 1/3 levels as in Antoni's fast kurtogram, computed as
batched inverse FFTs of the shared FFT's bins), the one whose analytic-signal envelope has the
largest kurtosis ``<|z|^4>/<|z|^2>^2 - 2``. Candidates start at or above ``peak_range_hz[1]`` and are
at least twice as wide (so they hold the sidebands of every line searched).

Features: ``env_peak_hz`` and ``env_peak_amp`` (strongest line in ``peak_range_hz``, frequency refined
by parabolic interpolation), and with a bearing geometry ``env_bpfo_amp``, ``env_bpfi_amp``,
``env_bsf_amp``, ``env_ftf_amp``: root-sum-square over harmonics ``h = 1..bearing_harmonics`` of the
largest amplitude within ``h·f_d·(1 ± slip_tolerance)`` (at least ±1 bin). Harmonics above the
envelope range ``max_env_hz`` are left out of the sum; the value is NaN when the fundamental is, or
when neither the block nor ``rpm`` gives a shaft speed. (``build`` widens ``max_env_hz`` beyond
1 kHz when a fixed ``rpm`` puts bearing harmonics above it.)
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft

from ..errors import PipelineError
from .base import F32, Spectrum, Stage
from .bearings import BearingGeometry
from .harmonics import speed_or_fallback
from .spectral import bins_in

__all__ = ["BEARING_FEATURES", "Envelope"]

BEARING_FEATURES = ("env_bpfo_amp", "env_bpfi_amp", "env_bsf_amp", "env_ftf_amp")
_DEFECTS = ("bpfo", "bpfi", "bsf", "ftf")


class Envelope(Stage):
    def __init__(
        self,
        band_hz: tuple[float, float] | None = None,
        squared: bool = False,
        geometry: BearingGeometry | None = None,
        rpm: float = 0.0,
        slip_tolerance: float = 0.02,
        bearing_harmonics: int = 3,
        peak_range_hz: tuple[float, float] = (5.0, 500.0),
        max_env_hz: float = 1000.0,
        kurtogram_levels: int = 0,
    ) -> None:
        self.band_hz = band_hz
        self.squared = squared
        self.geometry = geometry
        self.rpm = rpm
        self.slip_tolerance = slip_tolerance
        self.bearing_harmonics = bearing_harmonics
        self.peak_range_hz = peak_range_hz
        self.max_env_hz = max_env_hz
        self.kurtogram_levels = kurtogram_levels

    def feature_names(self) -> tuple[str, ...]:
        return ("env_peak_hz", "env_peak_amp") + (BEARING_FEATURES if self.geometry is not None else ())

    def _plan(self, fs: float, n: int) -> None:
        lo, hi = self.band_hz if self.band_hz else (fs / 8, 0.45 * fs)
        k0, k1 = bins_in(lo, hi, fs, n)
        if k1 - k0 < 8:
            raise PipelineError(f"envelope band {lo:g}-{hi:g} Hz holds too few bins at fs={fs} Hz, n={n}")
        df = fs / n
        width = k1 - k0 + 1
        self.candidates_ = self._kurtogram_plan(fs, n) if self.kurtogram_levels > 0 else []
        if self.candidates_:
            width = max(int(g[1]) for g in self.candidates_)
        top = max(self.max_env_hz, self.peak_range_hz[1])
        kmax = int(np.ceil(top / df)) + 2
        m = sfft.next_fast_len(width + kmax, real=False)
        kmax = min(kmax, m // 2 - 1)
        p0, p1 = bins_in(self.peak_range_hz[0], self.peak_range_hz[1], fs, n)
        p0, p1 = max(p0, 1), min(p1, kmax)
        if p1 < p0:
            raise PipelineError(f"envelope peak range {self.peak_range_hz} holds no bin at fs={fs} Hz, n={n}")
        self.band_bins_ = (k0, k1)
        self.m_ = m
        self.kmax_ = kmax
        self.peak_bins_ = (p0, p1)
        self.df_ = df
        self.zscale_ = np.float32(2.0 * m / n)
        self.lines_: dict[float, tuple[np.ndarray, np.ndarray]] = {}  # bearing-line bins per shaft speed

    def _kurtogram_plan(self, fs: float, n: int) -> list[tuple[np.ndarray, int]]:
        """Candidate bands grouped by width: ``[(start bins, width in bins), ...]``.

        Bandwidths fs/4, fs/6, fs/8, fs/12, … (binary and 1/3 levels of Antoni's fast kurtogram),
        tiling 0..fs/2; a band is kept if it starts at or above ``peak_range_hz[1]`` and is at least
        twice that wide (so it holds the sidebands of every envelope line searched).
        """
        df = fs / n
        f_env = self.peak_range_hz[1]
        groups = []
        for level in range(1, self.kurtogram_levels + 1):
            for bw in (fs / 2 ** (level + 1), fs / (3 * 2**level)):
                width = int(round(bw / df))
                if bw < 2 * f_env or width < 16:
                    continue
                starts = np.rint(np.arange(0, fs / 2 - bw / 2, bw) / df).astype(np.intp)
                starts = starts[(starts * df >= f_env) & (starts + width <= n // 2)]
                if starts.size:
                    groups.append((starts, width))
        if not groups:
            raise PipelineError(f"kurtogram: no candidate band of >= {2 * f_env:g} Hz above {f_env:g} Hz at fs={fs} Hz")
        return groups

    def kurtogram(self, s: Spectrum) -> tuple[np.ndarray, np.ndarray, F32]:
        """Candidate bands ``lo_hz (K,)``, ``hi_hz (K,)`` and the kurtosis of each band's envelope
        ``(channels, K)``: ``<|z|^4>/<|z|^2>^2 - 2`` of the band's analytic signal (0 for Gaussian)."""
        los, his, ks = [], [], []
        for starts, width in self.candidates_:
            idx = starts[:, None] + np.arange(width)
            z = sfft.ifft(s.X[:, idx], axis=-1, workers=1, overwrite_x=True)
            p = np.square(z.real)
            p += np.square(z.imag)
            m2 = p.mean(axis=-1)
            m4 = np.einsum("cbk,cbk->cb", p, p) / width
            ks.append(m4 / np.maximum(m2 * m2, np.finfo(np.float32).tiny) - 2.0)
            los.append(starts * self.df_)
            his.append((starts + width) * self.df_)
        return np.concatenate(los), np.concatenate(his), np.concatenate(ks, axis=1).astype(np.float32)

    def selected_band(self, s: Spectrum) -> tuple[np.ndarray, np.ndarray]:
        """Demodulation band per channel: ``(start bin, width in bins)`` arrays of shape (channels,)."""
        c = s.X.shape[0]
        if not self.candidates_:
            k0, k1 = self.band_bins_
            return np.full(c, k0, dtype=np.intp), np.full(c, k1 - k0 + 1, dtype=np.intp)
        lo, hi, k = self.kurtogram(s)
        best = np.argmax(np.where(np.isfinite(k), k, -np.inf), axis=1)
        start = np.rint(lo[best] / self.df_).astype(np.intp)
        return start, np.rint((hi[best] - lo[best]) / self.df_).astype(np.intp)

    def spectrum(self, s: Spectrum) -> tuple[np.ndarray, F32]:
        """Frequencies (Hz) and envelope amplitude spectrum ``(channels, kmax+1)`` of one block."""
        if not hasattr(self, "m_"):
            raise PipelineError("Envelope is not fitted; call fit(x, fs) first")
        if self.candidates_:
            start, width = self.selected_band(s)
            wmax = int(width.max())
            cols = np.arange(wmax)
            idx = np.minimum(start[:, None] + cols, s.X.shape[1] - 1)
            band = np.where(cols < width[:, None], np.take_along_axis(s.X, idx, axis=1), 0)
        else:
            k0, k1 = self.band_bins_
            band = s.X[:, k0 : k1 + 1]
        # ifft zero-pads to M; the analytic-signal scale 2M/N is applied to the amplitudes below.
        z = sfft.ifft(band, n=self.m_, axis=-1, workers=1)
        if self.squared:
            e = np.square(z.real)
            e += np.square(z.imag)
        else:
            e = np.abs(z)
        E = sfft.rfft(e, axis=-1, workers=1)[:, : self.kmax_ + 2]
        E[:, 0] = 0  # mean removed
        gain = self.zscale_ ** (2 if self.squared else 1) * np.float32(2.0 / self.m_)
        A = np.abs(E[:, 1:-1] - 0.5 * (E[:, :-2] + E[:, 2:])) * gain
        amp = np.empty((A.shape[0], self.kmax_ + 1), dtype=np.float32)
        amp[:, 0] = 0
        amp[:, 1:] = A
        return np.arange(self.kmax_ + 1) * self.df_, amp

    def _transform(self, s: Spectrum, speed_hz: float | None, unit_scale: F32 | None) -> F32:
        _, amp = self.spectrum(s)
        c = amp.shape[0]
        p0, p1 = self.peak_bins_
        seg = amp[:, p0 - 1 : p1 + 2]
        k = np.argmax(seg[:, 1:-1], axis=1) + 1
        rows = np.arange(c)
        a, b, cc = seg[rows, k - 1], seg[rows, k], seg[rows, k + 1]
        den = a - 2 * b + cc
        delta = np.where(den < 0, 0.5 * (a - cc) / np.where(den < 0, den, -1), 0.0)
        out = np.empty((c, len(self.feature_names())), dtype=np.float32)
        out[:, 0] = (k + p0 - 1 + np.clip(delta, -0.5, 0.5)) * self.df_
        out[:, 1] = b
        if self.geometry is None:
            return out
        if not (speed_hz and speed_hz > 0) and self.rpm <= 0:
            out[:, 2:] = np.nan  # no speed for this block: lines unknown, the peak still is
            return out
        fr = speed_or_fallback("Envelope bearing lines", speed_hz, self.rpm)
        idx, usable = self._line_bins(fr)
        line = amp[:, idx].max(axis=-1)  # (c, defect, harmonic); index 0 reads amp[:, 0] = 0
        rss = np.sqrt(np.sum(np.where(usable, np.square(line), 0.0), axis=-1))
        rss[:, ~usable[:, 0]] = np.nan
        out[:, 2:] = rss
        return out

    def _line_bins(self, fr: float) -> tuple[np.ndarray, np.ndarray]:
        """Search bins ``(defect, harmonic, width)`` for shaft speed ``fr`` (outside the window: 0,
        where the amplitude is 0) and which harmonics lie within the envelope range; cached per speed."""
        cache = self.lines_
        hit = cache.get(fr)
        if hit is not None:
            return hit
        mult = self.geometry.multipliers().as_dict() if self.geometry is not None else {}
        f = np.array([mult[d] for d in _DEFECTS])[:, None] * fr * np.arange(1, self.bearing_harmonics + 1)
        lo = np.floor(f * (1 - self.slip_tolerance) / self.df_).astype(np.intp)
        hi = np.ceil(f * (1 + self.slip_tolerance) / self.df_).astype(np.intp)
        centre = np.rint(f / self.df_).astype(np.intp)
        lo = np.minimum(lo, centre - 1)
        hi = np.maximum(hi, centre + 1)
        width = int((hi - lo).max()) + 1
        idx = lo[..., None] + np.arange(width)  # (defect, harmonic, width)
        valid = (idx <= hi[..., None]) & (idx >= 1) & (idx <= self.kmax_)
        plan = (np.where(valid, idx, 0), centre <= self.kmax_)
        if len(cache) >= 16:  # a varying block speed: keep the cache small
            cache.clear()
        cache[fr] = plan
        return plan
