"""Pure, vectorised Modbus value decoding and encoding.

Byte order names describe where the bytes of the big-endian value ``A B C D`` (``A`` most
significant) travel on the wire, register by register: ``ABCD`` big-endian (Modbus standard),
``CDAB`` word-swapped, ``BADC`` byte-swapped inside each register, ``DCBA`` fully little-endian. The
same letters apply to 64-bit values (word swap = reverse all four registers) and to 16-bit values
(only the byte swap matters).

A :class:`BlockDecoder` is compiled once per planned request: the block is turned into big-endian
bytes once, tags are grouped by type, and each group is decoded with one fancy-index gather of
bytes (the byte order is folded into the precomputed index) and one ``view`` — no per-register
Python loops. Only string tags build a Python ``str`` each.

Its :class:`FastDecoder` (``BlockDecoder.fast``) is what the poller uses on every response: it
takes the response's Python list as pymodbus delivers it, packs it once big-endian with a
precompiled ``struct`` (packing validates the 0..65535 integers; when BADC/CDAB tags exist, an
``array`` copy with every register's bytes swapped gives the little-endian buffer) and reads every
numeric tag as one field of a precompiled ``struct`` format per (buffer, endianness) — one C call
per byte order, raw values, unscaled. A :class:`ScanDecoder` (one per poll plan, shared by devices
with the same plan) is the same work for all the scan's responses generated as one straight-line
function (no Python call or loop per request; on the poll path it also applies the structural
response checks to each response's list), ending in one ``itemgetter`` that puts the values in
batch order; the poller scales the whole scan at once. Inside a busy event loop, where
pymodbus and the kernel evict the caches between requests, each numpy call costs several µs; this
path makes none per request. The decoders must agree exactly (tested for every type x byte order
and on fuzzed responses).
"""

from __future__ import annotations

import math
import operator
import struct
import sys
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ...errors import DecodeError
from .device import ResolvedTag

__all__ = ["BlockDecoder", "FastDecoder", "ScanDecoder", "compile_decoder", "compile_scan", "decode_order",
           "decode_samples", "encode_value", "to_registers"]

U16 = npt.NDArray[np.uint16]
F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]

_NUMPY_TYPE = {
    "int16": ">i2", "uint16": ">u2", "float16": ">f2",
    "int32": ">i4", "uint32": ">u4", "float32": ">f4",
    "int64": ">i8", "uint64": ">u8", "float64": ">f8",
}
_WORD_SWAP = {"ABCD": False, "BADC": False, "CDAB": True, "DCBA": True}
_BYTE_SWAP = {"ABCD": False, "BADC": True, "CDAB": False, "DCBA": True}


def to_registers(values: Sequence[int] | U16) -> U16:
    """Register values (0..65535) from a pymodbus response as a uint16 array (raises DecodeError)."""
    if isinstance(values, np.ndarray):
        if values.ndim != 1 or values.dtype.kind not in "iu" or (values.size and (values.min() < 0 or values.max() > 0xFFFF)):
            raise DecodeError(f"register values must be integers 0..65535, got {values.dtype} {values.shape}")
        return values.astype(np.uint16, copy=False)
    if values and type(values[0]) is not int:  # pymodbus gives Python ints (struct.unpack ">H")
        raise DecodeError(f"register values are not integers: {type(values[0]).__name__}")
    try:
        arr = np.array(values, dtype=np.uint16)  # numpy raises OverflowError outside 0..65535
    except (TypeError, ValueError, OverflowError) as exc:
        raise DecodeError(f"register values are not integers 0..65535: {exc}") from exc
    if arr.ndim != 1:
        raise DecodeError(f"register values have shape {arr.shape}")
    return arr


def _gather(raw: U16, idx: npt.NDArray[np.intp], order: str, dtype: str) -> npt.NDArray[np.generic]:
    """Decode ``len(idx)`` values of ``dtype``: ``idx`` is ``(n, words)`` register indices in wire order."""
    g = raw[idx[:, ::-1] if _WORD_SWAP[order] and idx.shape[1] > 1 else idx]
    if _BYTE_SWAP[order]:
        g = g.byteswap()
    return np.ascontiguousarray(g, dtype=">u2").view(dtype).reshape(idx.shape[0])


