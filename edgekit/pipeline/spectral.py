"""Small spectral helpers shared by the stages: windows applied in the frequency domain, gathers.

Windowing a block is a circular convolution of its FFT with the window's few non-zero DFT
coefficients, so a Hann (3 taps) or flat-top (9 taps) spectrum is computed only at the bins a
feature reads — the shared FFT stays unwindowed for the envelope and cepstrum.
Window definition: ``w[n] = sum_m (-1)^m a_m cos(2 pi m n / N)`` (periodic).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["FLATTOP", "HANN", "WindowGather", "apply_gather", "band_name", "bins_in", "gather_plan", "windowed_at"]

HANN = np.array([0.5, 0.5], dtype=np.float64)
# Flat-top (same coefficients as scipy.signal.windows.flattop): line amplitudes to < 0.1 dB.
FLATTOP = np.array([0.21557895, 0.41663158, 0.277263158, 0.083578947, 0.006947368], dtype=np.float64)


@functools.lru_cache(maxsize=8)
def _taps(a: tuple[float, ...]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float32]]:
    m = len(a) - 1
    offsets = np.arange(-m, m + 1)
    coef = np.array([a[0] if o == 0 else (-1) ** abs(o) * a[abs(o)] / 2 for o in offsets]) / a[0]
    return offsets, coef.astype(np.float32)


def taps(a: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float32]]:
    """Offsets and coefficients of the window's DFT, normalised to unit coherent gain (cached)."""
    return _taps(tuple(float(v) for v in a))


@dataclass(frozen=True, slots=True)
class WindowGather:
    """Where to read the shared FFT for :func:`windowed_at` at fixed bins (see :func:`gather_plan`)."""

    src: npt.NDArray[np.intp]
    conj: npt.NDArray[np.bool_] | None
    coef: npt.NDArray[np.complex64]
    scale: float


def gather_plan(n: int, k: npt.NDArray[np.intp], a: npt.NDArray[np.float64]) -> WindowGather:
    """The source bins (folded into the one-sided half), conjugation mask and taps for bins ``k``."""
    offsets, coef = taps(a)
    idx = k[..., None] + offsets  # (*k.shape, taps)
    neg = idx < 0
    high = idx > n // 2
    src = np.where(neg, -idx, np.where(high, n - idx, idx))
    src = np.clip(src, 0, n // 2)
    conj = neg | high
    return WindowGather(src, conj if conj.any() else None, coef.astype(np.complex64), 2.0 / n)


def apply_gather(X: npt.NDArray[np.complex64], g: WindowGather) -> npt.NDArray[np.float32]:
    """One-sided peak amplitudes ``(channels, *k.shape)`` planned by :func:`gather_plan`."""
    vals = X[:, g.src]
    if g.conj is not None:
        vals = np.where(g.conj, np.conj(vals), vals)
    w = vals @ g.coef
    return (np.abs(w) * g.scale).astype(np.float32)


def windowed_at(X: npt.NDArray[np.complex64], n: int, k: npt.NDArray[np.intp], a: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """One-sided peak amplitude at bins ``k`` (any shape) of the ``a``-windowed spectrum.

    ``X`` is ``(channels, n//2+1)``, the rfft of an ``n``-sample block. Neighbours below 0 or above
    Nyquist are read from the conjugate-symmetric half. Result shape ``(channels, *k.shape)``.
    """
    return apply_gather(X, gather_plan(n, k, a))


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
