"""Pure decode/encode: every type x byte order against an independent byte-level reference, known
register vectors, strings, bits, and fuzzed blocks that may only ever raise DecodeError."""

from __future__ import annotations

import dataclasses
import math
import random
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgekit.connectors.modbus.decode import (
    compile_decoder,
    compile_scan,
    decode_order,
    decode_samples,
    encode_value,
)
from edgekit.connectors.modbus.device import ResolvedTag
from edgekit.errors import DecodeError

ORDERS = ("ABCD", "BADC", "CDAB", "DCBA")
FMT = {"int16": "h", "uint16": "H", "float16": "e", "int32": "i", "uint32": "I", "float32": "f",
       "int64": "q", "uint64": "Q", "float64": "d"}
SAMPLE = {"int16": -12345, "uint16": 54321, "float16": -2.5, "int32": -123456789, "uint32": 3123456789,
          "float32": 1234.5, "int64": -(2**40) - 7, "uint64": 2**52 + 3, "float64": -9876.54321}


def tag(name: str, addr: int, kind: str, order: str = "ABCD", *, words: int | None = None, bit: int = 0,
        scale: float = 1.0, offset: float = 0.0, table: str = "holding_register") -> ResolvedTag:
    w = words if words is not None else max(1, struct.calcsize(">" + FMT[kind]) // 2) if kind in FMT else 1
    return ResolvedTag(name, table, addr, kind, w, bit, order, scale, offset, "", 0.0, "default", True)


def wire_registers(kind: str, value: float, order: str) -> list[int]:
    """Reference: big-endian bytes, then word reversal / in-word byte swap, at byte level."""
    raw = struct.pack(">" + FMT[kind], value)
    words = [raw[i:i + 2] for i in range(0, len(raw), 2)]
    if order in ("CDAB", "DCBA"):
        words = words[::-1]
    if order in ("BADC", "DCBA"):
        words = [w[::-1] for w in words]
    return [int.from_bytes(w, "big") for w in words]


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("kind", list(FMT))
def test_every_type_and_byte_order(kind: str, order: str) -> None:
    t = tag("x", 3, kind, order)
    regs = [0xDEAD] * 3 + wire_registers(kind, SAMPLE[kind], order) + [0xBEEF]
    values, texts = compile_decoder([t], 0, bits=False).decode(np.array(regs, dtype=np.uint16))
    assert texts is None
    assert values[0] == pytest.approx(SAMPLE[kind], rel=1e-6 if kind != "float16" else 1e-3)
    assert encode_value(t, SAMPLE[kind]) == wire_registers(kind, SAMPLE[kind], order)


def test_scan_decoder_every_type_and_byte_order() -> None:
    # the poll path: one ScanDecoder over a register request holding every type x byte order (plus a
    # bool and a bit) and a coil request, from the responses' Python lists as pymodbus gives them
    tags, regs = [], [0xDEAD]
    for kind in FMT:
        for order in ORDERS:
            tags.append(tag(f"{kind}_{order}", len(regs), kind, order))
            regs += wire_registers(kind, SAMPLE[kind], order)
    tags += [tag("flag", len(regs), "bool"), tag("b3", len(regs) + 1, "bit", bit=3)]
    regs += [7, 0b1000]
    coils = [tag("c0", 0, "bool", table="coil"), tag("c2", 2, "bool", table="coil")]
    reg_dec = compile_decoder(decode_order(tags), 1, bits=False)
    coil_dec = compile_decoder(coils, 0, bits=True)
    assert reg_dec.fast is not None and coil_dec.fast is not None
    scan = compile_scan([reg_dec.fast, coil_dec.fast])
    got = scan.values([regs[1:], [True, False, False, True, False, False, False, False]])
    reference, _ = reg_dec.decode(np.array(regs[1:], np.uint16))
    assert list(got[:len(tags)]) == reference.tolist()
    for t, v in zip(decode_order(tags), got, strict=False):
        want = {"flag": 1, "b3": 1}.get(t.name, SAMPLE.get(t.type))
        assert v == pytest.approx(want, rel=1e-6 if t.type != "float16" else 1e-3), t.name
    assert got[len(tags):] == (True, False)
    with pytest.raises(DecodeError):
        scan.values([regs[1:-1], [True] * 8])  # a short block
    with pytest.raises(DecodeError):
        scan.values([regs[1:], [1, 0, 0, 0, 0, 0, 0, 0]])  # bits that are not booleans

    # the poll path's variant takes the response PDUs and checks their lists as check_payload does
    checked = compile_scan([reg_dec.fast, coil_dec.fast], [(3, len(regs) - 1), (1, 3)])
    assert checked.responses is not None

    class Pdu:
        def __init__(self, fc: int, items: Any) -> None:
            self.function_code, self.registers, self.bits = fc, items if fc > 2 else [], items if fc < 3 else []

    bits = [True, False, False, True, False, False, False, False]
    assert checked.responses([Pdu(3, regs[1:]), Pdu(1, bits)]) == got
    for bad in ([Pdu(3, regs[1:] + [0]), Pdu(1, bits)],  # one register too many
                [Pdu(3, tuple(regs[1:])), Pdu(1, bits)],  # not a list
                [Pdu(3, regs[1:]), Pdu(1, bits + [False] * 3)],  # 11 bits for 3
                [Pdu(3, regs[1:]), Pdu(1, bits[:2])]):  # 2 bits for 3
        with pytest.raises(DecodeError):
            checked.responses(bad)


@pytest.mark.parametrize("planned", [True, False])
def test_many_types_in_one_block_struct_path_matches_numpy_path(planned: bool) -> None:
    # 3+ numeric types in one block decode with one struct.unpack; it must agree with the per-type
    # numpy path and with the byte-level reference for every type x byte order, in either tag order
    tags, regs = [], []
    for kind in FMT:
        for order in ORDERS:
            t = tag(f"{kind}_{order}", len(regs), kind, order, scale=2.0 if kind == "int16" else 1.0)
            tags.append(t)
            regs += wire_registers(kind, SAMPLE[kind], order)
    if planned:
        tags = list(decode_order(tags))
    else:
        random.Random(7).shuffle(tags)
    dec = compile_decoder(tags, 0, bits=False)
    assert dec.unpack is not None
    block = np.array(regs, np.uint16)
    values, texts = dec.decode(block)
    slow, _ = dataclasses.replace(dec, unpack=None).decode(block)
    assert texts is None
    assert values.tolist() == slow.tolist()
    for t, v in zip(tags, values.tolist(), strict=True):
        want = SAMPLE[t.type] * t.scale
        assert v == pytest.approx(want, rel=1e-6 if t.type != "float16" else 1e-3), t.name


def test_known_vectors_float32_1_5() -> None:
    # 1.5f = 0x3FC00000: the classic table of the four orders
    assert wire_registers("float32", 1.5, "ABCD") == [0x3FC0, 0x0000]
    expected = {"ABCD": [0x3FC0, 0], "BADC": [0xC03F, 0], "CDAB": [0, 0x3FC0], "DCBA": [0, 0xC03F]}
    for order, regs in expected.items():
        values, _ = compile_decoder([tag("x", 0, "float32", order)], 0, bits=False).decode(np.array(regs, np.uint16))
        assert values[0] == 1.5, order


def test_mixed_block_scale_offset_bits_strings() -> None:
    tags = [
        tag("current", 0, "int16", scale=0.01),
        tag("temp", 1, "int16", scale=0.1, offset=-40.0),
        tag("running", 2, "bit", bit=0),
        tag("fault", 2, "bit", bit=15),
        tag("flag", 3, "bool"),
        tag("name", 4, "string", words=4),
        tag("name_swapped", 8, "string", "BADC", words=2),
        tag("energy", 10, "uint32", "CDAB"),
    ]
    regs = [(-1234) & 0xFFFF, 650, 0x8001, 7, *np.frombuffer(b"PUMP-7\0\0", ">u2").tolist(),
            *np.frombuffer(b"BAD\0", "<u2").tolist(), *wire_registers("uint32", 70000, "CDAB")]
    values, texts = compile_decoder(tags, 0, bits=False).decode(np.array(regs, np.uint16))
    assert values[0] == pytest.approx(-12.34)
    assert values[1] == pytest.approx(25.0)
    assert values[2] == 1 and values[3] == 1 and values[4] == 1
    assert math.isnan(values[5]) and texts is not None
    assert texts[5] == "PUMP-7" and texts[6] == "BAD"
    assert values[7] == 70000


def test_string_byte_orders_exact() -> None:
    hi_first = np.frombuffer(b"HELLO\0", ">u2").astype(np.uint16)
    lo_first = np.frombuffer(b"HELLO\0", "<u2").astype(np.uint16)
    for regs, order in ((hi_first, "ABCD"), (lo_first, "BADC")):
        t = tag("s", 0, "string", order, words=3)
        _, texts = compile_decoder([t], 0, bits=False).decode(regs)
        assert texts == ["HELLO"]
        assert encode_value(t, "HELLO") == regs.tolist()


def test_bit_table_decode() -> None:
    tags = [tag("a", 0, "bool", table="coil"), tag("b", 5, "bool", table="coil")]
    values, _ = compile_decoder(tags, 0, bits=True).decode(np.array([1, 0, 0, 0, 0, 1], np.uint8))
    assert values.tolist() == [1.0, 1.0]
    run = [tag(f"c{i}", i, "bool", table="coil") for i in range(4)]  # contiguous from 0: slice path
    dec = compile_decoder(run, 0, bits=True)
    assert dec.bool_run is not None
    values, _ = dec.decode(np.array([1, 0, 2, 0, 1], np.uint8))
    assert values.tolist() == [1.0, 0.0, 1.0, 0.0]
    with pytest.raises(DecodeError, match="expected 4"):
        dec.decode(np.array([1, 0, 1], np.uint8))


def test_short_block_is_a_decode_error() -> None:
    dec = compile_decoder([tag("x", 2, "float64")], 0, bits=False)
    with pytest.raises(DecodeError, match="expected 6"):
        dec.decode(np.zeros(5, np.uint16))


def test_encode_rejects_out_of_range() -> None:
    with pytest.raises(ValueError, match="out of range"):
        encode_value(tag("x", 0, "uint16"), 70000)
    with pytest.raises(ValueError, match="out of range"):
        encode_value(tag("x", 0, "int16", scale=0.01), 400.0)
    assert encode_value(tag("x", 0, "int16", scale=0.01), -12.34) == [(-1234) & 0xFFFF]


def test_waveform_samples_int16_and_float32() -> None:
    raw = np.arange(-3, 3, dtype=np.int16).astype(np.uint16)
    out = decode_samples(raw, channels=2, block_len=3, dtype="int16", order="ABCD")
    assert out.dtype == np.float32 and out.tolist() == [[-3, -2, -1], [0, 1, 2]]
    f = np.array([0.5, -1.25], dtype=">f4").view(">u2").astype(np.uint16)
    cdab = f.reshape(-1, 2)[:, ::-1].ravel()
    assert decode_samples(cdab, channels=1, block_len=2, dtype="float32", order="CDAB").tolist() == [[0.5, -1.25]]


KINDS = st.sampled_from([k for k in FMT] + ["bit", "bool", "string"])


@settings(max_examples=200, deadline=None)
@given(
    specs=st.lists(st.tuples(KINDS, st.sampled_from(ORDERS), st.integers(0, 40), st.integers(0, 15)),
                   min_size=1, max_size=12),
    regs=st.lists(st.integers(0, 0xFFFF), max_size=60),
)
def test_fuzz_decode_never_crashes(specs: list[tuple[str, str, int, int]], regs: list[int]) -> None:
    tags = []
    for i, (kind, order, addr, bit) in enumerate(specs):
        if kind == "string":
            order = "ABCD" if order in ("ABCD", "CDAB") else "BADC"
        tags.append(tag(f"t{i}", addr, kind, order, words=3 if kind == "string" else None, bit=bit))
    dec = compile_decoder(tags, 0, bits=False)
    try:
        values, _ = dec.decode(np.array(regs, dtype=np.uint16))
    except DecodeError:
        assert len(regs) < dec.needed
        return
    assert values.shape == (len(tags),)