@dataclass(frozen=True)
class _Group:
    values: slice  # this type's values in the numeric decode order
    byte_slice: slice  # and their bytes in the one gathered byte array
    dtype: str


_NATIVE_LITTLE = sys.byteorder == "little"
_STRUCT_CODE = {"int16": "h", "uint16": "H", "float16": "e", "int32": "i", "uint32": "I", "float32": "f",
                "int64": "q", "uint64": "Q", "float64": "d"}
# from this many numeric types in one block, one struct.unpack of the gathered big-endian bytes is
# cheaper than one numpy view + cast per type (≈ 1 µs each); below it numpy wins on long blocks
_STRUCT_MIN_GROUPS = 3


def _byte_index(offset: int, words: int, order: str) -> list[int]:
    """Positions, in the block's native-endian uint16 bytes, of a value's bytes, most significant
    first (the host's byte order is folded in here, so decoding needs no byte swap)."""
    regs = range(offset + words - 1, offset - 1, -1) if _WORD_SWAP[order] else range(offset, offset + words)
    pair = (1, 0) if _BYTE_SWAP[order] else (0, 1)  # (high byte, low byte) of the wire register
    if _NATIVE_LITTLE:
        pair = (1 - pair[0], 1 - pair[1])
    return [2 * r + b for r in regs for b in pair]


_KIND_RANK = {k: i for i, k in enumerate(
    ("int16", "uint16", "float16", "int32", "uint32", "float32", "int64", "uint64", "float64", "bool", "bit", "string"))}


def decode_order(tags: Sequence[ResolvedTag]) -> tuple[ResolvedTag, ...]:
    """The tag order a request decodes fastest in: numeric types grouped (each group fills one slice
    of the output), then bools, bits and strings; by address inside each group."""
    return tuple(sorted(tags, key=lambda t: (_KIND_RANK[t.type], t.address, t.name)))


@dataclass(frozen=True)
class BlockDecoder:
    """Decodes one response block (registers from ``start``, or bits) into one float64 per tag.

    Numeric tags are grouped by type only: the byte order is folded into a precomputed byte index,
    so each group is one gather on the block's big-endian bytes and one ``view``."""

    n_tags: int
    needed: int  # registers/bits the block must hold
    bits: bool
    groups: tuple[_Group, ...]
    byte_idx: npt.NDArray[np.intp]  # every numeric value's bytes, big-endian, group after group
    num_pos: npt.NDArray[np.intp]  # output position of each value in the numeric decode order
    bool_pos: npt.NDArray[np.intp]
    bool_off: npt.NDArray[np.intp]
    bit_pos: npt.NDArray[np.intp]
    bit_off: npt.NDArray[np.intp]
    bit_num: npt.NDArray[np.uint16]
    strings: tuple[tuple[int, int, int, bool], ...]  # (position, offset, length, byteswap)
    scale: F64
    offset: F64
    scaled: bool  # some scale != 1
    offset_any: bool  # some offset != 0
    direct: bool  # numeric tags come first, in group order (see decode_order)
    unpack: struct.Struct | None = None  # all numeric groups in one C call (blocks of 3+ types)
    bool_run: slice | None = None  # every tag a bit at offsets 0..n-1 in order: one comparison
    fast: FastDecoder | None = None  # the same decoding from the response's list, without numpy

    def decode(self, raw: npt.NDArray[np.generic]) -> tuple[F64, list[str | None] | None]:
        """Return (values, texts): engineering values (NaN for strings) and the text of string tags."""
        if raw.ndim != 1 or raw.shape[0] < self.needed:
            raise DecodeError(f"response holds {raw.shape[0] if raw.ndim == 1 else raw.shape} "
                              f"{'bits' if self.bits else 'registers'}, expected {self.needed}")
        if self.bits:
            if self.bool_run is not None:
                return (raw[self.bool_run] != 0).astype(np.float64), None
            out = np.empty(self.n_tags, dtype=np.float64)
            out[self.bool_pos] = raw[self.bool_off] != 0
            return out, None
        out = np.empty(self.n_tags, dtype=np.float64)
        regs: U16 = raw if raw.dtype == np.uint16 else raw.astype(np.uint16)  # type: ignore[assignment]
        if self.groups:
            gathered = regs.view(np.uint8)[self.byte_idx]
            if self.unpack is not None:  # many small groups: one struct call beats a numpy op per group
                nums = self.unpack.unpack(gathered.tobytes())
                if self.direct:
                    out[:len(nums)] = nums
                else:
                    out[self.num_pos] = nums
            elif self.direct:  # tags in decode order: each type fills its own slice of the output
                for g in self.groups:
                    out[g.values] = gathered[g.byte_slice].view(g.dtype)
            else:
                num = np.empty(self.num_pos.shape[0], dtype=np.float64)
                for g in self.groups:
                    num[g.values] = gathered[g.byte_slice].view(g.dtype)
                out[self.num_pos] = num
        if self.bool_pos.size:
            out[self.bool_pos] = regs[self.bool_off] != 0
        if self.bit_pos.size:
            out[self.bit_pos] = (regs[self.bit_off] >> self.bit_num) & 1
        if self.scaled:
            out *= self.scale
        if self.offset_any:
            out += self.offset
        texts: list[str | None] | None = None
        if self.strings:
            texts = [None] * self.n_tags
            for pos, off, length, swap in self.strings:
                words = regs[off:off + length]
                data = (words.byteswap() if swap else words).astype(">u2").tobytes()
                texts[pos] = data.split(b"\x00", 1)[0].decode("ascii", errors="replace").rstrip()
                out[pos] = math.nan
        return out, texts


