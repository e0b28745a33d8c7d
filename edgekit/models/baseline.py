"""Per-asset healthy baselines: robust location/scale per channel and feature, persisted as JSON.

A baseline is learned from healthy feature frames (commissioning): for every channel and feature the
median and the MAD x 1.4826 (the normal-consistent robust scale), with a floor on the scale
(``max(scale_floor x |median|, scale_floor_abs)``) so near-constant features cannot explode.
Features are normalised to robust z-scores ``(x - median) / scale`` before a ``normalise = "baseline"``
model scores them, so one model serves many assets. The file keeps a sample of the healthy rows
(raw values and their channel) so any model's threshold can be calibrated on it later.

File format (``<dir>/<asset>.json``, written atomically via a temporary file and ``os.replace``)::

    {"format": "edgekit.baseline", "version": 1, "asset": "...", "created": 1.7e9, "n_blocks": 600,
     "names": [...], "channels": [...], "location": [[...] per channel], "scale": [[...]],
     "sample": {"channel": [row's channel index ...], "values": [[...] per row]}}

NaN is stored as ``null``. Unknown ``format``/``version`` is refused.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import PipelineError
from ..types import FeatureFrame, Quality

__all__ = ["Baseline", "BaselineLearner", "baseline_path", "calibrate_threshold", "fit_baseline", "load_baseline",
           "normalise_with"]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
FORMAT = "edgekit.baseline"
VERSION = 1
MAD_TO_SIGMA = 1.4826
Z_CLIP = 1.0e4  # z-scores beyond this carry no extra information and could overflow float32 models


def baseline_path(directory: str | Path, asset: str) -> Path:
    """The baseline file of ``asset`` inside ``directory`` (unsafe characters become ``_``)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", asset) or "_"
    return Path(directory) / f"{safe}.json"


