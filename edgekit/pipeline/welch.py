"""Welch PSD band powers and (option) spectral kurtosis from the same short-time spectra.

Welch exactly as ``scipy.signal.welch(x, fs, window="hann", nperseg, noverlap=nperseg//2,
detrend="constant", scaling="density")``: periodic Hann segments at 50 % overlap, each segment's mean
removed, one-sided density ``|Y|^2 / (fs sum w^2)`` (doubled except DC and Nyquist), averaged. A band
``[lo, hi)`` holds the bins with ``lo <= f < hi``; its power (unit²) is the sum of PSD × Δf.

Spectral kurtosis over the same STFT: ``SK(f) = <|Y|^4> / <|Y|^2>^2 - 2`` (0 for stationary Gaussian
noise); ``sk_max`` is its largest value between DC and Nyquist (exclusive), ``sk_peak_hz`` where.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.fft as sfft
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import PipelineError
from .base import F32, Spectrum, Stage
from .spectral import band_name

__all__ = ["WelchBands"]

log = logging.getLogger(__name__)


class WelchBands(Stage):
    """``band_<lo>_<hi>_hz`` per band, then ``sk_max``, ``sk_peak_hz`` if ``spectral_kurtosis``."""

    def __init__(
        self,
        bands_hz: tuple[tuple[float, float], ...] = ((10.0, 1000.0), (1000.0, 2000.0), (2000.0, 5000.0), (5000.0, 10000.0)),
        nperseg: int = 1024,
        spectral_kurtosis: bool = False,
    ) -> None:
        self.bands_hz = bands_hz
        self.nperseg = nperseg
        self.spectral_kurtosis = spectral_kurtosis

    def feature_names(self) -> tuple[str, ...]:
        names = tuple(band_name(lo, hi) for lo, hi in self.bands_hz)
        return names + (("sk_max", "sk_peak_hz") if self.spectral_kurtosis else ())

    def _plan(self, fs: float, n: int) -> None:
        if self.nperseg % 2:
            raise PipelineError(f"WelchBands nperseg must be even, got {self.nperseg}")
        nper = min(self.nperseg, n - n % 2)
        step = nper // 2
        nseg = (n - nper) // step + 1
        w = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(nper) / nper)).astype(np.float32)
        nb = nper // 2 + 1
        f = np.arange(nb) * (fs / nper)
        onesided = np.full(nb, 2.0)
        onesided[0] = 1.0
        onesided[-1] = 1.0
        density = onesided / (fs * float(np.sum(w.astype(np.float64) ** 2)) * nseg)
        M = np.zeros((nb, len(self.bands_hz)), dtype=np.float64)
        for j, (lo, hi) in enumerate(self.bands_hz):
            sel = (f >= lo) & (f < hi)
            if hi > fs / 2:
                log.warning("band %s-%s Hz exceeds Nyquist at fs=%s Hz; only the part below is measured", lo, hi, fs)
            M[sel, j] = density[sel] * (fs / nper)
        self.window_ = w
        self.wdc_ = np.complex64(sfft.rfft(w)[0])
        self.w1_ = np.complex64(sfft.rfft(w)[1])
        self.nper_, self.step_, self.nseg_ = nper, step, nseg
        self.band_matrix_ = M.astype(np.float32)
        used = np.flatnonzero(M.any(axis=1))
        self.kb_ = int(used[-1]) + 1 if used.size else 1  # bins below kb_ hold every band
        self.sk_scale_ = np.float32(nseg)

    def segment_spectra(self, s: Spectrum) -> np.ndarray:
        """Detrended Hann STFT ``(channels, segments, nperseg//2+1)`` complex64 of one block."""
        x = s.x
        nper, step, nseg = self.nper_, self.step_, self.nseg_
        segs = sliding_window_view(x, nper, axis=-1)[:, : nseg * step : step]
        Y = sfft.rfft(segs * self.window_, axis=-1, workers=1)
        # Removing each segment's mean only touches the bins where the Hann DFT is non-zero (0, 1).
        half = np.einsum("csk->cs", x[:, : (nseg + 1) * step].reshape(x.shape[0], nseg + 1, step))
        seg_mean = (half[:, :-1] + half[:, 1:]) / nper
        Y[..., 0] -= seg_mean * self.wdc_
        Y[..., 1] -= seg_mean * self.w1_
        return Y

    def psd(self, s: Spectrum) -> tuple[np.ndarray, F32]:
        """Frequencies and the Welch PSD density ``(channels, bins)`` (for inspection and tests)."""
        self._check()
        Y = self.segment_spectra(s)
        p = (np.square(Y.real) + np.square(Y.imag)).sum(axis=1)
        nb = p.shape[1]
        onesided = np.full(nb, 2.0, dtype=np.float32)
        onesided[0] = onesided[-1] = 1.0
        dens = onesided / np.float32(s.fs * np.sum(self.window_.astype(np.float64) ** 2) * self.nseg_)
        return np.arange(nb) * (s.fs / self.nper_), (p * dens).astype(np.float32)

    def _check(self) -> None:
        if not hasattr(self, "n_samples_"):
            raise PipelineError("WelchBands is not fitted; call fit(x, fs) first")

    def _transform(self, s: Spectrum, speed_hz: float | None, unit_scale: F32 | None) -> F32:
        Y = self.segment_spectra(s)
        if not self.spectral_kurtosis:  # only the bins the bands read
            Yb = Y[..., : self.kb_].view(np.float32)
            acc = np.einsum("csk,csk->ck", Yb, Yb)
            return (acc[:, 0::2] + acc[:, 1::2]) @ self.band_matrix_[: self.kb_]
        Yf = Y.view(np.float32)
        acc = np.einsum("csk,csk->ck", Yf, Yf)
        p = acc[:, 0::2] + acc[:, 1::2]  # sum over segments of |Y|^2
        bands = p @ self.band_matrix_
        P = np.square(Y.real)
        P += np.square(Y.imag)
        m2 = p / self.sk_scale_
        m4 = np.einsum("csk,csk->ck", P, P) / self.sk_scale_
        sk = m4[:, 1:-1] / np.square(m2[:, 1:-1]) - 2.0
        sk = np.where(np.isfinite(sk), sk, -np.inf)
        k = np.argmax(sk, axis=1)
        out = np.empty((s.x.shape[0], bands.shape[1] + 2), dtype=np.float32)
        out[:, :-2] = bands
        out[:, -2] = np.take_along_axis(sk, k[:, None], axis=1)[:, 0]
        out[:, -1] = (k + 1) * (s.fs / self.nper_)
        return out