# (buffer, struct endianness) per byte order: the registers packed big-endian hold ABCD values as
# '>' and DCBA values as '<'; packed little-endian (every register's bytes swapped) they hold BADC
# values as '>' and CDAB values as '<' — so every type in every byte order is one struct field
_LANE = {"ABCD": (False, ">"), "DCBA": (False, "<"), "BADC": (True, ">"), "CDAB": (True, "<")}


@dataclass(frozen=True)
class FastDecoder:
    """Decodes a response's Python list (``pdu.registers`` / ``pdu.bits``) straight to raw (unscaled)
    Python numbers in tag order with ``struct`` — no numpy call per request, which inside a busy
    event loop (cold caches) costs several µs each. Strings give NaN here; their text comes from
    :meth:`BlockDecoder.decode`."""

    needed: int
    bits: bool
    pick: Callable[[Sequence[Any]], Any]  # itemgetter into the bits, or into the lane values + extras
    lanes: tuple[tuple[bool, struct.Struct], ...]  # (little-endian buffer?, fields in address order)
    le: bool  # some lane reads the little-endian buffer
    extras: tuple[tuple[int, int], ...]  # (register offset, bit) for bool (bit -1) and bit tags
    n_strings: int
    single: bool  # one tag: itemgetter returns the value itself
    perm: tuple[int, ...] = ()  # position in :meth:`raw`'s output of each tag (tag order)
    # the lanes' unpack_from on the big-endian buffer, then on the little-endian one (lanes is in
    # that order), and the packer of a response of exactly ``needed`` registers (a planned request)
    be_units: tuple[Callable[[Any], tuple[Any, ...]], ...] = ()
    le_units: tuple[Callable[[Any], tuple[Any, ...]], ...] = ()
    pack_be: Callable[..., bytes] | None = None

    def raw(self, data: Sequence[Any]) -> list[Any]:
        """Raw values in the decoder's own order (``perm`` maps tags into it): the lanes' fields,
        then bools/bits, then NaN per string; for bit tables the tags' bits in tag order. Raises
        DecodeError for a short or invalid block."""
        out: list[Any] = []
        self.extend(out, data)
        return out

    def extend(self, out: list[Any], data: Sequence[Any]) -> None:
        """Append :meth:`raw`'s values to ``out`` (the scan decoder's one list per scan)."""
        if self.bits:
            _short_bits(data, self.needed)
            got = self.pick(data)
            got = (got,) if self.single else got
            _not_bools(got)
            out += got
            return
        if len(data) == self.needed and self.pack_be is not None and data and type(data[0]) is int:
            try:
                be = self.pack_be(*data)
            except struct.error as exc:
                raise DecodeError(f"register values are not integers 0..65535: {exc}") from exc
        else:  # short, not integers, or no precompiled pack: the generated scan decoder's own checks
            be = _registers_be(data, self.needed)
        for unpack in self.be_units:
            out += unpack(be)
        if self.le_units:  # the same registers little-endian: a copy with each register's bytes swapped
            le = array("H", be)
            le.byteswap()
            for unpack in self.le_units:
                out += unpack(le)
        if self.extras:
            out += [(data[off] != 0) if bit < 0 else (data[off] >> bit) & 1 for off, bit in self.extras]
        if self.n_strings:
            out += (math.nan,) * self.n_strings

    def values(self, data: Sequence[Any]) -> tuple[Any, ...]:
        """Raw values in tag order (bools as bool); raises DecodeError for a short or invalid block."""
        vals = self.raw(data)
        if self.bits:
            return tuple(vals)
        got = self.pick(vals)
        return (got,) if self.single else got  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class ScanDecoder:
    """The responses of every planned request of one scan (one device and poll class) decoded
    together into raw (unscaled) values in batch order (the requests' tag orders, one after the
    other). Compiled once per plan (:func:`compile_scan`) into one straight-line function: per
    register response one precompiled ``struct`` pack (which validates the 0..65535 integers) and
    one ``unpack_from`` per lane (an ``array`` byteswap gives the little-endian buffer where BADC/CDAB
    lanes exist), per bit response one ``itemgetter`` and a bool check, then one ``itemgetter`` over
    everything — the same steps as the requests' :meth:`FastDecoder.raw`, without a Python call or
    loop per request."""

    decoders: tuple[FastDecoder, ...]
    pick: Callable[[Sequence[Any]], Any]
    single: bool
    values: Callable[[Sequence[Any]], tuple[Any, ...]]  # the responses' lists -> raw values; raises DecodeError
    # the same from the response PDUs, checked first as check_payload would (compile_scan with calls)
    responses: Callable[[Sequence[Any]], tuple[Any, ...]] | None = None


