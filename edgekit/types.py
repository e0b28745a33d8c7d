"""The data that flows between edgekit's parts: points, waveform blocks, feature frames, events.

Everything is columnar: a :class:`PointBatch` holds numpy columns, not a list of objects, and a
:class:`WaveformBlock` is one ``(channels, samples)`` float32 array. Timestamps are UNIX seconds
(float64, UTC). Quality is a small integer per value (see :class:`Quality`) with a reason string
where it is not good.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "Event",
    "EventKind",
    "FeatureFrame",
    "PointBatch",
    "Quality",
    "Severity",
    "WaveformBlock",
]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]


class Quality(enum.IntEnum):
    """Quality of one value, ordered so that ``max`` gives the worst."""

    GOOD = 0
    UNCERTAIN = 1
    BAD = 2


class Severity(enum.IntEnum):
    INFO = 0
    WARNING = 1
    ALARM = 2
    CRITICAL = 3


class EventKind(enum.StrEnum):
    ALARM_RAISED = "alarm_raised"
    ALARM_CLEARED = "alarm_cleared"
    ZONE_CHANGED = "zone_changed"
    CONNECTOR_UP = "connector_up"
    CONNECTOR_DOWN = "connector_down"
    TASK_RESTARTED = "task_restarted"
    GAP_DETECTED = "gap_detected"
    DATA_DROPPED = "data_dropped"
    MODEL_RELOADED = "model_reloaded"
    SHUTDOWN = "shutdown"


@dataclass(frozen=True, slots=True)
class PointBatch:
    """Scalar readings of one device, as columns of equal length ``n``.

    ``values`` is float64 (bools as 0/1, NaN where quality is bad); string-valued tags carry their
    text in ``text`` (same length, ``None`` for numeric tags) with ``values`` NaN.
    """

    device: str
    tags: tuple[str, ...]
    values: F64
    source_ts: F64
    recv_ts: F64
    quality: U8
    reasons: tuple[str, ...] = ()
    text: tuple[str | None, ...] | None = None

    def __post_init__(self) -> None:
        n = len(self.tags)
        for name in ("values", "source_ts", "recv_ts", "quality"):
            col = getattr(self, name)
            if col.shape != (n,):
                raise ValueError(f"PointBatch.{name} has shape {col.shape}, expected ({n},)")
        if self.reasons and len(self.reasons) != n:
            raise ValueError("PointBatch.reasons must be empty or one per tag")
        if self.text is not None and len(self.text) != n:
            raise ValueError("PointBatch.text must be None or one per tag")

    def __len__(self) -> int:
        return len(self.tags)

    @classmethod
    def trusted(
        cls,
        device: str,
        tags: tuple[str, ...],
        values: F64,
        source_ts: F64,
        recv_ts: F64,
        quality: U8,
        reasons: tuple[str, ...] = (),
        text: tuple[str | None, ...] | None = None,
    ) -> PointBatch:
        """Internal fast path for a producer whose columns have the right shapes by construction (a
        connector's precompiled batch layout): the same frozen object as the constructor builds,
        without re-checking the shapes (``__post_init__``) — about 1.3 µs less per batch."""
        self = _new_object(cls)
        _set_device(self, device)
        _set_tags(self, tags)
        _set_values(self, values)
        _set_source_ts(self, source_ts)
        _set_recv_ts(self, recv_ts)
        _set_quality(self, quality)
        _set_reasons(self, reasons)
        _set_text(self, text)
        return self

    @classmethod
    def build(
        cls,
        device: str,
        tags: Sequence[str],
        values: Sequence[float] | F64,
        *,
        source_ts: float | Sequence[float] | None = None,
        recv_ts: float | None = None,
        quality: Sequence[int] | U8 | int = Quality.GOOD,
        reasons: Sequence[str] = (),
        text: Sequence[str | None] | None = None,
    ) -> PointBatch:
        """Convenience constructor: broadcasts scalar timestamps and quality to columns."""
        n = len(tags)
        now = time.time() if recv_ts is None else recv_ts
        src = np.full(n, now) if source_ts is None else np.broadcast_to(
            np.asarray(source_ts, dtype=np.float64), (n,)
        ).copy()
        q = np.broadcast_to(np.asarray(quality, dtype=np.uint8), (n,)).copy()
        return cls(
            device=device,
            tags=tuple(tags),
            values=np.asarray(values, dtype=np.float64).reshape(n),
            source_ts=src,
            recv_ts=np.full(n, now),
            quality=q,
            reasons=tuple(reasons),
            text=None if text is None else tuple(text),
        )


# PointBatch.trusted's field setters: the slots' own descriptors (what the frozen dataclass's
# __init__ reaches through object.__setattr__)
_new_object = object.__new__
(_set_device, _set_tags, _set_values, _set_source_ts, _set_recv_ts, _set_quality, _set_reasons,
 _set_text) = (PointBatch.__dict__[f].__set__ for f in ("device", "tags", "values", "source_ts", "recv_ts", "quality",
                                                         "reasons", "text"))


@dataclass(frozen=True, slots=True)
class WaveformBlock:
    """One block of samples from several channels of one asset.

    ``data`` is ``(channels, samples)`` float32 in the units given per channel (``g``, ``m/s2``,
    ``mm/s``). ``seq`` is the source's block counter, so a consumer can detect gaps.
    ``speed_hz`` is the shaft speed during the block, where known.
    """

    asset: str
    data: F32
    fs: float
    t0: float
    seq: int
    channels: tuple[str, ...]
    units: tuple[str, ...]
    speed_hz: float | None = None
    quality: Quality = Quality.GOOD
    reason: str = ""

    def __post_init__(self) -> None:
        if self.data.ndim != 2:
            raise ValueError(f"WaveformBlock.data must be 2-D (channels, samples), got {self.data.shape}")
        if self.data.dtype != np.float32:
            raise ValueError(f"WaveformBlock.data must be float32, got {self.data.dtype}")
        if len(self.channels) != self.data.shape[0] or len(self.units) != self.data.shape[0]:
            raise ValueError("WaveformBlock needs one channel id and one unit per row of data")
        if self.fs <= 0:
            raise ValueError(f"WaveformBlock.fs must be > 0, got {self.fs}")

    @property
    def n_samples(self) -> int:
        return int(self.data.shape[1])

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.fs


@dataclass(frozen=True, slots=True)
class FeatureFrame:
    """Features of one block: ``values`` is ``(channels, features)`` float32.

    ``names`` are the stable public feature names (the contract with ONNX models). ``quality`` is
    one entry per channel; a bad channel's features are NaN and its ``reasons`` entry says why.
    """

    asset: str
    values: F32
    names: tuple[str, ...]
    channels: tuple[str, ...]
    t0: float
    seq: int
    quality: U8
    reasons: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        c, f = self.values.shape
        if len(self.names) != f or len(self.channels) != c or self.quality.shape != (c,):
            raise ValueError(
                f"FeatureFrame shape {self.values.shape} does not match "
                f"{len(self.channels)} channels x {len(self.names)} names"
            )

    def column(self, name: str) -> F32:
        """The values of one feature for every channel."""
        return self.values[:, self.names.index(name)]


@dataclass(frozen=True, slots=True)
class Event:
    """Something an operator may care about: alarm, zone change, connector up/down, gap, drop."""

    kind: EventKind
    source: str
    message: str
    severity: Severity = Severity.INFO
    ts: float = field(default_factory=time.time)
    data: dict[str, Any] = field(default_factory=dict)
