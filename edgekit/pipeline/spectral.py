"""Small spectral helpers shared by the stages: windows applied in the frequency domain, gathers.

Windowing a block is a circular convolution of its FFT with the window's few non-zero DFT
coefficients, so a Hann (3 taps) or flat-top (9 taps) spectrum is computed only at the bins a
feature reads — the shared FFT stays unwindowed for the envelope and cepstrum.
Window definition: ``w[n] = sum_m (-1)^m a_m cos(2 pi m n / N)`` (periodic).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["FLATTOP", "HANN", "band_name", "bins_in", "windowed_at"]

HANN = np.array([0.5, 0.5], dtype=np.float64)
# Flat-top (same coefficients as scipy.signal.windows.flattop): line amplitudes to < 0.1 dB.
FLATTOP = np.array([0.21557895, 0.41663158, 0.277263158, 0.083578947, 0.006947368], dtype=np.float64)


def taps(a: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float32]]:
    """Offsets and coefficients of the window's DFT, normalised to unit coherent gain."""
    m = len(a) - 1
    offsets = np.arange(-m, m + 1)
    coef = np.array([a[0] if o == 0 else (-1) ** abs(o) * a[abs(o)] / 2 for o in offsets]) / a[0]
    return offsets, coef.astype(np.float32)


def windowed_at(X: npt.NDArray[np.complex64], n: int, k: npt.NDArray[np.intp], a: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """One-sided peak amplitude at bins ``k`` (any shape) of the ``a``-windowed spectrum.

    ``X`` is ``(channels, n//2+1)``, the rfft of an ``n``-sample block. Neighbours below 0 or above
    Nyquist are read from the conjugate-symmetric half. Result shape ``(channels, *k.shape)``.
    """
    offsets, coef = taps(a)
    idx = k[..., None] + offsets  # (*k.shape, taps)
    neg = idx < 0
    high = idx > n // 2
    src = np.where(neg, -idx, np.where(high, n - idx, idx))
    src = np.clip(src, 0, n // 2)
    vals = X[:, src]
    conj = neg | high
    if conj.any():
        vals = np.where(conj, np.conj(vals), vals)
    w = vals @ coef.astype(np.complex64)
    return (np.abs(w) * (2.0 / n)).astype(np.float32)


def bins_in(lo: float, hi: float, fs: float, n: int, *, inclusive: bool = True) -> tuple[int, int]:
    """First and last rfft bin ``k`` (excluding DC and Nyquist) with ``lo <= k fs/n <= hi``."""
    df = fs / n
    k0 = max(1, int(np.ceil(lo / df - 1e-9)))
    k1 = min(n // 2 - 1 if n % 2 == 0 else n // 2, int(np.floor(hi / df + 1e-9)))
    if not inclusive and k1 * df >= hi:
        k1 -= 1
    return k0, k1


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}".replace(".", "p")


def band_name(lo: float, hi: float) -> str:
    """``band_<lo>_<hi>_hz`` with integers as written and ``p`` for a decimal point."""
    return f"band_{_fmt(lo)}_{_fmt(hi)}_hz"