def _registers_be(data: Sequence[Any], needed: int) -> bytes:
    """The big-endian bytes of a register list that is not exactly ``needed`` long (or starts with
    a non-int): the checks shared by :meth:`FastDecoder.extend` and the generated scan decoder."""
    if len(data) < needed:
        raise DecodeError(f"response holds {len(data)} registers, expected {needed}")
    if data and type(data[0]) is not int:
        raise DecodeError(f"register values are not integers: {type(data[0]).__name__}")
    try:
        return struct.pack(f">{len(data)}H", *data)
    except struct.error as exc:
        raise DecodeError(f"register values are not integers 0..65535: {exc}") from exc


def _short_bits(data: Sequence[Any], needed: int) -> None:
    """A bit response shorter than ``needed``: DecodeError."""
    if len(data) < needed:
        raise DecodeError(f"response holds {len(data)} bits, expected {needed}")


def _not_bools(got: Sequence[Any]) -> None:
    """Bits that are not all booleans: DecodeError."""
    for b in got:
        if type(b) is not bool:
            raise DecodeError(f"bits are not booleans: {type(b).__name__}")


def _compile_values(decoders: Sequence[FastDecoder], pick: Callable[[Sequence[Any]], Any], single: bool,
                    checks: Sequence[tuple[int, int]] | None = None) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """Generate the scan decoder's function (see :class:`ScanDecoder`): straight-line code with
    every per-request constant folded in; it computes exactly what the FastDecoders' ``extend``
    compute, in the same order, and raises the same DecodeErrors. With ``checks`` (function code,
    count per request) it takes the response PDUs instead of their lists and first applies
    :func:`~edgekit.connectors.modbus.transport.check_payload`'s structural rules to each (a list of
    exactly ``count`` registers, or of ``count`` to ``count + 7`` bits; anything else goes through
    ``check_payload`` itself, which raises its DecodeError or accepts)."""
    from .transport import check_payload  # the link module imports this one

    env: dict[str, Any] = {"_pick": pick, "_DecodeError": DecodeError, "_error": struct.error, "_array": array,
                           "_be": _registers_be, "_short_bits": _short_bits, "_not_bools": _not_bools,
                           "_set": set, "_map": map, "_type": type, "_BOOL": {bool}, "_nan": math.nan,
                           "_list": list, "_len": len, "_check": check_payload}
    n = len(decoders)
    arg = "payloads" if checks is None else "responses"
    names = [f"{'d' if checks is None else 'r'}{i}" for i in range(n)]
    body = [f"    {', '.join(names)}{',' if n == 1 else ''} = {arg}"] if n else [f"    if {arg}: raise ValueError('too many {arg}')"]
    parts: list[str] = []
    for i, dec in enumerate(decoders):
        d = f"d{i}"
        if checks is not None:
            fc, count = checks[i]
            if dec.bits:
                body += [f"    {d} = r{i}.bits",
                         f"    if _type({d}) is not _list or not {count} <= _len({d}) <= {count + 7}: {d} = _check({fc}, {count}, r{i})"]
            else:
                body += [f"    {d} = r{i}.registers",
                         f"    if _type({d}) is not _list or _len({d}) != {count}: {d} = _check({fc}, {count}, r{i})"]
        if dec.bits:
            env[f"p{i}"] = dec.pick
            body.append(f"    if len({d}) < {dec.needed}: _short_bits({d}, {dec.needed})")
            if len(dec.perm) == 0:
                continue
            body.append(f"    g{i} = (p{i}({d}),)" if dec.single else f"    g{i} = p{i}({d})")
            body.append(f"    if _set(_map(_type, g{i})) != _BOOL: _not_bools(g{i})")
            parts.append(f"g{i}")
            continue
        env[f"k{i}"] = dec.pack_be
        body += [f"    if len({d}) == {dec.needed} and type({d}[0]) is int:",
                 "        try:",
                 f"            b{i} = k{i}(*{d})",
                 "        except _error as exc:",
                 "            raise _DecodeError(f'register values are not integers 0..65535: {exc}') from exc",
                 "    else:",
                 f"        b{i} = _be({d}, {dec.needed})"]
        for j, unpack in enumerate(dec.be_units):
            env[f"u{i}_{j}"] = unpack
            parts.append(f"u{i}_{j}(b{i})")
        if dec.le_units:
            body += [f"    l{i} = _array('H', b{i})", f"    l{i}.byteswap()"]
            for j, unpack in enumerate(dec.le_units):
                env[f"v{i}_{j}"] = unpack
                parts.append(f"v{i}_{j}(l{i})")
        if dec.extras:
            items = [f"({d}[{off}] != 0)" if bit < 0 else f"({d}[{off}] >> {bit}) & 1" for off, bit in dec.extras]
            parts.append(f"({', '.join(items)},)")
        if dec.n_strings:
            parts.append(f"(_nan,) * {dec.n_strings}")
    got = f"_pick([{', '.join('*' + p for p in parts)}])"
    body.append(f"    return ({got},)" if single else f"    return {got}")
    code = f"def values({arg}):\n" + "\n".join(body) + "\n"
    exec(compile(code, "<modbus scan decoder>", "exec"), env)  # built from the compiled plan's constants only
    return env["values"]  # type: ignore[no-any-return]


