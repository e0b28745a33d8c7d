"""Reading a FeatureFrame record's parts straight from its bytes, without building numpy arrays.

The collector stores a frame's values as the float32 little-endian bytes the gateway packed
(:mod:`edgekit.codec`), so decoding them into an array and encoding them again is wasted work.
:func:`features_view` accepts only the exact canonical layout that ``codec.pack`` writes for a
FeatureFrame — header ``v`` 1, kind ``features``, arrays ``[["values", "<f4", [C, F]], ["quality",
"|u1", [C]]]``, F names, C channels, 0 or C reasons, all strings, sizes adding up to the blob with no
trailing byte — and returns ``None`` for anything else, so the caller falls back to the strict
:func:`edgekit.codec.unpack` (which then accepts or rejects it exactly as before). For canonical
blobs the parts are byte-for-byte what ``unpack`` would give.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..codec import read_header
from ..errors import DecodeError

__all__ = ["FrameParts", "features_view"]

_KEYS = frozenset({"v", "kind", "asset", "names", "channels", "t0", "seq", "reasons", "arrays"})


@dataclass(frozen=True, slots=True)
class FrameParts:
    """A FeatureFrame as stored: ``values`` (C, F) float32 LE bytes, ``quality`` one byte per channel."""

    asset: str
    seq: int
    t0: float
    names: tuple[str, ...]
    channels: tuple[str, ...]
    reasons: tuple[str, ...]
    values: bytes
    quality: bytes
    n_channels: int
    n_features: int
    spool_seq: int = 0  # the record's seq in its stream (set by the store for the segments layout)


def _strs(items: object) -> tuple[str, ...] | None:
    if not isinstance(items, list):
        return None
    try:
        "".join(items)  # raises TypeError unless every element is a str (checked in C)
    except TypeError:
        return None
    return tuple(items)


def features_view(blob: bytes | memoryview) -> FrameParts | None:
    """The parts of a canonical FeatureFrame blob, or ``None`` (use ``codec.unpack`` instead)."""
    mv = memoryview(blob)
    try:
        h, hlen = read_header(mv)
    except DecodeError:  # garbage: let codec.unpack produce the error message
        return None
    if not isinstance(h, dict) or h.keys() != _KEYS or h["v"] != 1 or h["kind"] != "features":
        return None
    arrays, asset, seq, t0 = h["arrays"], h["asset"], h["seq"], h["t0"]
    if not (isinstance(arrays, list) and len(arrays) == 2 and isinstance(asset, str)
            and type(seq) is int and type(t0) in (int, float)):
        return None
    spec_v, spec_q = arrays
    if not (isinstance(spec_v, list) and len(spec_v) == 3 and spec_v[0] == "values" and spec_v[1] == "<f4"
            and isinstance(spec_q, list) and len(spec_q) == 3 and spec_q[0] == "quality" and spec_q[1] == "|u1"):
        return None
    shape_v, shape_q = spec_v[2], spec_q[2]
    if not (isinstance(shape_v, list) and len(shape_v) == 2 and isinstance(shape_q, list) and len(shape_q) == 1):
        return None
    c, f = shape_v
    if not (type(c) is int and type(f) is int and 0 <= c < 2**31 and 0 <= f < 2**31 and shape_q[0] == c
            and type(shape_q[0]) is int):
        return None
    names, channels, reasons = _strs(h["names"]), _strs(h["channels"]), _strs(h["reasons"])
    if names is None or channels is None or reasons is None:
        return None
    if len(names) != f or len(channels) != c or len(reasons) not in (0, c):
        return None
    start = 4 + hlen
    split = start + 4 * c * f
    if split + c != len(mv):
        return None
    return FrameParts(asset, seq, float(t0), names, channels, reasons, bytes(mv[start:split]),
                      bytes(mv[split:]), c, f)
