"""Records: the one byte format for edgekit's data types, shared by the spool and the wire.

A record is a msgpack header plus raw little-endian array buffers — never pickle.

    blob := u32_le(len(header)) ‖ header (msgpack map) ‖ buffer_0 ‖ buffer_1 ‖ …

The header always has ``"v"`` (format version, 1), ``"kind"`` (``points``, ``waveform``,
``features``, ``event``, ``gap``) and ``"arrays"``: a list of ``[name, dtype, shape]`` whose
buffers follow in order (C order, little-endian; dtype strings like ``"<f4"``). The other header
keys are the type's scalar fields. :func:`unpack` is strict: unknown kinds or dtypes, sizes that do
not add up and trailing bytes raise :class:`~edgekit.errors.DecodeError`.

A *segment* (:func:`pack_segment`, :func:`segment_view`, :func:`segment_blobs`, :func:`unpack_segment`)
is a run of consecutive records of one stream and kind in one blob — the spool's unit of storage and
the wire's unit of transfer; its layout is described above :func:`pack_segment`.

A *gap* record (``GapRecord``) tells upstream that sequence numbers were dropped on purpose
(quota) or lost (corrupt spool), with the count — losses are reported, never silent.
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Union

import msgpack
import numpy as np

from .errors import DecodeError
from .types import Event, EventKind, FeatureFrame, PointBatch, Quality, Severity, WaveformBlock

__all__ = [
    "MAX_ARRAYS",
    "SEGMENT_LAYOUTS",
    "GapRecord",
    "Record",
    "StackedFeatures",
    "kind_of",
    "pack",
    "pack_segment",
    "read_header",
    "segment_blobs",
    "segment_view",
    "unpack",
    "unpack_segment",
]

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


def read_header(mv: memoryview, what: str = "record") -> tuple[Any, int]:
    """The msgpack header of a record or segment blob (any msgpack value: callers check its shape)
    and its length; raises :class:`DecodeError` naming ``what`` when the framing is malformed."""
    if len(mv) < 4:
        raise DecodeError(f"{what} too short: {len(mv)} bytes")
    (hlen,) = _U32.unpack_from(mv, 0)
    if 4 + hlen > len(mv):
        raise DecodeError(f"{what} header length {hlen} exceeds blob size {len(mv)}")
    try:
        return msgpack.unpackb(mv[4 : 4 + hlen], raw=False, strict_map_key=True), hlen
    except Exception as exc:  # msgpack raises several unrelated types for garbage
        raise DecodeError(f"{what} header is not valid msgpack: {exc}") from exc


def unpack(blob: bytes | memoryview) -> Record:
    """Decode one blob; raises :class:`DecodeError` on anything malformed."""
    mv = memoryview(blob)
    header, hlen = read_header(mv, "record")
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


# ---------------------------------------------------------------- segments
#
# A *segment* is ``count`` consecutive records of one stream and kind stored and sent as one blob
# (the spool's row, one wire frame). ``count`` travels beside the blob (spool row, DATA header):
#
# * ``count == 1``: the blob IS the record blob (``pack`` output) — single appends and format-1 rows.
# * ``count > 1``: a blob in the same outer layout as a record (``u32_le(len(header)) ‖ msgpack header
#   ‖ arrays``), header ``{"v": 1, "kind": "segment", "layout": …, "n": count, "arrays": …}``:
#
#   ``layout = "concat"``: arrays ``lengths <u4 [n]`` and ``data |u1 [sum(lengths)]`` — the records'
#   blobs back to back, each exactly as admitted (any kind, any content).
#
#   ``layout = "features"`` (stacked FeatureFrames): header also has ``asset``, ``names``, ``channels``,
#   ``reasons`` (shared by every frame), arrays ``t0 <f8 [n]``, ``seq <i8 [n]`` (the frames' block
#   seq), ``values <f4 [n, C, F]``, ``quality |u1 [n, C]``. Written only when every record blob is
#   the canonical ``pack`` output of a FeatureFrame and all of them are byte-identical except t0 (a
#   msgpack float64) and seq — so re-packing each frame gives back exactly the admitted bytes
#   (:func:`segment_blobs`), and a reader gets all frames with one header parse and no per-record work.
#
# Because the arrays follow the record layout, the wire's byte-shuffle compression finds them as it
# finds a record's arrays.

SEGMENT_LAYOUTS = ("concat", "features")
_FEATURE_KEYS = ("v", "kind", "asset", "names", "channels", "t0", "seq", "reasons", "arrays")
_PACKER = msgpack.Packer(use_bin_type=True)


def _template(blob: bytes) -> tuple[bytes, bytes, int, int, FeatureFrame] | None:
    """For a canonical FeatureFrame blob: (header prefix up to t0's value, header suffix after seq,
    channels, features, the frame) — or None when the blob is not in the exact ``pack`` layout."""
    try:
        rec = unpack(blob)
    except DecodeError:
        return None
    if not isinstance(rec, FeatureFrame) or pack(rec) != bytes(blob):
        return None
    c, f = rec.values.shape
    prefix = b"".join([
        _PACKER.pack_map_header(len(_FEATURE_KEYS)), _PACKER.pack("v"), _PACKER.pack(FORMAT_VERSION),
        _PACKER.pack("kind"), _PACKER.pack("features"), _PACKER.pack("asset"), _PACKER.pack(rec.asset),
        _PACKER.pack("names"), _PACKER.pack(list(rec.names)), _PACKER.pack("channels"),
        _PACKER.pack(list(rec.channels)), _PACKER.pack("t0"), b"\xcb"])
    (hlen,) = _U32.unpack_from(blob, 0)
    head = bytes(blob[4:4 + hlen])
    if not head.startswith(prefix):  # pragma: no cover - pack() writes exactly this prefix
        return None
    rest = head[len(prefix) + 8:]
    if not rest.startswith(b"\xa3seq"):  # pragma: no cover
        return None
    _seq, used = _read_int(rest, 4)
    if _seq is None:
        return None
    return prefix, rest[4 + used:], c, f, rec


def _read_int(b: bytes, i: int) -> tuple[int | None, int]:
    """A msgpack integer at ``b[i]``: (value, bytes used); (None, 0) if it is not one or not int64."""
    if i >= len(b):
        return None, 0
    t = b[i]
    if t <= 0x7F:
        return t, 1
    if t >= 0xE0:
        return t - 0x100, 1
    width = {0xCC: (1, "B"), 0xCD: (2, "H"), 0xCE: (4, "I"), 0xCF: (8, "Q"),
             0xD0: (1, "b"), 0xD1: (2, "h"), 0xD2: (4, "i"), 0xD3: (8, "q")}.get(t)
    if width is None or i + 1 + width[0] > len(b):
        return None, 0
    (v,) = struct.unpack_from(">" + width[1], b, i + 1)
    if v >= 2**63:
        return None, 0
    return int(v), 1 + width[0]


_F8 = struct.Struct(">d")


_Template = tuple[bytes, bytes, int, int, FeatureFrame]
_TEMPLATES: list[_Template] = []  # the last few templates seen (a gateway has few feature streams)


def _known_template(blob: bytes) -> _Template | None:
    """A template of :data:`_TEMPLATES` that ``blob`` matches exactly (else None): same header bytes
    but t0 and seq, seq canonically encoded, sizes adding up — what :func:`_template` would accept
    for it (it was built from a blob that passed the full unpack/pack round trip)."""
    if type(blob) is not bytes or len(blob) < 4:
        return None
    for tpl in _TEMPLATES:
        prefix, suffix, c, f, _first = tpl
        if not blob.startswith(prefix, 4):
            continue
        (hlen,) = _U32.unpack_from(blob, 0)
        s0 = 4 + len(prefix) + 8  # "seq" key, then its integer
        if not blob.startswith(b"\xa3seq", s0):
            return None
        seq, used = _read_int(blob, s0 + 4)
        if seq is None or _PACKER.pack(seq) != blob[s0 + 4:s0 + 4 + used]:
            return None
        rest = s0 + 4 + used
        if rest + len(suffix) != 4 + hlen or not blob.startswith(suffix, rest) \
                or len(blob) != 4 + hlen + 4 * c * f + c:
            return None
        return tpl
    return None


def _stack_features(blobs: Sequence[bytes]) -> bytes | None:
    """The stacked ``features`` segment of ``blobs``, or None when they do not all share one template."""
    tpl = _known_template(blobs[0])
    if tpl is None:
        tpl = _template(blobs[0])
        if tpl is None:
            return None
        _TEMPLATES.insert(0, tpl)
        del _TEMPLATES[8:]
    prefix, suffix, c, f, first = tpl
    plen, slen, nval = len(prefix), len(suffix), 4 * c * f
    n = len(blobs)
    header = {"v": FORMAT_VERSION, "kind": "segment", "layout": "features", "n": n, "asset": first.asset,
              "names": list(first.names), "channels": list(first.channels), "reasons": list(first.reasons),
              "arrays": [["t0", "<f8", [n]], ["seq", "<i8", [n]], ["values", "<f4", [n, c, f]],
                         ["quality", "|u1", [n, c]]]}
    head = msgpack.packb(header, use_bin_type=True)
    # runs of equally long blobs (one run, or a few where the seq's msgpack width grows: 128, 256,
    # 65536 …) are checked and taken apart with one vectorised pass each
    lengths = np.fromiter(map(len, blobs), np.int64, count=n)
    cuts = np.flatnonzero(lengths[1:] != lengths[:-1]) + 1
    if len(cuts) < _MAX_RUNS:
        return _stack_runs(blobs, [0, *cuts.tolist(), n], prefix, suffix, c, nval, _U32.pack(len(head)) + head)
    t0s: list[float] = []
    seqs: list[int] = []
    values: list[bytes | memoryview] = []
    quality: list[bytes | memoryview] = []
    for blob in blobs:
        mv = memoryview(blob)
        if len(mv) < 4:
            return None
        (hlen,) = _U32.unpack_from(mv, 0)
        end = 4 + hlen
        # header = prefix ‖ f8 t0 ‖ "seq" ‖ int ‖ suffix, then values and quality, nothing more
        if end + nval + c != len(mv) or mv[4:4 + plen] != prefix or mv[end - slen:end] != suffix:
            return None
        if mv[4 + plen + 8:4 + plen + 12] != b"\xa3seq":
            return None
        rec_head = mv[4:end]
        seq, used = _read_int(bytes(rec_head[plen + 12:hlen - slen]), 0)
        if seq is None or plen + 12 + used != hlen - slen:
            return None
        t0s.append(_F8.unpack_from(rec_head, plen)[0])
        seqs.append(seq)
        values.append(mv[end:end + nval])
        quality.append(mv[end + nval:])
    return b"".join([_U32.pack(len(head)), head, np.array(t0s, "<f8").tobytes(), np.array(seqs, "<i8").tobytes(),
                     *values, *quality])


_INT_DTYPES = {0xCC: ">u1", 0xCD: ">u2", 0xCE: ">u4", 0xCF: ">u8", 0xD0: ">i1", 0xD1: ">i2", 0xD2: ">i4", 0xD3: ">i8"}


_MAX_RUNS = 16  # more runs of equal blob sizes than this: the record-by-record path
_SCRATCH_MAX = 16 << 20  # larger segments use fresh buffers instead of keeping this much around


class _Scratch:
    """Buffers reused by :func:`_stack_runs` (a small pool, one per concurrent caller). A segment of
    a few hundred frames is ≈ 1 MB, and a fresh buffer that large is fresh pages (page faults,
    costly on virtual machines) at every call: with these, the returned bytes are the only new
    large allocation."""

    def __init__(self) -> None:
        self.joined = io.BytesIO()
        self.joined_size = 0
        self.out = np.empty(0, np.uint8)

    def buffers(self, joined: int, out: int) -> tuple[io.BytesIO, np.ndarray]:
        """A BytesIO holding at least ``joined`` bytes (written from offset 0) and ``out`` bytes of array."""
        if self.joined_size < joined:
            self.joined_size = max(joined, 2 * self.joined_size)
            self.joined = io.BytesIO(bytes(self.joined_size))
        if self.out.shape[0] < out:
            self.out = np.empty(max(out, 2 * self.out.shape[0]), np.uint8)
        return self.joined, self.out[:out]


_POOL: list[_Scratch] = []  # list.pop/append are atomic: threads never share a _Scratch


def _stack_runs(blobs: Sequence[bytes], bounds: list[int], prefix: bytes, suffix: bytes, c: int, nval: int,
                head: bytes) -> bytes | None:
    """The stacked segment (``head``: its u32 length and msgpack header) of canonical frame blobs
    sharing one template, equally long within each run ``bounds[i]`` … ``bounds[i + 1]``; or None."""
    n = len(blobs)
    h = len(head)
    total = h + (16 + nval + c) * n
    joined_max = max((b - a) * len(blobs[a]) for a, b in zip(bounds, bounds[1:], strict=False))
    pooled = total <= _SCRATCH_MAX and joined_max <= _SCRATCH_MAX
    try:
        scratch = _POOL.pop() if pooled else _Scratch()
    except IndexError:
        scratch = _Scratch()
    joined, out = scratch.buffers(joined_max, total)
    try:
        out[:h] = np.frombuffer(head, np.uint8)
        t0s = out[h:h + 8 * n].reshape(n, 8)
        seqs = out[h + 8 * n:h + 16 * n].reshape(n, 8)
        values = out[h + 16 * n:h + (16 + nval) * n].reshape(n, nval)
        quality = out[h + (16 + nval) * n:].reshape(n, c)
        for a, b in zip(bounds, bounds[1:], strict=False):
            joined.seek(0)
            joined.writelines(blobs[a:b])
            mv = joined.getbuffer()
            try:
                ok = _stack_run(mv, b - a, len(blobs[a]), prefix, suffix, c, nval,
                                t0s[a:b], seqs[a:b], values[a:b], quality[a:b])
            finally:
                try:
                    mv.release()
                except BufferError:  # pragma: no cover - an array still holds the buffer: do not reuse it
                    pooled = False
            if not ok:
                return None
        return out.tobytes()
    finally:
        if pooled and len(_POOL) < 4:
            _POOL.append(scratch)


def _stack_run(joined: memoryview, n: int, size: int, prefix: bytes, suffix: bytes, c: int, nval: int,
               t0s: np.ndarray, seqs: np.ndarray, values: np.ndarray, quality: np.ndarray) -> bool:
    """Check ``n`` equally long blobs (``joined``, back to back) and write their t0, seq (as ``(n, 8)``
    little-endian bytes), values and quality into the given rows; False if they do not fit the template."""
    if size < 4:
        return False
    (hlen,) = _U32.unpack_from(joined, 0)
    end, plen, slen = 4 + hlen, len(prefix), len(suffix)
    s0 = 4 + plen + 8  # "seq" key, then its integer
    if end + nval + c != size or end - slen < s0 + 5:  # sizes as the template's, a seq of >= 1 byte
        return False
    buf = np.frombuffer(joined, np.uint8, count=n * size).reshape(n, size)
    if not ((buf[:, :4] == buf[0, :4]).all() and (buf[:, 4:4 + plen] == np.frombuffer(prefix, np.uint8)).all()
            and (buf[:, s0:s0 + 4] == np.frombuffer(b"\xa3seq", np.uint8)).all()
            and (buf[:, end - slen:end] == np.frombuffer(suffix, np.uint8)).all()):
        return False
    width = end - slen - (s0 + 4)  # bytes of the seq integer, type byte included
    kinds = buf[:, s0 + 4]
    if width == 1:  # fixints: the type byte is the value (0x00-0x7F: 0…127, 0xE0-0xFF: -32…-1)
        seq = kinds.astype("<i8")
        if ((seq > 0x7F) & (seq < 0xE0)).any():
            return False
        seq[seq >= 0xE0] -= 0x100
    else:
        dt = _INT_DTYPES.get(int(kinds[0]))
        if dt is None or np.dtype(dt).itemsize != width - 1 or not (kinds == kinds[0]).all():
            return False
        raw = np.ascontiguousarray(buf[:, s0 + 5:s0 + 4 + width]).view(dt).ravel()
        if dt == ">u8" and (raw >= 2**63).any():
            return False
        seq = raw.astype("<i8")
    seqs[:] = seq.view(np.uint8).reshape(n, 8)
    t0s[:] = buf[:, 4 + plen:4 + plen + 8][:, ::-1]  # a msgpack float64 is big-endian: reversed, little-endian
    values[:] = buf[:, end:end + nval]
    quality[:] = buf[:, end + nval:]
    return True


def pack_segment(blobs: Sequence[bytes], kind: str) -> bytes:
    """One segment blob for ``blobs`` (consecutive records of one stream and ``kind``; see above)."""
    if not blobs:
        raise ValueError("a segment holds at least one record")
    if len(blobs) == 1:
        return bytes(blobs[0])
    if kind == "features":
        stacked = _stack_features(blobs)
        if stacked is not None:
            return stacked
    lengths = np.fromiter((len(b) for b in blobs), dtype="<u4", count=len(blobs))
    header = {"v": FORMAT_VERSION, "kind": "segment", "layout": "concat", "n": len(blobs),
              "arrays": [["lengths", "<u4", [len(blobs)]], ["data", "|u1", [int(lengths.sum(dtype=np.int64))]]]}
    head = msgpack.packb(header, use_bin_type=True)
    return b"".join([_U32.pack(len(head)), head, lengths.tobytes(), *blobs])


@dataclass(frozen=True, slots=True)
class StackedFeatures:
    """A ``features`` segment as arrays (views into the blob): frame ``i`` is
    ``FeatureFrame(asset, values[i], names, channels, t0[i], seq[i], quality[i], reasons)``."""

    asset: str
    names: tuple[str, ...]
    channels: tuple[str, ...]
    reasons: tuple[str, ...]
    t0: np.ndarray
    seq: np.ndarray
    values: np.ndarray
    quality: np.ndarray

    def __len__(self) -> int:
        return int(self.t0.shape[0])

    def frame(self, i: int) -> FeatureFrame:
        return FeatureFrame(asset=self.asset, values=self.values[i].copy(), names=self.names,
                            channels=self.channels, t0=float(self.t0[i]), seq=int(self.seq[i]),
                            quality=self.quality[i].copy(), reasons=self.reasons)


def segment_view(blob: bytes | memoryview, count: int) -> StackedFeatures | list[memoryview]:
    """Parse a segment: a :class:`StackedFeatures`, or the ``count`` record blobs (views, not decoded).

    Strict about the segment's own structure (DecodeError); the records inside a ``concat`` segment
    are returned as they are — decode them with :func:`unpack`.
    """
    mv = memoryview(blob)
    if not isinstance(count, int) or count < 1:
        raise DecodeError(f"segment count {count!r} is not a positive integer")
    if count == 1:
        return [mv]
    h, hlen = read_header(mv, "segment")
    if not isinstance(h, dict) or h.get("v") != FORMAT_VERSION or h.get("kind") != "segment":
        raise DecodeError("segment header is not a version-1 segment map")
    if h.get("n") != count:
        raise DecodeError(f"segment holds {h.get('n')!r} records, its row/header says {count}")
    layout = h.get("layout")
    offset = 4 + hlen
    arrays: dict[str, np.ndarray] = {}
    want = {"concat": (("lengths", "<u4", 1), ("data", "|u1", 1)),
            "features": (("t0", "<f8", 1), ("seq", "<i8", 1), ("values", "<f4", 3), ("quality", "|u1", 2))}.get(
        layout if isinstance(layout, str) else "")
    specs = h.get("arrays")
    if want is None or not isinstance(specs, list) or len(specs) != len(want):
        raise DecodeError(f"segment layout {layout!r} / arrays {specs!r} not understood")
    for spec, (name, dtype, ndim) in zip(specs, want, strict=True):
        if not (isinstance(spec, list) and len(spec) == 3 and spec[0] == name and spec[1] == dtype
                and isinstance(spec[2], list) and len(spec[2]) == ndim
                and all(type(s) is int and 0 <= s < 2**31 for s in spec[2])):
            raise DecodeError(f"segment array spec {spec!r} is not [{name!r}, {dtype!r}, <{ndim} dims>]")
        dt = np.dtype(dtype)
        nbytes = math.prod(spec[2]) * dt.itemsize  # exact (no int64 wrap-around)
        if offset + nbytes > len(mv):
            raise DecodeError(f"segment array {name!r} needs {nbytes} bytes, blob too short")
        arrays[name] = np.frombuffer(mv, dtype=dt, count=nbytes // dt.itemsize, offset=offset).reshape(spec[2])
        offset += nbytes
    if offset != len(mv):
        raise DecodeError(f"{len(mv) - offset} trailing bytes after segment")
    if layout == "concat":
        lengths = arrays["lengths"]
        if lengths.shape[0] != count or int(lengths.sum(dtype=np.int64)) != arrays["data"].shape[0]:
            raise DecodeError("segment lengths do not add up to its data")
        start = 4 + hlen + 4 * count
        out = []
        for n in lengths.tolist():
            out.append(mv[start:start + n])
            start += n
        return out
    t0, seq, values, quality = arrays["t0"], arrays["seq"], arrays["values"], arrays["quality"]
    lists = [h.get("names"), h.get("channels"), h.get("reasons")]
    if not (isinstance(h.get("asset"), str)
            and all(isinstance(x, list) and all(isinstance(s, str) for s in x) for x in lists)):
        raise DecodeError("stacked features segment: asset/names/channels/reasons are not strings")
    names, channels, reasons = (tuple(x) for x in lists)  # type: ignore[arg-type]  # checked above
    c, f = values.shape[1], values.shape[2]
    if t0.shape[0] != count or seq.shape[0] != count or values.shape[0] != count \
            or quality.shape != (count, c) or len(names) != f or len(channels) != c or len(reasons) not in (0, c):
        raise DecodeError("stacked features segment: shapes or names do not match")
    return StackedFeatures(h["asset"], names, channels, reasons, t0, seq, values, quality)


def segment_blobs(blob: bytes | memoryview, count: int) -> list[bytes]:
    """The ``count`` record blobs of a segment, byte for byte as they were admitted."""
    view = segment_view(blob, count)
    if isinstance(view, StackedFeatures):
        return [pack(view.frame(i)) for i in range(len(view))]
    return [bytes(b) for b in view]


def unpack_segment(blob: bytes | memoryview, count: int) -> list[Record]:
    """Decode every record of a segment (strict, like :func:`unpack`)."""
    view = segment_view(blob, count)
    if isinstance(view, StackedFeatures):
        return [view.frame(i) for i in range(len(view))]
    return [unpack(b) for b in view]