def compile_scan(decoders: Sequence[FastDecoder], calls: Sequence[tuple[int, int]] | None = None) -> ScanDecoder:
    """The :class:`ScanDecoder` of requests decoded by ``decoders`` (in plan order); with ``calls``
    (function code, count of each request) also its :attr:`ScanDecoder.responses`."""
    perm: list[int] = []
    base = 0
    for dec in decoders:
        perm += [base + p for p in dec.perm]
        base += len(dec.perm)
    pick = operator.itemgetter(*perm) if perm else _none
    single = len(perm) == 1
    return ScanDecoder(tuple(decoders), pick, single, _compile_values(decoders, pick, single),
                       None if calls is None else _compile_values(decoders, pick, single, calls))


def _compile_fast(tags: Sequence[ResolvedTag], start: int, needed: int, *, bits: bool) -> FastDecoder:
    n = len(tags)
    if bits:
        return FastDecoder(needed, True, operator.itemgetter(*[t.address - start for t in tags]) if n else _none,
                           (), False, (), 0, n == 1, tuple(range(n)))
    lanes: dict[tuple[bool, str], list[list[ResolvedTag]]] = {}
    extras: list[ResolvedTag] = []
    strings: list[ResolvedTag] = []
    for t in sorted(tags, key=lambda t: t.address):
        if t.type in ("bool", "bit"):
            extras.append(t)
        elif t.type == "string":
            strings.append(t)
        else:  # fields of one struct never overlap: an overlapping tag opens another lane
            group = lanes.setdefault(_LANE[t.byte_order], [])
            for lane in group:
                if lane[-1].end <= t.address:
                    lane.append(t)
                    break
            else:
                group.append([t])
    order: list[ResolvedTag] = []
    compiled: list[tuple[bool, struct.Struct]] = []
    for (little, endian), group in sorted(lanes.items(), key=lambda kv: kv[0][0]):  # big-endian buffer first
        for lane in group:
            fmt, pos = endian, 0
            for t in lane:
                gap = t.address - start - pos
                fmt += f"{2 * gap}x" if gap else ""
                fmt += _STRUCT_CODE[t.type]
                pos = t.end - start
            compiled.append((little, struct.Struct(fmt)))
            order += lane
    order += extras + strings
    where = {id(t): i for i, t in enumerate(order)}
    perm = [where[id(t)] for t in tags]
    le = any(little for little, _ in compiled)
    return FastDecoder(needed, False, operator.itemgetter(*perm) if n else _none, tuple(compiled), le,
                       tuple((t.address - start, t.bit if t.type == "bit" else -1) for t in extras),
                       len(strings), n == 1, tuple(perm),
                       be_units=tuple(lane.unpack_from for little, lane in compiled if not little),
                       le_units=tuple(lane.unpack_from for little, lane in compiled if little),
                       pack_be=struct.Struct(f">{needed}H").pack)


