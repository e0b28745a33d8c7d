"""Pure conversions from OPC UA DataValues to edgekit columns: value, quality, reason, timestamp.

Quality comes from the StatusCode's severity bits (Good / Uncertain / Bad); the reason is the
status name (``BadCommunicationError``) for anything not Good. ``timestamps`` picks which time
becomes ``source_ts``: ``source`` (falls back to server, then gateway time), ``server`` (falls back
to gateway time) or ``gateway`` (the receive time).
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from asyncua import ua

from ...types import PointBatch, Quality

__all__ = ["PointColumns", "quality_of", "status_name", "to_number"]

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_NAMES: dict[int, str] = {}


def status_name(code: int) -> str:
    name = _NAMES.get(code)
    if name is None:
        try:
            name = ua.status_codes.get_name_and_doc(code & 0xFFFF0000)[0]
        except Exception:  # unknown code: show it in hex rather than fail a whole batch
            name = f"0x{code:08X}"
        _NAMES[code] = name
    return name


def quality_of(status: ua.StatusCode | None) -> tuple[Quality, str]:
    """``(quality, reason)`` of a StatusCode (``None`` means Good)."""
    if status is None:
        return Quality.GOOD, ""
    code = int(status.value)
    severity = code >> 30
    if severity == 0:
        return Quality.GOOD, ""
    return (Quality.UNCERTAIN if severity == 1 else Quality.BAD), status_name(code)


def _ts(value: _dt.datetime | None) -> float:
    if value is None:
        return math.nan
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.UTC)
    return (value - _EPOCH).total_seconds()


def to_number(value: Any) -> tuple[float, str | None]:
    """``(float value, text)``: numbers and bools as float, strings (and anything else) as text."""
    if isinstance(value, bool):
        return (1.0 if value else 0.0), None
    if isinstance(value, (int, float)):
        return float(value), None
    if value is None:
        return math.nan, None
    if isinstance(value, str):
        return math.nan, value
    if isinstance(value, _dt.datetime):
        return _ts(value), None
    if isinstance(value, ua.LocalizedText):
        return math.nan, value.Text
    return math.nan, str(value)


class PointColumns:
    """Accumulates DataValues of one device and turns them into one columnar PointBatch."""

    __slots__ = ("device", "quality", "reasons", "source", "tags", "text", "timestamps", "values", "has_text", "has_reason")

    def __init__(self, device: str, timestamps: str) -> None:
        self.device = device
        self.timestamps = timestamps
        self.tags: list[str] = []
        self.values: list[float] = []
        self.source: list[float] = []
        self.quality: list[int] = []
        self.reasons: list[str] = []
        self.text: list[str | None] = []
        self.has_text = False
        self.has_reason = False

    def __len__(self) -> int:
        return len(self.tags)

    def add(self, tag: str, dv: ua.DataValue, recv_ts: float) -> None:
        q, reason = quality_of(dv.StatusCode)
        value, text = to_number(dv.Value.Value if dv.Value is not None else None)
        if q is Quality.BAD:
            value, text = math.nan, None
        if self.timestamps == "source":
            ts = _ts(dv.SourceTimestamp) if dv.SourceTimestamp is not None else _ts(dv.ServerTimestamp)
        elif self.timestamps == "server":
            ts = _ts(dv.ServerTimestamp)
        else:
            ts = math.nan
        self.tags.append(tag)
        self.values.append(value)
        self.source.append(recv_ts if math.isnan(ts) else ts)
        self.quality.append(int(q))
        self.reasons.append(reason)
        self.text.append(text)
        self.has_text = self.has_text or text is not None
        self.has_reason = self.has_reason or bool(reason)

    def add_bad(self, tags: Sequence[str], reason: str, recv_ts: float) -> None:
        for tag in tags:
            self.tags.append(tag)
            self.values.append(math.nan)
            self.source.append(recv_ts)
            self.quality.append(int(Quality.BAD))
            self.reasons.append(reason)
            self.text.append(None)
        self.has_reason = True

    def flush(self, recv_ts: float) -> PointBatch:
        """The accumulated batch; the accumulator is empty afterwards."""
        n = len(self.tags)
        batch = PointBatch(
            device=self.device,
            tags=tuple(self.tags),
            values=np.asarray(self.values, dtype=np.float64),
            source_ts=np.asarray(self.source, dtype=np.float64),
            recv_ts=np.full(n, recv_ts),
            quality=np.asarray(self.quality, dtype=np.uint8),
            reasons=tuple(self.reasons) if self.has_reason else (),
            text=tuple(self.text) if self.has_text else None,
        )
        self.tags, self.values, self.source, self.quality, self.reasons, self.text = [], [], [], [], [], []
        self.has_text = self.has_reason = False
        return batch
