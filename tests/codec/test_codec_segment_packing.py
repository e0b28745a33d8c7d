"""``pack_segment``'s bytes against a plain re-implementation of the documented segment layout.

The stacked ``features`` layout is built with vectorised passes over runs of equally long blobs
(pooled, reused buffers); these tests pin its output byte for byte to the layout written out
the slow, obvious way — across msgpack int-width boundaries of the block seq (128, 256, 65536,
2**32, negative fixints), many runs, non-features kinds and blobs that must not be stacked.
"""

from __future__ import annotations

import struct
import threading

import msgpack
import numpy as np
import pytest

from edgekit import codec
from edgekit.codec import GapRecord, pack, pack_segment, segment_blobs
from edgekit.types import FeatureFrame

NAMES = ("rms", "kurtosis", "seq")


def frame(i: int, seq: int, channels: int = 3, asset: str = "m1") -> FeatureFrame:
    rng = np.random.default_rng(i)
    vals = rng.normal(size=(channels, len(NAMES))).astype(np.float32)
    vals[0, 0] = np.nan if i % 2 else -0.0
    return FeatureFrame(asset, vals, NAMES, tuple(f"ch{c}" for c in range(channels)), 1.7e9 + i / 7, seq,
                        (np.arange(channels) + i).astype(np.uint8) % 3, ("",) * channels)


def stacked_reference(frames: list[FeatureFrame]) -> bytes:
    f0, n = frames[0], len(frames)
    c, f = f0.values.shape
    header = {"v": 1, "kind": "segment", "layout": "features", "n": n, "asset": f0.asset, "names": list(f0.names),
              "channels": list(f0.channels), "reasons": list(f0.reasons),
              "arrays": [["t0", "<f8", [n]], ["seq", "<i8", [n]], ["values", "<f4", [n, c, f]],
                         ["quality", "|u1", [n, c]]]}
    head = msgpack.packb(header, use_bin_type=True)
    return b"".join([struct.pack("<I", len(head)), head, np.array([x.t0 for x in frames], "<f8").tobytes(),
                     np.array([x.seq for x in frames], "<i8").tobytes(),
                     np.stack([x.values for x in frames]).astype("<f4").tobytes(),
                     np.stack([x.quality for x in frames]).astype(np.uint8).tobytes()])


def concat_reference(blobs: list[bytes]) -> bytes:
    header = {"v": 1, "kind": "segment", "layout": "concat", "n": len(blobs),
              "arrays": [["lengths", "<u4", [len(blobs)]], ["data", "|u1", [sum(map(len, blobs))]]]}
    head = msgpack.packb(header, use_bin_type=True)
    return b"".join([struct.pack("<I", len(head)), head, np.array([len(b) for b in blobs], "<u4").tobytes(), *blobs])


SEQ_RUNS = {
    "fixint": list(range(0, 100)),
    "crossing_128": list(range(100, 140)),
    "crossing_128_and_256": list(range(120, 300)),
    "crossing_65536": list(range(65530, 65540)),
    "crossing_2_32": list(range(2**32 - 3, 2**32 + 3)),
    "negative_fixints_to_uint8": list(range(-40, 140)),
    "large": [2**62 + i for i in range(5)],
    "alternating_widths": [1, 200, 2, 300, 3, 70000, 4, -100] * 5,  # more runs than the vectorised path takes
}


@pytest.mark.parametrize("name", sorted(SEQ_RUNS))
def test_stacked_bytes_match_the_layout_written_out(name: str) -> None:
    frames = [frame(i, s) for i, s in enumerate(SEQ_RUNS[name])]
    blobs = [pack(x) for x in frames]
    seg = pack_segment(blobs, "features")
    assert seg == stacked_reference(frames)
    assert type(seg) is bytes
    assert segment_blobs(seg, len(blobs)) == blobs
    assert pack_segment(tuple(blobs), "features") == seg  # any sequence


def test_a_foreign_blob_in_a_later_run_makes_the_segment_concat() -> None:
    frames = [frame(i, 120 + i) for i in range(20)]
    blobs = [pack(x) for x in frames]
    for odd in (pack(frame(99, 135, channels=4)), pack(frame(99, 135, asset="m2")), b"\x00\x00",
                blobs[15][:-1], blobs[15] + b"\x00"):
        mixed = [*blobs[:15], odd, *blobs[16:]]
        assert pack_segment(mixed, "features") == concat_reference(mixed)
        assert pack_segment([*blobs[:15], odd], "features") == concat_reference([*blobs[:15], odd])


def test_other_kinds_are_concatenated() -> None:
    blobs = [pack(GapRecord("s", i, i + 2, 3, "quota", 1.0)) for i in range(5)]
    assert pack_segment(blobs, "gap") == concat_reference(blobs)
    feats = [pack(frame(i, i)) for i in range(5)]
    assert pack_segment(feats, "event") == concat_reference(feats)


def test_segments_larger_than_the_reused_buffers(monkeypatch: pytest.MonkeyPatch) -> None:
    frames = [frame(i, 250 + i) for i in range(30)]
    blobs = [pack(x) for x in frames]
    monkeypatch.setattr(codec, "_SCRATCH_MAX", 1000)
    assert pack_segment(blobs, "features") == stacked_reference(frames)
    monkeypatch.undo()
    assert pack_segment(blobs[:3], "features") == stacked_reference(frames[:3])  # reused buffers unharmed


def test_threads_packing_at_once_get_their_own_segments() -> None:
    sets = [[frame(100 * t + i, 100 * t + i, channels=2 + t) for i in range(150)] for t in range(4)]
    want = [stacked_reference(s) for s in sets]
    blobs = [[pack(x) for x in s] for s in sets]
    bad: list[int] = []

    def work(t: int) -> None:
        for _ in range(30):
            if pack_segment(blobs[t], "features") != want[t]:
                bad.append(t)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert bad == []