def _none(_: Sequence[Any]) -> tuple[()]:
    return ()


def compile_decoder(tags: Sequence[ResolvedTag], start: int, *, bits: bool) -> BlockDecoder:
    """Compile the decoder of a request that begins at protocol address ``start``."""
    n = len(tags)
    empty = np.empty(0, dtype=np.intp)
    needed = max((t.end - start for t in tags), default=0)
    scale = np.array([t.scale for t in tags], dtype=np.float64)
    offset = np.array([t.offset for t in tags], dtype=np.float64)
    if bits:
        offs = [t.address - start for t in tags]
        return BlockDecoder(n, needed, True, (), empty, empty, np.arange(n, dtype=np.intp),
                            np.array(offs, dtype=np.intp), empty, empty, np.empty(0, np.uint16), (), scale,
                            offset, False, False, True,
                            bool_run=slice(0, n) if offs == list(range(n)) else None,
                            fast=_compile_fast(tags, start, needed, bits=True))
    by_kind: dict[str, list[int]] = {}
    bool_pos, bit_pos, strings = [], [], []
    for i, t in enumerate(tags):
        if t.type == "bool":
            bool_pos.append(i)
        elif t.type == "bit":
            bit_pos.append(i)
        elif t.type == "string":
            strings.append((i, t.address - start, t.words, _BYTE_SWAP[t.byte_order]))
        else:
            by_kind.setdefault(t.type, []).append(i)
    groups, idx_parts, pos_parts = [], [], []
    nv = nb = 0
    for kind, pos in by_kind.items():
        for i in pos:
            idx_parts += _byte_index(tags[i].address - start, tags[i].words, tags[i].byte_order)
        size = 2 * tags[pos[0]].words * len(pos)
        groups.append(_Group(slice(nv, nv + len(pos)), slice(nb, nb + size), _NUMPY_TYPE[kind]))
        pos_parts += pos
        nv, nb = nv + len(pos), nb + size
    return BlockDecoder(
        n, needed, False, tuple(groups), np.array(idx_parts, dtype=np.intp), np.array(pos_parts, dtype=np.intp),
        np.array(bool_pos, dtype=np.intp), np.array([tags[i].address - start for i in bool_pos], dtype=np.intp),
        np.array(bit_pos, dtype=np.intp), np.array([tags[i].address - start for i in bit_pos], dtype=np.intp),
        np.array([tags[i].bit for i in bit_pos], dtype=np.uint16), tuple(strings), scale, offset,
        bool(np.any(scale != 1.0)), bool(np.any(offset != 0.0)), pos_parts == list(range(len(pos_parts))),
        unpack=struct.Struct(">" + "".join(_STRUCT_CODE[k] * len(p) for k, p in by_kind.items()))
        if len(by_kind) >= _STRUCT_MIN_GROUPS else None,
        fast=_compile_fast(tags, start, needed, bits=False),
    )


