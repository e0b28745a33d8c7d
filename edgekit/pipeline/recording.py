"""Load a vibration recording (.mat, .npy, .csv, .wav) as ``(channels, samples)`` float32.

* ``.mat`` (MATLAB v5, ``scipy.io.loadmat``): ``key`` names the variable(s), comma-separated; by
  default every ``*_DE_time``, ``*_FE_time``, ``*_BA_time`` (the CWRU layout) of the first one's
  length, else the first numeric array. A ``*RPM`` scalar becomes ``rpm``; an ``fs`` scalar the rate.
* ``.npy``: a 1-D array is one channel; a 2-D array is ``(channels, samples)`` — or
  ``(samples, channels)`` when it has more rows than columns.
* ``.csv``: one column per channel, optional header row naming them.
* ``.wav``: the file's rate; integer PCM is scaled to ±1.0 full scale (÷ 2^(bits-1)) (state the unit separately).

The sample rate must come from the file or the caller; nothing is guessed from a file name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .base import F32

__all__ = ["Recording", "load_recording"]

_CWRU_CHANNEL = re.compile(r"^X?(\d+)_(DE|FE|BA)_time$")


@dataclass(frozen=True, slots=True)
class Recording:
    data: F32
    fs: float
    channels: tuple[str, ...]
    rpm: float = 0.0


def _as_channels(arr: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(arr)
    if a.dtype.kind not in "fiu" or a.size == 0:
        raise ConfigError("file", f"{what} is not a numeric array")
    a = np.squeeze(a)
    if a.ndim == 1:
        return a[None, :]
    if a.ndim != 2:
        raise ConfigError("file", f"{what} has shape {a.shape}; expected 1-D or 2-D")
    return a.T if a.shape[0] > a.shape[1] else a


def _load_mat(path: Path, key: str) -> tuple[np.ndarray, tuple[str, ...], float, float]:
    import scipy.io

    m = {k: v for k, v in scipy.io.loadmat(str(path)).items() if not k.startswith("__")}
    rpm = next((float(np.squeeze(v)) for k, v in m.items() if k.upper().endswith("RPM") and np.size(v) == 1), 0.0)
    fs = float(np.squeeze(m["fs"])) if "fs" in m and np.size(m["fs"]) == 1 else 0.0
    if key:
        names = [k.strip() for k in key.split(",") if k.strip()]
        missing = [k for k in names if k not in m]
        if missing:
            raise ConfigError("key", f"{missing[0]!r} is not in {path.name}; variables: {', '.join(sorted(m))}")
    else:
        order = {"DE": 0, "FE": 1, "BA": 2}
        cw = sorted((k for k in m if _CWRU_CHANNEL.match(k)), key=lambda k: order[_CWRU_CHANNEL.match(k).group(2)])  # type: ignore[union-attr]
        if cw:
            n0 = np.size(m[cw[0]])
            names = [k for k in cw if np.size(m[k]) == n0]
        else:
            arrays = [k for k, v in m.items() if isinstance(v, np.ndarray) and v.dtype.kind in "fiu" and v.size > 1]
            if not arrays:
                raise ConfigError("file", f"{path.name} holds no numeric array")
            names = arrays[:1]
    rows = [_as_channels(m[k], f"{path.name}:{k}") for k in names]
    if len({r.shape[1] for r in rows}) != 1:
        raise ConfigError("key", f"variables {names} have different lengths; pick one with --key")
    channels = [f"{k}[{i}]" if r.shape[0] > 1 else k for k, r in zip(names, rows, strict=True) for i in range(r.shape[0])]
    return np.vstack(rows), tuple(channels), fs, rpm


def load_recording(path: str | Path, *, key: str = "", fs: float = 0.0) -> Recording:
    """Read ``path``; ``fs`` overrides (or supplies) the sample rate. Raises ConfigError if unusable."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("file", f"{str(p)!r} does not exist")
    ext = p.suffix.lower()
    file_fs, rpm = 0.0, 0.0
    if ext == ".mat":
        data, channels, file_fs, rpm = _load_mat(p, key)
    elif ext == ".npy":
        data = _as_channels(np.load(p, allow_pickle=False), p.name)
        channels = tuple(f"ch{i}" for i in range(data.shape[0]))
    elif ext == ".csv":
        with p.open() as fh:
            first = fh.readline()
        cells = [c.strip() for c in first.split(",")]
        try:
            [float(c) for c in cells]
            header = None
        except ValueError:
            header = cells
        arr = np.loadtxt(p, delimiter=",", skiprows=1 if header else 0, ndmin=2)
        data = arr.T
        channels = tuple(header) if header and len(header) == data.shape[0] else tuple(f"ch{i}" for i in range(data.shape[0]))
    elif ext == ".wav":
        import scipy.io.wavfile

        rate, raw = scipy.io.wavfile.read(p)
        file_fs = float(rate)
        arr = np.asarray(raw)
        full = float(2 ** (8 * arr.dtype.itemsize - 1))
        if arr.dtype.kind == "i":
            arr = arr / full
        elif arr.dtype.kind == "u":  # 8-bit PCM is unsigned with 128 as zero
            arr = (arr.astype(np.float64) - full) / full
        data = arr.T if arr.ndim == 2 else arr[None, :]
        channels = tuple(f"ch{i}" for i in range(data.shape[0]))
    else:
        raise ConfigError("file", f"{p.name}: unsupported extension {ext!r}; use .mat, .npy, .csv or .wav")
    rate = fs or file_fs
    if not rate > 0:
        raise ConfigError("fs", f"{p.name} does not state its sample rate; give it (--fs HZ / fs = ...)")
    return Recording(np.ascontiguousarray(data, dtype=np.float32), float(rate), channels, rpm)
