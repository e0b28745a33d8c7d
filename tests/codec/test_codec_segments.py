"""Segments (``edgekit.codec.pack_segment`` …): round trips, the stacked FeatureFrame layout, strictness."""

from __future__ import annotations

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

from edgekit.codec import (
    GapRecord,
    StackedFeatures,
    pack,
    pack_segment,
    segment_blobs,
    segment_view,
    unpack,
    unpack_segment,
)
from edgekit.errors import DecodeError
from edgekit.types import FeatureFrame

NAMES = ("rms", "kurtosis", "t0", "seq")  # names that look like header keys must not confuse the template


def frame(i: int, seq: int, channels: int = 3, reasons: tuple[str, ...] | None = None,
          asset: str = "m1", t0: float | None = None) -> FeatureFrame:
    rng = np.random.default_rng(i)
    vals = rng.normal(size=(channels, len(NAMES))).astype(np.float32)
    if channels:
        vals[0, 0] = np.nan
    return FeatureFrame(asset, vals, NAMES, tuple(f"ch{c}" for c in range(channels)),
                        1.7e9 + i / 3 if t0 is None else t0, seq, np.arange(channels, dtype=np.uint8) % 3,
                        reasons if reasons is not None else ("",) * channels)


def same(a: FeatureFrame, b: FeatureFrame) -> bool:
    return (a.asset, a.names, a.channels, a.t0, a.seq, a.reasons) == (b.asset, b.names, b.channels, b.t0, b.seq,
                                                                      b.reasons) \
        and np.array_equal(a.values, b.values, equal_nan=True) and np.array_equal(a.quality, b.quality)


def test_uniform_frames_are_stacked_and_come_back_byte_for_byte() -> None:
    blobs = [pack(frame(i, 1000 + i)) for i in range(20)]
    seg = pack_segment(blobs, "features")
    view = segment_view(seg, 20)
    assert isinstance(view, StackedFeatures) and len(view) == 20
    assert view.values.shape == (20, 3, 4) and view.quality.shape == (20, 3)
    assert len(seg) < sum(len(b) for b in blobs)  # one header instead of twenty
    assert segment_blobs(seg, 20) == blobs
    assert all(same(a, unpack(b)) for a, b in zip(unpack_segment(seg, 20), blobs, strict=True))


@pytest.mark.parametrize("seqs", [[126, 127, 128, 129], [255, 256], [65535, 65536], [-33, -32, -1, 0], [2**40, 2**40 + 1]])
def test_block_seqs_crossing_msgpack_int_widths(seqs: list[int]) -> None:
    blobs = [pack(frame(i, q)) for i, q in enumerate(seqs)]
    assert segment_blobs(pack_segment(blobs, "features"), len(blobs)) == blobs


def test_frames_that_differ_in_more_than_t0_and_seq_are_concatenated() -> None:
    blobs = [pack(frame(0, 1)), pack(frame(1, 2, asset="m2")), pack(frame(2, 3, channels=2)),
             pack(frame(3, 4, reasons=("a", "", "")))]
    seg = pack_segment(blobs, "features")
    assert isinstance(segment_view(seg, 4), list)
    assert segment_blobs(seg, 4) == blobs


def test_non_feature_and_non_canonical_blobs_are_concatenated_as_they_are() -> None:
    gap = pack(GapRecord("s", 1, 2, 2, "drop_newest", 1.0))
    blobs = [gap, b"", b"opaque bytes", gap]
    seg = pack_segment(blobs, "gap")
    assert segment_blobs(seg, 4) == blobs
    assert pack_segment([b"solo"], "points") == b"solo"  # a 1-record segment is the record itself
    assert segment_blobs(b"solo", 1) == [b"solo"]


def test_segment_view_is_strict() -> None:
    blobs = [pack(frame(i, i)) for i in range(4)]
    seg = pack_segment(blobs, "features")
    with pytest.raises(DecodeError, match="holds 4 records"):
        segment_view(seg, 5)
    with pytest.raises(DecodeError, match="trailing"):
        segment_view(seg + b"x", 4)
    with pytest.raises(DecodeError):
        segment_view(seg[:-1], 4)
    with pytest.raises(DecodeError):
        segment_view(b"\x00\x00\x00\x00", 2)
    with pytest.raises(DecodeError, match="positive"):
        segment_view(seg, 0)
    concat = pack_segment([b"ab", b"c"], "event")
    with pytest.raises(DecodeError):
        segment_view(concat[:-1], 2)


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 12), channels=st.integers(0, 4), seq0=st.integers(-2**63, 2**63 - 64),
       t0=finite, step=st.sampled_from([0.0, 0.5, 1e-9]), reasons=st.booleans(), kind=st.sampled_from(["features", "event"]))
def test_round_trip_gives_back_exactly_the_admitted_records(n: int, channels: int, seq0: int, t0: float, step: float,
                                                            reasons: bool, kind: str) -> None:
    frames = [frame(i, seq0 + i, channels=channels, t0=t0 + i * step,
                    reasons=tuple(f"r{c}" for c in range(channels)) if reasons else ()) for i in range(n)]
    blobs = [pack(f) for f in frames]
    seg = pack_segment(blobs, kind)
    assert segment_blobs(seg, n) == blobs
    assert all(same(a, b) for a, b in zip(unpack_segment(seg, n), frames, strict=True))


@settings(max_examples=80, deadline=None)
@given(data=st.binary(max_size=400), count=st.integers(1, 8))
def test_garbage_segments_raise_decode_error_only(data: bytes, count: int) -> None:
    try:
        segment_blobs(data, count)
    except DecodeError:
        pass


def test_remembered_templates_accept_only_what_the_full_check_accepts() -> None:
    """pack_segment remembers the header template of recent frames; a later segment whose first blob
    matches a remembered template's prefix but not the rest (a non-canonical seq, other reasons, a
    trailing byte) must not be stacked by it — each such segment still comes back byte for byte."""
    good = [pack(frame(i, 100 + i)) for i in range(3)]
    assert isinstance(segment_view(pack_segment(good, "features"), 3), StackedFeatures)  # template remembered
    canonical = pack(frame(7, 5))
    at = canonical.index(b"\xa3seq", canonical.index(b"\xa2t0\xcb")) + 4  # the key, not the name
    assert canonical[at] == 5  # fixint 5; rewrite it as uint8 0xcc 0x05 and fix the header length
    wide = bytearray(canonical[:at] + b"\xcc\x05" + canonical[at + 1:])
    wide[:4] = (int.from_bytes(canonical[:4], "little") + 1).to_bytes(4, "little")
    trailing = canonical + b"\x00"
    other_reasons = pack(frame(8, 6, reasons=("x", "", "")))
    for first in (bytes(wide), trailing, other_reasons):
        blobs = [first, pack(frame(9, 6)), pack(frame(10, 7))]
        seg = pack_segment(blobs, "features")
        assert isinstance(segment_view(seg, 3), list)  # not stacked: the full check rejects the first
        assert segment_blobs(seg, 3) == blobs
    for k in range(12):  # more templates than remembered, interleaved with the first one
        blobs = [pack(frame(i, i, asset=f"a{k}")) for i in range(3)]
        assert segment_blobs(pack_segment(blobs, "features"), 3) == blobs
        assert segment_blobs(pack_segment(good, "features"), 3) == good