def decode_samples(raw: U16, *, channels: int, block_len: int, dtype: str, order: str) -> F32:
    """Waveform samples: ``raw`` holds channel after channel; returns ``(channels, block_len)`` float32 raw
    values (counts for int16, engineering values for float32) — scaling is the caller's."""
    words = 1 if dtype == "int16" else 2
    need = channels * block_len * words
    if raw.shape[0] < need:
        raise DecodeError(f"sample block holds {raw.shape[0]} registers, expected {need}")
    regs = raw[:need].astype(np.uint16, copy=False)
    if words == 1:
        vals = (regs.byteswap() if _BYTE_SWAP[order] else regs).astype(">u2").view(">i2")
    else:
        pairs = regs.reshape(-1, 2)
        vals = _gather(pairs.ravel(), np.arange(pairs.size, dtype=np.intp).reshape(-1, 2), order, ">f4")
    return vals.astype(np.float32).reshape(channels, block_len)


def encode_value(tag: ResolvedTag, value: object) -> list[int] | bool:
    """Registers (or a coil state) that make ``tag`` read back as ``value``; raises ValueError when it
    does not fit the tag's type."""
    if tag.table in ("coil", "discrete_input"):
        if not isinstance(value, (bool, int)) or isinstance(value, int) and value not in (0, 1):
            raise ValueError(f"{tag.name}: {value!r} is not a bool")
        return bool(value)
    if tag.type == "string":
        if not isinstance(value, str):
            raise ValueError(f"{tag.name}: {value!r} is not a string")
        data = value.encode("ascii")
        if len(data) > 2 * tag.words:
            raise ValueError(f"{tag.name}: {len(data)} characters do not fit {tag.words} registers")
        regs = np.frombuffer(data.ljust(2 * tag.words, b"\x00"), dtype=">u2").astype(np.uint16)
        return [int(r) for r in (regs.byteswap() if _BYTE_SWAP[tag.byte_order] else regs)]
    if not isinstance(value, (int, float)):
        raise ValueError(f"{tag.name}: {value!r} is not a number")
    raw = (float(value) - tag.offset) / tag.scale
    kind = "uint16" if tag.type == "bool" else tag.type
    fmt = _NUMPY_TYPE[kind]
    if kind.startswith("float"):
        if kind != "float64" and math.isfinite(raw) and abs(raw) > float(np.finfo(fmt).max):
            raise ValueError(f"{tag.name}: {value!r} is out of range for {kind}")
        packed = np.array([raw], dtype=fmt).tobytes()
    else:
        info = np.iinfo(fmt)
        if not math.isfinite(raw) or not info.min <= round(raw) <= info.max:
            raise ValueError(f"{tag.name}: {value!r} (raw {raw!r}) is out of range {info.min}..{info.max} of {kind}")
        packed = struct.pack(">" + {"i2": "h", "u2": "H", "i4": "i", "u4": "I", "i8": "q", "u8": "Q"}[fmt[1:]],
                             round(raw))
    words = np.frombuffer(packed, dtype=">u2").astype(np.uint16)
    if _BYTE_SWAP[tag.byte_order]:
        words = words.byteswap()
    if _WORD_SWAP[tag.byte_order]:
        words = words[::-1]
    return [int(w) for w in words]
