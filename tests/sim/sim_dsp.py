"""Small independent DSP for the simulator tests (deliberately not edgekit.pipeline)."""

from __future__ import annotations

import numpy as np
from scipy import fft

G = 9.80665


def line_amplitude(x: np.ndarray, fs: float, f: float, search_bins: int = 2) -> tuple[float, float]:
    """(frequency, peak amplitude) of the strongest line within ±search_bins of f (Hann, coherent gain)."""
    n = x.size
    w = np.hanning(n)
    spec = np.abs(fft.rfft((x - x.mean()) * w)) * 2 / w.sum()
    freqs = fft.rfftfreq(n, 1 / fs)
    k = int(round(f * n / fs))
    lo, hi = max(k - search_bins, 0), k + search_bins + 1
    j = lo + int(np.argmax(spec[lo:hi]))
    return float(freqs[j]), float(spec[j])


def envelope_spectrum(x: np.ndarray, fs: float, lo: float = 2000.0, hi: float = 5500.0) -> tuple[np.ndarray, np.ndarray]:
    """Band-pass (FFT mask) → analytic signal → |z| → amplitude spectrum of the mean-removed envelope."""
    n = x.size
    spec = fft.fft(x - x.mean())
    f = fft.fftfreq(n, 1 / fs)
    mask = (f >= lo) & (f <= hi)  # positive band only → analytic signal of the band
    z = fft.ifft(np.where(mask, 2 * spec, 0))
    env = np.abs(z)
    e = np.abs(fft.rfft(env - env.mean())) * 2 / n
    return fft.rfftfreq(n, 1 / fs), e


def velocity_rms_mm_s(x_g: np.ndarray, fs: float, f_lo: float = 10.0, f_hi: float = 1000.0) -> float:
    """Velocity RMS (mm/s) in [f_lo, f_hi] by frequency-domain integration and Parseval."""
    n = x_g.size
    spec = fft.rfft(x_g - x_g.mean())
    f = fft.rfftfreq(n, 1 / fs)
    band = (f >= f_lo) & (f <= f_hi)
    v = spec[band] * G * 1000 / (2j * np.pi * f[band])
    # one-sided Parseval: sum over bins of 2|V|²/n² (no DC/Nyquist inside the band)
    return float(np.sqrt(np.sum(2 * np.abs(v) ** 2) / n**2))
