"""Records: the one byte format for edgekit's data types, shared by the spool and the wire.

A record is a msgpack header plus raw little-endian array buffers — never pickle.

    blob := u32_le(len(header)) ‖ header (msgpack map) ‖ buffer_0 ‖ buffer_1 ‖ …

The header always has ``"v"`` (format version, 1), ``"kind"`` (``points``, ``waveform``,
``features``, ``event``, ``gap``) and ``"arrays"``: a list of ``[name, dtype, shape]`` whose
buffers follow in order (C order, little-endian; dtype strings like ``"<f4"``). The other header
keys are the type's scalar fields. :func:`unpack` is strict: unknown kinds or dtypes, sizes that do
not add up and trailing bytes raise :class:`~edgekit.errors.DecodeError`.

A *gap* record (``GapRecord``) tells upstream that sequence numbers were dropped on purpose
(quota) or lost (corrupt spool), with the count — losses are reported, never silent.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Union

import msgpack
import numpy as np

from .errors import DecodeError
from .types import Event, EventKind, FeatureFrame, PointBatch, Quality, Severity, WaveformBlock

__all__ = ["GapRecord", "Record", "kind_of", "pack", "unpack", "MAX_ARRAYS"]

FORMAT_VERSION = 1
MAX_ARRAYS = 16
_ALLOWED_DTYPES = {"<f4", "<f8", "|u1", "<u4", "<i8", "<u8", "<i4"}
_U32 = struct.Struct("<I")


@dataclass(frozen=True, slots=True)
class GapRecord:
    """``count`` records of ``stream`` (seq ``first_seq`` … ``last_seq``) will never arrive."""

    stream: str
    first_seq: int
    last_seq: int
    count: int
    reason: str
    ts: float


Record = Union[PointBatch, WaveformBlock, FeatureFrame, Event, GapRecord]


def kind_of(record: Record) -> str:
    if isinstance(record, PointBatch):
        return "points"
    if isinstance(record, WaveformBlock):
        return "waveform"
    if isinstance(record, FeatureFrame):
        return "features"
    if isinstance(record, Event):
        return "event"
    if isinstance(record, GapRecord):
        return "gap"
    raise TypeError(f"not an edgekit record: {type(record).__name__}")


def _le(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    return a


def pack(record: Record) -> bytes:
    """Encode a record into one blob (see module docstring)."""
    kind = kind_of(record)
    header: dict[str, Any] = {"v": FORMAT_VERSION, "kind": kind}
    arrays: list[tuple[str, np.ndarray]] = []
    if isinstance(record, PointBatch):
        header.update(device=record.device, tags=list(record.tags), reasons=list(record.reasons))
        header["text"] = None if record.text is None else list(record.text)
        arrays = [
            ("values", record.values), ("source_ts", record.source_ts),
            ("recv_ts", record.recv_ts), ("quality", record.quality),
        ]
    elif isinstance(record, WaveformBlock):
        header.update(
            asset=record.asset, fs=record.fs, t0=record.t0, seq=record.seq,
            channels=list(record.channels), units=list(record.units), speed_hz=record.speed_hz,
            quality=int(record.quality), reason=record.reason,
        )
        arrays = [("data", record.data)]
    elif isinstance(record, FeatureFrame):
        header.update(
            asset=record.asset, names=list(record.names), channels=list(record.channels),
            t0=record.t0, seq=record.seq, reasons=list(record.reasons),
        )
        arrays = [("values", record.values), ("quality", record.quality)]
    elif isinstance(record, Event):
        header.update(
            event=record.kind.value, source=record.source, message=record.message,
            severity=int(record.severity), ts=record.ts, data=record.data,
        )
    else:
        header.update(
            stream=record.stream, first_seq=record.first_seq, last_seq=record.last_seq,
            count=record.count, reason=record.reason, ts=record.ts,
        )
    arrs = [_le(a) for _, a in arrays]
    header["arrays"] = [[n, a.dtype.str, list(a.shape)] for (n, _), a in zip(arrays, arrs, strict=False)]
    head = msgpack.packb(header, use_bin_type=True, default=_default)
    return b"".join([_U32.pack(len(head)), head, *(a.tobytes() for a in arrs)])


def _default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot encode {type(obj).__name__} in a record header")


def unpack(blob: bytes | memoryview) -> Record:
    """Decode one blob; raises :class:`DecodeError` on anything malformed."""
    mv = memoryview(blob)
    if len(mv) < 4:
        raise DecodeError(f"record too short: {len(mv)} bytes")
    (hlen,) = _U32.unpack_from(mv, 0)
    if 4 + hlen > len(mv):
        raise DecodeError(f"record header length {hlen} exceeds blob size {len(mv)}")
    try:
        header = msgpack.unpackb(mv[4 : 4 + hlen], raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types for garbage
        raise DecodeError(f"record header is not valid msgpack: {exc}") from exc
    if not isinstance(header, dict) or header.get("v") != FORMAT_VERSION:
        raise DecodeError("record header is not a version-1 map")
    specs = header.get("arrays")
    if not isinstance(specs, list) or len(specs) > MAX_ARRAYS:
        raise DecodeError("record header has no valid 'arrays' list")
    offset = 4 + hlen
    arrays: dict[str, np.ndarray] = {}
    for spec in specs:
        if not (isinstance(spec, list) and len(spec) == 3):
            raise DecodeError(f"bad array spec {spec!r}")
        name, dtype, shape = spec
        if dtype not in _ALLOWED_DTYPES or not isinstance(shape, list) or len(shape) > 2:
            raise DecodeError(f"array {name!r}: unsupported dtype/shape {dtype!r} {shape!r}")
        if not all(isinstance(s, int) and 0 <= s < 2**31 for s in shape):
            raise DecodeError(f"array {name!r}: bad shape {shape!r}")
        dt = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
        if offset + nbytes > len(mv):
            raise DecodeError(f"array {name!r} needs {nbytes} bytes, blob too short")
        arrays[str(name)] = np.frombuffer(mv[offset : offset + nbytes], dtype=dt).reshape(shape).copy()
        offset += nbytes
    if offset != len(mv):
        raise DecodeError(f"{len(mv) - offset} trailing bytes after record")
    try:
        return _build(header, arrays)
    except (KeyError, TypeError, ValueError) as exc:
        raise DecodeError(f"{header.get('kind')!r} record is malformed: {exc!r}") from exc


def _build(h: dict[str, Any], a: dict[str, np.ndarray]) -> Record:
    kind = h["kind"]
    if kind == "points":
        return PointBatch(
            device=str(h["device"]), tags=tuple(h["tags"]), values=a["values"].astype(np.float64),
            source_ts=a["source_ts"].astype(np.float64), recv_ts=a["recv_ts"].astype(np.float64),
            quality=a["quality"].astype(np.uint8), reasons=tuple(h["reasons"]),
            text=None if h["text"] is None else tuple(h["text"]),
        )
    if kind == "waveform":
        return WaveformBlock(
            asset=str(h["asset"]), data=a["data"].astype(np.float32), fs=float(h["fs"]),
            t0=float(h["t0"]), seq=int(h["seq"]), channels=tuple(h["channels"]),
            units=tuple(h["units"]), speed_hz=h["speed_hz"], quality=Quality(h["quality"]),
            reason=str(h["reason"]),
        )
    if kind == "features":
        return FeatureFrame(
            asset=str(h["asset"]), values=a["values"].astype(np.float32), names=tuple(h["names"]),
            channels=tuple(h["channels"]), t0=float(h["t0"]), seq=int(h["seq"]),
            quality=a["quality"].astype(np.uint8), reasons=tuple(h["reasons"]),
        )
    if kind == "event":
        return Event(
            kind=EventKind(h["event"]), source=str(h["source"]), message=str(h["message"]),
            severity=Severity(h["severity"]), ts=float(h["ts"]), data=dict(h["data"]),
        )
    if kind == "gap":
        return GapRecord(
            stream=str(h["stream"]), first_seq=int(h["first_seq"]), last_seq=int(h["last_seq"]),
            count=int(h["count"]), reason=str(h["reason"]), ts=float(h["ts"]),
        )
    raise DecodeError(f"unknown record kind {kind!r}")
