"""The uplink wire protocol, version 2: message types, framing, compression and the strict decoder.

Contract (what a gateway and a collector of any version-2 implementation must do)
---------------------------------------------------------------------------------
Transport: the gateway's ZeroMQ DEALER connects to the collector's ROUTER (the ROUTER adds and
strips the routing-id frame; nothing below includes it). Every message is a multipart message::

    frame 0   b"EK2"                    protocol tag + version; anything else is rejected
    frame 1   msgpack map (the header)  ``{"t": <type>, ...}``; never pickle
    frame 2…  raw buffers               only DATA has them: one buffer per segment, in header order

Version 2 (this one) moves *segments* — runs of consecutive records of one stream and kind, exactly
as the spool stores them (:func:`edgekit.codec.pack_segment`) — instead of single records: the
gateway sends a stored segment as one frame without re-encoding it. Version 1 (one frame per
record) is not spoken any more: a version-1 peer gets ``malformed`` / "unsupported protocol
version" and is counted; upgrade collectors and gateways together.

Message types (header keys; all strings UTF-8, all integers ≥ 0 and < 2**63):

* ``HELLO``   gateway → collector. ``gw`` gateway id, ``ep`` spool epoch, ``fu`` map stream →
  first unacknowledged seq, ``cr`` credit asked for. Opens a *session*; a session is bound to one
  connection (one ROUTER routing id). DATA from a routing id without a session is answered with
  ``ERROR`` ``code="no_session"`` and not stored; the gateway then says HELLO again and resends.
* ``WELCOME`` collector → gateway. ``cr`` credit granted (most records in flight), ``mb`` largest
  message the collector accepts.
* ``DATA``    gateway → collector. ``gw``, ``ep``, ``r``: list of
  ``[stream, seq, count, kind, ts, enc, raw_len]``, one per segment, followed by one buffer per
  segment: the records ``seq`` … ``seq + count - 1``. The buffer (after decompression) is the
  segment blob: for ``count == 1`` the record blob as :func:`edgekit.codec.pack` wrote it, else a
  segment blob (:func:`edgekit.codec.segment_view` parses it; the collector checks it holds
  ``count`` records and NACKs it otherwise). ``enc`` 0 = as is; 1 = zstd of it; 2 = zstd of it with
  the bytes of every multi-byte array byte-shuffled (record and segment blobs share one outer
  layout — u32 header length, msgpack header with the array specs, arrays — so the receiver finds
  the arrays and un-shuffles). ``raw_len`` is the blob length before compression (a decompression
  bound). Within a session the gateway sends each stream's segments in increasing seq order; a
  segment may overlap records the collector already has (a resend of a partly acknowledged
  segment): only the records it does not have are stored.
* ``ACK``     collector → gateway, sent only after the records are durably committed. ``ep``, ``a``:
  map stream → seq, *cumulative per stream within the session*: every record of that stream the
  gateway sent in this session up to and including seq is stored (or was NACKed). This is sound
  because a session is one connection, ZeroMQ delivers a connection's messages in order without
  holes, and the gateway sends each stream in seq order.
* ``NACK``    collector → gateway. ``ep``, ``s`` stream, ``q`` seq, ``n`` count, ``why`` reason: the
  records ``q`` … ``q + n - 1`` can never be accepted (undecodable, unknown kind, a segment that
  does not hold what its header says); the gateway moves them to its dead-letter table and does
  not retry them. A NACK always precedes the ACK that covers its seqs.
* ``PING`` / ``PONG`` either direction. ``ts`` sender's clock; the answer echoes it (application
  heartbeat and round-trip time, on top of ZMTP heartbeats).
* ``ERROR``   collector → gateway. ``code`` (``no_session``: say HELLO again and resend;
  ``bad_gateway_id``: the header names another gateway than the authenticated key; ``revoked``:
  the key was removed from the allow-list; ``malformed``: the message was rejected), ``why`` text.

Delivery is at-least-once on the wire; the collector deduplicates by (gateway, stream, epoch, seq)
— per record, also inside segments — so each record is stored exactly once. The decoder is strict: wrong tag, wrong frame count, unknown
type, missing or mistyped keys, oversize messages or blobs, bad compression → :class:`DecodeError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, Union

import msgpack
import numpy as np
import zstandard

from ..errors import DecodeError

__all__ = [
    "MAX_RECORDS",
    "MAX_SEGMENT_RECORDS",
    "PROTOCOL",
    "Ack",
    "Compressor",
    "Data",
    "DataRecord",
    "Error",
    "Hello",
    "Limits",
    "Message",
    "Nack",
    "Ping",
    "Pong",
    "Welcome",
    "decode",
    "encode",
]

PROTOCOL = b"EK2"
MAX_RECORDS = 1024  # buffer frames (segments) per DATA message
MAX_SEGMENT_RECORDS = 1 << 20  # records in one segment
ENC_RAW, ENC_ZSTD, ENC_ZSTD_SHUFFLE = 0, 1, 2
_MAX_INT = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Limits:
    """Decoder limits; anything beyond them is a :class:`DecodeError`."""

    max_message_bytes: int = 16 << 20
    max_header_bytes: int = 1 << 20
    max_records: int = MAX_RECORDS


@dataclass(frozen=True, slots=True)
class Hello:
    gateway: str
    epoch: str
    first_unacked: dict[str, int]
    credit: int


@dataclass(frozen=True, slots=True)
class Welcome:
    credit: int
    max_message_bytes: int


@dataclass(frozen=True, slots=True)
class DataRecord:
    """One segment of a DATA message: records ``seq`` … ``seq + count - 1`` of ``stream``."""

    stream: str
    seq: int
    kind: str
    ts: float
    blob: bytes  # the segment blob (the record blob when count == 1), uncompressed
    count: int = 1

    @property
    def last_seq(self) -> int:
        return self.seq + self.count - 1


@dataclass(frozen=True, slots=True)
class Data:
    gateway: str
    epoch: str
    records: list[DataRecord]


@dataclass(frozen=True, slots=True)
class Ack:
    epoch: str
    acks: dict[str, int]


@dataclass(frozen=True, slots=True)
class Nack:
    epoch: str
    stream: str
    seq: int
    reason: str
    count: int = 1


@dataclass(frozen=True, slots=True)
class Ping:
    ts: float


@dataclass(frozen=True, slots=True)
class Pong:
    ts: float


ErrorCode = Literal["no_session", "bad_gateway_id", "revoked", "malformed"]


@dataclass(frozen=True, slots=True)
class Error:
    code: str
    reason: str


Message = Union[Hello, Welcome, Data, Ack, Nack, Ping, Pong, Error]


class _HasBuffer(Protocol):
    @property
    def buffer(self) -> memoryview: ...


FrameLike = Union[bytes, bytearray, memoryview, _HasBuffer]


# ---------------------------------------------------------------- compression


def _shuffle_regions(blob: bytes | memoryview) -> list[tuple[int, int, int]]:
    """(offset, nbytes, itemsize) of every multi-byte array in a codec blob (codec layout)."""
    mv = memoryview(blob)
    if len(mv) < 4:
        raise DecodeError("record blob too short")
    hlen = int.from_bytes(mv[:4], "little")
    if 4 + hlen > len(mv):
        raise DecodeError("record blob header length exceeds blob")
    try:
        head = msgpack.unpackb(mv[4 : 4 + hlen], raw=False, strict_map_key=True)
        specs = head["arrays"]
        regions = []
        offset = 4 + hlen
        for _name, dtype, shape in specs:
            itemsize = np.dtype(dtype).itemsize
            nbytes = int(np.prod(shape, dtype=np.int64)) * itemsize
            if itemsize > 1 and nbytes:
                regions.append((offset, nbytes, itemsize))
            offset += nbytes
    except DecodeError:
        raise
    except Exception as exc:  # garbage header: msgpack/numpy raise assorted types
        raise DecodeError(f"record blob header unusable for shuffle: {exc!r}") from exc
    if offset > len(mv):
        raise DecodeError("record blob arrays exceed blob")
    return regions


def _shuffle(blob: bytes, regions: list[tuple[int, int, int]], inverse: bool) -> bytes:
    out = bytearray(blob)
    for off, n, size in regions:
        a = np.frombuffer(blob, dtype=np.uint8, count=n, offset=off)
        if inverse:
            out[off : off + n] = a.reshape(size, n // size).T.tobytes()
        else:
            out[off : off + n] = a.reshape(n // size, size).T.tobytes()
    return bytes(out)


class Compressor:
    """Chooses per record whether zstd pays. ``mode``: ``none``, ``zstd`` or ``auto``.

    ``auto`` compresses blobs of at least 512 bytes and keeps the result only if it saves ≥ 10 %;
    after a miss for a kind it skips that kind's next 31 blobs (so incompressible data costs ~3 %
    of one compression attempt). ``zstd`` always tries and keeps any saving.
    """

    def __init__(self, mode: str = "auto", level: int = 1) -> None:
        if mode not in ("none", "zstd", "auto"):
            raise ValueError(f"compression {mode!r} is not one of none, zstd, auto")
        self.mode = mode
        self._cctx = zstandard.ZstdCompressor(level=level)
        self._skip: dict[str, int] = {}
        self.raw_bytes = 0
        self.wire_bytes = 0

    def encode(self, kind: str, blob: bytes) -> tuple[int, bytes]:
        enc, out = self._encode(kind, blob)
        self.raw_bytes += len(blob)
        self.wire_bytes += len(out)
        return enc, out

    def _encode(self, kind: str, blob: bytes) -> tuple[int, bytes]:
        if self.mode == "none" or len(blob) < (64 if self.mode == "zstd" else 512):
            return ENC_RAW, blob
        if self.mode == "auto" and self._skip.get(kind, 0) > 0:
            self._skip[kind] -= 1
            return ENC_RAW, blob
        try:
            regions = _shuffle_regions(blob)
        except DecodeError:
            regions = []
        enc = ENC_ZSTD_SHUFFLE if regions else ENC_ZSTD
        packed = self._cctx.compress(_shuffle(blob, regions, False) if regions else blob)
        need = len(blob) * (0.9 if self.mode == "auto" else 1.0)
        if len(packed) < need:
            return enc, packed
        if self.mode == "auto":
            self._skip[kind] = 31
        return ENC_RAW, blob


_DCTX = zstandard.ZstdDecompressor()


def _decompress(enc: int, payload: memoryview, raw_len: int) -> bytes:
    if enc == ENC_RAW:
        if len(payload) != raw_len:
            raise DecodeError(f"raw record is {len(payload)} bytes, header says {raw_len}")
        return bytes(payload)
    try:
        out = _DCTX.decompress(payload, max_output_size=raw_len)
    except zstandard.ZstdError as exc:
        raise DecodeError(f"bad zstd record: {exc}") from exc
    if len(out) != raw_len:
        raise DecodeError(f"zstd record decompressed to {len(out)} bytes, header says {raw_len}")
    if enc == ENC_ZSTD_SHUFFLE:
        out = _shuffle(out, _shuffle_regions(out), True)
    return out


# ---------------------------------------------------------------- encode


def _pack(header: dict[str, Any]) -> bytes:
    return msgpack.packb(header, use_bin_type=True)  # type: ignore[no-any-return]


def encode(msg: Message, compressor: Compressor | None = None) -> list[bytes]:
    """The frames of one message (without the ROUTER routing id)."""
    if isinstance(msg, Data):
        comp = compressor or _NO_COMPRESSION
        rows, bufs = [], []
        for r in msg.records:
            enc, payload = comp.encode(r.kind, r.blob)
            rows.append([r.stream, r.seq, r.count, r.kind, r.ts, enc, len(r.blob)])
            bufs.append(payload)
        return [PROTOCOL, _pack({"t": "DATA", "gw": msg.gateway, "ep": msg.epoch, "r": rows}), *bufs]
    if isinstance(msg, Hello):
        h: dict[str, Any] = {"t": "HELLO", "gw": msg.gateway, "ep": msg.epoch,
                             "fu": dict(msg.first_unacked), "cr": msg.credit}
    elif isinstance(msg, Welcome):
        h = {"t": "WELCOME", "cr": msg.credit, "mb": msg.max_message_bytes}
    elif isinstance(msg, Ack):
        h = {"t": "ACK", "ep": msg.epoch, "a": dict(msg.acks)}
    elif isinstance(msg, Nack):
        h = {"t": "NACK", "ep": msg.epoch, "s": msg.stream, "q": msg.seq, "n": msg.count, "why": msg.reason}
    elif isinstance(msg, Ping):
        h = {"t": "PING", "ts": msg.ts}
    elif isinstance(msg, Pong):
        h = {"t": "PONG", "ts": msg.ts}
    elif isinstance(msg, Error):
        h = {"t": "ERROR", "code": msg.code, "why": msg.reason}
    else:
        raise TypeError(f"not a protocol message: {type(msg).__name__}")
    return [PROTOCOL, _pack(h)]


_NO_COMPRESSION = Compressor("none")


# ---------------------------------------------------------------- decode


def _mv(frame: FrameLike) -> memoryview:
    if isinstance(frame, (bytes, bytearray, memoryview)):
        return memoryview(frame)
    return frame.buffer


def _get(h: dict[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    if key not in h:
        raise DecodeError(f"{what}: header key {key!r} missing")
    v = h[key]
    if not isinstance(v, kind) or isinstance(v, bool):
        raise DecodeError(f"{what}: header key {key!r} has wrong type {type(v).__name__}")
    return v


def _text(h: dict[str, Any], key: str, what: str, max_len: int = 256) -> str:
    v: str = _get(h, key, str, what)
    if len(v) > max_len:
        raise DecodeError(f"{what}: {key!r} longer than {max_len} characters")
    return v


def _uint(v: Any, what: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= _MAX_INT:
        raise DecodeError(f"{what}: {v!r} is not an integer in 0..2**63-1")
    return v


def _seq_map(h: dict[str, Any], key: str, what: str) -> dict[str, int]:
    m = _get(h, key, dict, what)
    if len(m) > 4096:
        raise DecodeError(f"{what}: more than 4096 streams")
    out = {}
    for k, v in m.items():
        if not isinstance(k, str) or len(k) > 256:
            raise DecodeError(f"{what}: stream name {k!r} is not a short string")
        out[k] = _uint(v, f"{what} stream {k!r}")
    return out


def _number(h: dict[str, Any], key: str, what: str) -> float:
    return float(_get(h, key, (int, float), what))


def decode(frames: Sequence[FrameLike], limits: Limits = Limits()) -> Message:
    """Parse one message (without routing id); raises :class:`DecodeError` on anything malformed."""
    if len(frames) < 2:
        raise DecodeError(f"message has {len(frames)} frames, needs at least 2")
    if len(frames) > limits.max_records + 2:
        raise DecodeError(f"message has {len(frames)} frames, limit {limits.max_records + 2}")
    views = [_mv(f) for f in frames]
    total = sum(v.nbytes for v in views)
    if total > limits.max_message_bytes:
        raise DecodeError(f"message is {total} bytes, limit {limits.max_message_bytes}")
    tag = views[0].tobytes()
    if tag != PROTOCOL:
        if tag[:2] == b"EK":
            raise DecodeError(f"unsupported protocol version {tag!r} (this side speaks {PROTOCOL!r})")
        raise DecodeError(f"not an edgekit uplink message (tag {tag[:8]!r})")
    if views[1].nbytes > limits.max_header_bytes:
        raise DecodeError(f"header is {views[1].nbytes} bytes, limit {limits.max_header_bytes}")
    try:
        h = msgpack.unpackb(views[1], raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types for garbage
        raise DecodeError(f"header is not valid msgpack: {exc}") from exc
    if not isinstance(h, dict):
        raise DecodeError("header is not a map")
    t = h.get("t")
    nbuf = len(views) - 2
    if t != "DATA" and nbuf:
        raise DecodeError(f"{t!r} message carries {nbuf} unexpected buffer frames")
    if t == "DATA":
        return _decode_data(h, views[2:], limits)
    if t == "HELLO":
        credit = _uint(_get(h, "cr", int, "HELLO"), "HELLO credit")
        return Hello(_text(h, "gw", "HELLO"), _text(h, "ep", "HELLO"), _seq_map(h, "fu", "HELLO"), credit)
    if t == "WELCOME":
        return Welcome(_uint(_get(h, "cr", int, "WELCOME"), "WELCOME credit"),
                       _uint(_get(h, "mb", int, "WELCOME"), "WELCOME max bytes"))
    if t == "ACK":
        return Ack(_text(h, "ep", "ACK"), _seq_map(h, "a", "ACK"))
    if t == "NACK":
        count = _uint(_get(h, "n", int, "NACK"), "NACK count")
        if count < 1:
            raise DecodeError("NACK: count must be >= 1")
        return Nack(_text(h, "ep", "NACK"), _text(h, "s", "NACK"),
                    _uint(_get(h, "q", int, "NACK"), "NACK seq"), _text(h, "why", "NACK", 4096), count)
    if t == "PING":
        return Ping(_number(h, "ts", "PING"))
    if t == "PONG":
        return Pong(_number(h, "ts", "PONG"))
    if t == "ERROR":
        return Error(_text(h, "code", "ERROR"), _text(h, "why", "ERROR", 4096))
    raise DecodeError(f"unknown message type {t!r}")


def _decode_data(h: dict[str, Any], bufs: list[memoryview], limits: Limits) -> Data:
    gw, ep = _text(h, "gw", "DATA"), _text(h, "ep", "DATA")
    rows = _get(h, "r", list, "DATA")
    if not rows:
        raise DecodeError("DATA carries no records")
    if len(rows) != len(bufs):
        raise DecodeError(f"DATA header lists {len(rows)} records but {len(bufs)} buffers follow")
    records = []
    for i, (row, buf) in enumerate(zip(rows, bufs, strict=True)):
        what = f"DATA record {i}"
        if not isinstance(row, list) or len(row) != 7:
            raise DecodeError(f"{what}: expected [stream, seq, count, kind, ts, enc, raw_len]")
        stream, seq, count, kind, ts, enc, raw_len = row
        if not isinstance(stream, str) or not stream or len(stream) > 256:
            raise DecodeError(f"{what}: stream {stream!r} is not a non-empty short string")
        if not isinstance(kind, str) or len(kind) > 32:
            raise DecodeError(f"{what}: kind {kind!r} is not a short string")
        if not isinstance(ts, (int, float)) or isinstance(ts, bool):
            raise DecodeError(f"{what}: ts {ts!r} is not a number")
        if enc not in (ENC_RAW, ENC_ZSTD, ENC_ZSTD_SHUFFLE) or isinstance(enc, bool):
            raise DecodeError(f"{what}: unknown encoding {enc!r}")
        raw_len = _uint(raw_len, f"{what} raw_len")
        if raw_len > limits.max_message_bytes:
            raise DecodeError(f"{what}: raw_len {raw_len} exceeds {limits.max_message_bytes}")
        seq = _uint(seq, f"{what} seq")
        count = _uint(count, f"{what} count")
        if not 1 <= count <= MAX_SEGMENT_RECORDS or seq + count - 1 > _MAX_INT:
            raise DecodeError(f"{what}: count {count} outside 1..{MAX_SEGMENT_RECORDS} or past the last seq")
        blob = _decompress(enc, buf, raw_len)
        records.append(DataRecord(stream, seq, kind, float(ts), blob, count))
    return Data(gw, ep, records)

