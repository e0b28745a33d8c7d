"""The stage contract and the shared per-block spectrum every stage reads.

A stage follows the scikit-learn contract: ``__init__`` stores parameters only (``get_params``
returns them, :func:`clone` rebuilds an unfitted copy); ``fit(x, fs)`` learns the plan for one
``(fs, n_samples)`` — bin indices, masks, windows — into attributes ending in ``_`` and returns
``self``; ``transform`` is pure and maps ``(channels, samples)`` float32 to ``(channels, features)``
float32 whose column names are ``feature_names()``. Using an unfitted stage, or a block whose shape,
dtype or rate does not match the plan, raises :class:`~edgekit.errors.PipelineError`.

``transform`` accepts either the raw array or a :class:`Spectrum` — the one shared ``rfft`` of the
block (scipy.fft, float32, one worker) — so that a pipeline of stages costs one forward FFT.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import scipy.fft as sfft

from ..errors import PipelineError

__all__ = ["C64", "F32", "Spectrum", "Stage", "clone"]

F32 = npt.NDArray[np.float32]
C64 = npt.NDArray[np.complex64]
S = TypeVar("S", bound="Stage")


@dataclass(frozen=True, eq=False, slots=True)
class Spectrum:
    """One block and its shared FFT.

    ``X`` is ``rfft(x - mean)`` along the last axis (the DC bin is zero), complex64;
    ``mean`` is each channel's mean (taken from the DC bin, so it costs nothing).
    """

    x: F32
    X: C64
    mean: F32
    fs: float

    @classmethod
    def of(cls, x: F32, fs: float) -> Spectrum:
        check_block(x)
        X = sfft.rfft(x, axis=-1, workers=1)
        mean = (X[:, 0].real / x.shape[1]).astype(np.float32)
        X[:, 0] = 0
        return cls(x=x, X=X, mean=mean, fs=float(fs))

    @property
    def n_samples(self) -> int:
        return int(self.x.shape[1])


def check_block(x: object) -> None:
    if not isinstance(x, np.ndarray) or x.ndim != 2 or x.dtype != np.float32:
        shape = getattr(x, "shape", None)
        dtype = getattr(x, "dtype", type(x).__name__)
        raise PipelineError(f"expected a (channels, samples) float32 array, got shape {shape} dtype {dtype}")


class Stage:
    """Base class: parameter handling, fit/transform plumbing and the unfitted check."""

    def get_params(self) -> dict[str, Any]:
        sig = inspect.signature(type(self).__init__)
        return {name: getattr(self, name) for name in sig.parameters if name != "self"}

    def set_params(self: S, **params: Any) -> S:
        valid = self.get_params()
        for key, value in params.items():
            if key not in valid:
                raise PipelineError(f"{type(self).__name__} has no parameter {key!r}; parameters: {', '.join(valid)}")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- subclass hooks -------------------------------------------------------------------
    def feature_names(self) -> tuple[str, ...]:
        raise NotImplementedError

    def _plan(self, fs: float, n: int) -> None:
        """Precompute everything that depends only on (fs, n); store it in ``*_`` attributes."""

    def _transform(self, s: Spectrum, speed_hz: float | None, unit_scale: F32 | None) -> F32:
        raise NotImplementedError

    # -- contract -------------------------------------------------------------------------
    def fit(self: S, x: F32 | Spectrum, fs: float | None = None) -> S:
        if isinstance(x, Spectrum):
            fs = x.fs if fs is None else fs
            x = x.x
        check_block(x)
        if fs is None or not fs > 0:
            raise PipelineError(f"{type(self).__name__}.fit needs the sample rate fs > 0, got {fs!r}")
        self._plan(float(fs), int(x.shape[1]))
        self.fs_ = float(fs)
        self.n_samples_ = int(x.shape[1])
        return self

    def transform(
        self,
        x: F32 | Spectrum,
        *,
        speed_hz: float | None = None,
        unit_scale: F32 | None = None,
    ) -> F32:
        """Features ``(channels, len(feature_names()))`` float32 of one block.

        ``speed_hz`` is the shaft speed during the block (stages that need it fall back to their
        ``rpm`` parameter); ``unit_scale`` converts each channel to m/s² (stages that need SI).
        """
        if not hasattr(self, "n_samples_"):
            raise PipelineError(f"{type(self).__name__} is not fitted; call fit(x, fs) first")
        s = x if isinstance(x, Spectrum) else Spectrum.of(x, self.fs_)
        if s.n_samples != self.n_samples_ or s.fs != self.fs_:
            raise PipelineError(
                f"{type(self).__name__} was fitted for {self.n_samples_} samples at {self.fs_} Hz, "
                f"got {s.n_samples} samples at {s.fs} Hz"
            )
        with np.errstate(all="ignore"):
            out = self._transform(s, speed_hz, unit_scale)
        return np.ascontiguousarray(out, dtype=np.float32)

    def fit_transform(self, x: F32, fs: float, **kw: Any) -> F32:
        return self.fit(x, fs).transform(x, **kw)


def clone(stage: S) -> S:
    """An unfitted copy of ``stage`` with deep-copied parameters."""
    return type(stage)(**copy.deepcopy(stage.get_params()))