@dataclass
class Baseline:
    """Robust healthy statistics of one asset: ``location``/``scale`` are ``(channels, features)``."""

    asset: str
    names: tuple[str, ...]
    channels: tuple[str, ...]
    location: F64
    scale: F64
    n_blocks: int
    created: float = field(default_factory=time.time)
    sample_values: F32 = field(default_factory=lambda: np.empty((0, 0), np.float32))
    sample_channel: npt.NDArray[np.int32] = field(default_factory=lambda: np.empty(0, np.int32))
    _maps: dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[F32, F32]] = field(
        default_factory=dict, repr=False
    )

    def aligned(self, names: Sequence[str], channels: Sequence[str]) -> tuple[F32, F32]:
        """float32 location and 1/scale laid out as ``(len(channels), len(names))``; NaN where unknown."""
        key = (tuple(names), tuple(channels))
        hit = self._maps.get(key)
        if hit is None:
            loc = np.full((len(channels), len(names)), np.nan)
            scale = np.full_like(loc, np.nan)
            col = {n: i for i, n in enumerate(self.names)}
            row = {c: i for i, c in enumerate(self.channels)}
            ci = [col.get(n, -1) for n in names]
            for r, ch in enumerate(channels):
                b = row.get(ch)
                if b is None:
                    continue
                for j, c in enumerate(ci):
                    if c >= 0:
                        loc[r, j] = self.location[b, c]
                        scale[r, j] = self.scale[b, c]
            hit = (loc.astype(np.float32), (1.0 / scale).astype(np.float32))
            if len(self._maps) > 16:
                self._maps.clear()
            self._maps[key] = hit
        return hit

    def knows(self, channels: Sequence[str]) -> npt.NDArray[np.bool_]:
        """Which of ``channels`` this baseline has statistics for."""
        have = set(self.channels)
        return np.array([c in have for c in channels], dtype=bool)

    def normalise(self, values: F32, names: Sequence[str], channels: Sequence[str]) -> F32:
        """Robust z-scores of ``values`` ``(len(channels), len(names))``; NaN where no statistics exist."""
        loc, inv_scale = self.aligned(names, channels)
        return normalise_with(values, loc, inv_scale)

    def sample_normalised(self, names: Sequence[str]) -> F32:
        """The stored healthy rows, normalised, with columns ``names`` (rows with gaps are NaN)."""
        if self.sample_values.size == 0:
            return np.empty((0, len(names)), np.float32)
        col = {n: i for i, n in enumerate(self.names)}
        idx = [col.get(n, -1) for n in names]
        raw = np.full((self.sample_values.shape[0], len(names)), np.nan)
        loc = np.full_like(raw, np.nan)
        scale = np.full_like(raw, np.nan)
        for j, c in enumerate(idx):
            if c >= 0:
                raw[:, j] = self.sample_values[:, c]
                loc[:, j] = self.location[self.sample_channel, c]
                scale[:, j] = self.scale[self.sample_channel, c]
        return np.clip((raw - loc) / scale, -Z_CLIP, Z_CLIP).astype(np.float32)

    def sample_crossfit(self, names: Sequence[str], *, scale_floor: float = 0.05,
                        scale_floor_abs: float = 1e-6) -> F32:
        """The stored healthy rows as *out-of-sample* z-scores: per channel, the first half of the rows
        (in time order) is normalised by statistics fitted on the second half and vice versa.

        In-sample z-scores are too small (the median/MAD were fitted on those very rows, and a short
        commissioning misses slow drift), so thresholds calibrated on them give too many false alarms.
        Channels with fewer than 4 rows give NaN rows.
        """
        raw = self.sample_raw(names).astype(np.float64)
        out = np.full_like(raw, np.nan)
        for ch in np.unique(self.sample_channel):
            idx = np.flatnonzero(self.sample_channel == ch)
            if idx.size < 4:
                continue
            first, second = idx[: idx.size // 2], idx[idx.size // 2:]
            for fit_rows, eval_rows in ((first, second), (second, first)):
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    loc = np.nanmedian(raw[fit_rows], axis=0)
                    mad = np.nanmedian(np.abs(raw[fit_rows] - loc), axis=0) * MAD_TO_SIGMA
                scale = np.maximum(mad, np.maximum(scale_floor * np.abs(np.nan_to_num(loc)), scale_floor_abs))
                out[eval_rows] = (raw[eval_rows] - loc) / scale
        return np.clip(out, -Z_CLIP, Z_CLIP).astype(np.float32)

    def sample_raw(self, names: Sequence[str]) -> F32:
        """The stored healthy rows as raw feature values with columns ``names``."""
        col = {n: i for i, n in enumerate(self.names)}
        out = np.full((self.sample_values.shape[0], len(names)), np.nan, np.float32)
        for j, n in enumerate(names):
            if n in col:
                out[:, j] = self.sample_values[:, col[n]]
        return out

    # -- persistence -------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        def clean(a: npt.NDArray[Any]) -> list[Any]:
            return [[None if not math.isfinite(v) else float(v) for v in row] for row in a.tolist()]

        return {
            "format": FORMAT,
            "version": VERSION,
            "asset": self.asset,
            "created": self.created,
            "n_blocks": self.n_blocks,
            "names": list(self.names),
            "channels": list(self.channels),
            "location": clean(self.location),
            "scale": clean(self.scale),
            "sample": {
                "channel": [int(c) for c in self.sample_channel],
                "values": clean(self.sample_values.astype(np.float64)),
            },
        }

    def save(self, directory: str | Path) -> Path:
        """Write ``<directory>/<asset>.json`` atomically; return its path."""
        path = baseline_path(directory, self.asset)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".json.tmp{os.getpid()}")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self.to_json(), fh, separators=(",", ":"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return path

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str = "baseline") -> Baseline:
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise PipelineError(
                f"{where}: not an edgekit baseline of version {VERSION} "
                f"(format={data.get('format')!r}, version={data.get('version')!r})"
            )

        def arr(v: Any, dtype: Any) -> Any:
            return np.array([[np.nan if x is None else x for x in row] for row in v], dtype=dtype)

        try:
            names = tuple(data["names"])
            channels = tuple(data["channels"])
            loc = arr(data["location"], np.float64).reshape(len(channels), len(names))
            scale = arr(data["scale"], np.float64).reshape(len(channels), len(names))
            sample = data.get("sample") or {"channel": [], "values": []}
            sv = arr(sample["values"], np.float32).reshape(len(sample["channel"]), len(names))
            sc = np.asarray(sample["channel"], dtype=np.int32)
            return cls(
                asset=str(data["asset"]), names=names, channels=channels, location=loc, scale=scale,
                n_blocks=int(data["n_blocks"]), created=float(data["created"]),
                sample_values=sv, sample_channel=sc,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PipelineError(f"{where}: malformed baseline file: {exc!r}") from exc


def normalise_with(values: F32, loc: F32, inv_scale: F32) -> F32:
    """``clip((values - loc) x inv_scale, -Z_CLIP, Z_CLIP)`` as float32 in a new array (NaN stays NaN)."""
    z = np.subtract(values, loc) if values.dtype == np.float32 else np.subtract(values, loc, dtype=np.float32)
    np.multiply(z, inv_scale, out=z)
    # Two plain ufuncs, not np.clip: its Python wrapper layers cost ~3 us per block right after
    # feature extraction (cold caches).
    np.minimum(z, Z_CLIP, out=z)
    np.maximum(z, -Z_CLIP, out=z)
    return z


def load_baseline(directory: str | Path, asset: str) -> Baseline | None:
    """The stored baseline of ``asset``, or None if there is none; a corrupt file raises PipelineError."""
    path = baseline_path(directory, asset)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PipelineError(f"baseline {path}: cannot read: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PipelineError(f"baseline {path}: not valid JSON: {exc}") from exc
    return Baseline.from_json(data, where=f"baseline {path}")


def fit_baseline(
    asset: str,
    values: F32,
    names: Sequence[str],
    channels: Sequence[str],
    *,
    scale_floor: float = 0.05,
    scale_floor_abs: float = 1e-6,
    sample_rows: int = 2048,
    seed: int = 0,
) -> Baseline:
    """Fit robust statistics from healthy ``values`` shaped ``(blocks, channels, features)`` (NaN = missing)."""
    if values.ndim != 3 or values.shape[1:] != (len(channels), len(names)):
        raise PipelineError(
            f"fit_baseline: values shape {values.shape} does not match (blocks, {len(channels)}, {len(names)})"
        )
    if values.shape[0] < 2:
        raise PipelineError(f"fit_baseline: {values.shape[0]} blocks; a baseline needs at least 2")
    v = values.astype(np.float64)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column is a legitimate NaN result
        loc = np.nanmedian(v, axis=0)
        mad = np.nanmedian(np.abs(v - loc), axis=0) * MAD_TO_SIGMA
    floor = np.maximum(scale_floor * np.abs(np.nan_to_num(loc)), scale_floor_abs)
    scale = np.where(np.isfinite(mad), np.maximum(mad, floor), np.nan)
    rows = v.reshape(-1, len(names))
    chan = np.tile(np.arange(len(channels), dtype=np.int32), values.shape[0])
    good = np.isfinite(rows).all(axis=1)
    rows, chan = rows[good], chan[good]
    if rows.shape[0] > sample_rows:
        pick = np.sort(np.random.default_rng(seed).choice(rows.shape[0], sample_rows, replace=False))
        rows, chan = rows[pick], chan[pick]
    return Baseline(
        asset=asset, names=tuple(names), channels=tuple(channels), location=loc, scale=scale,
        n_blocks=int(values.shape[0]), sample_values=rows.astype(np.float32), sample_channel=chan,
    )


class BaselineLearner:
    """Accumulates healthy frames of one asset until ``blocks`` are collected, then fits a baseline.

    Frames with a different channel set or feature names than the first are refused (PipelineError);
    channels with bad quality contribute NaN for that block.
    """

    def __init__(self, asset: str, blocks: int, **fit_kwargs: Any) -> None:
        self.asset = asset
        self.blocks = blocks
        self.fit_kwargs = fit_kwargs
        self._names: tuple[str, ...] | None = None
        self._channels: tuple[str, ...] | None = None
        self._rows: list[F32] = []

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def done(self) -> bool:
        return len(self._rows) >= self.blocks

    def add(self, frame: FeatureFrame) -> bool:
        """Take one frame; True once enough blocks are collected."""
        if self._names is None:
            self._names, self._channels = frame.names, frame.channels
        elif frame.names != self._names or frame.channels != self._channels:
            raise PipelineError(
                f"baseline of {self.asset!r}: frame layout changed during commissioning "
                f"(channels {frame.channels} / {len(frame.names)} features)"
            )
        v = frame.values.astype(np.float32, copy=True)
        v[frame.quality >= Quality.BAD] = np.nan
        self._rows.append(v)
        return self.done

    def fit(self) -> Baseline:
        if not self._rows or self._names is None or self._channels is None:
            raise PipelineError(f"baseline of {self.asset!r}: no frames collected")
        return fit_baseline(self.asset, np.stack(self._rows), self._names, self._channels, **self.fit_kwargs)


def calibrate_threshold(scores: F32, rate: float, margin: float) -> tuple[float, float]:
    """Threshold for a target false-alarm ``rate`` on healthy ``scores``: ``(threshold, median)``.

    ``threshold = q + margin x (q - median)`` with ``q`` the ``1 - rate`` quantile: the margin widens the
    gap above the healthy bulk, because a baseline of a few hundred blocks underestimates the far tail.
    """
    s = np.asarray(scores, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size < 2:
        raise PipelineError(f"calibrate_threshold: {s.size} finite scores; need at least 2")
    med = float(np.median(s))
    q = float(np.quantile(s, 1.0 - rate))
    spread = max(q - med, 1e-9 * max(1.0, abs(med)))
    return q + margin * spread, med
