"""Framer: windows, overlap, gaps by sequence number, bounded memory."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgekit.errors import PipelineError
from edgekit.pipeline import Framer
from edgekit.types import EventKind, Quality, WaveformBlock

FS = 1000.0


def stream(n_blocks: int, size: int, channels: int = 2, start_seq: int = 0) -> tuple[list[WaveformBlock], np.ndarray]:
    data = np.arange(n_blocks * size * channels, dtype=np.float32).reshape(channels, n_blocks * size)
    blocks = [
        WaveformBlock("a", np.ascontiguousarray(data[:, i * size : (i + 1) * size]), FS, 10.0 + i * size / FS,
                      start_seq + i, ("x", "y")[:channels], ("g",) * channels, speed_hz=20.0 + i)
        for i in range(n_blocks)
    ]
    return blocks, data


@pytest.mark.parametrize(("window", "overlap", "size"), [(256, 0.0, 100), (256, 0.5, 100), (100, 0.75, 333), (64, 0.0, 64)])
def test_windows_are_the_stream_cut_at_hops(window: int, overlap: float, size: int) -> None:
    blocks, data = stream(20, size)
    fr = Framer(window, overlap)
    out = []
    for b in blocks:
        w, ev = fr.push(b)
        assert ev == []
        out += w
    hop = fr.hop
    assert len(out) == (data.shape[1] - window) // hop + 1
    for i, w in enumerate(out):
        np.testing.assert_array_equal(w.data, data[:, i * hop : i * hop + window])
        assert w.seq == i and w.t0 == pytest.approx(10.0 + i * hop / FS)
        assert w.data.flags.owndata or w.data.base is not None
    assert out[-1].speed_hz is not None


def test_gap_resets_window_and_reports() -> None:
    blocks, data = stream(10, 100)
    fr = Framer(250)
    got = []
    events = []
    for b in blocks[:3] + blocks[4:]:  # seq 3 lost
        w, ev = fr.push(b)
        got += w
        events += ev
    assert len(events) == 1 and events[0].kind == EventKind.GAP_DETECTED
    assert "expected seq 3, got 4" in events[0].message
    assert events[0].data["dropped_samples"] == 50  # 300 buffered - 250 emitted
    assert fr.gaps == 1
    np.testing.assert_array_equal(got[0].data, data[:, :250])
    np.testing.assert_array_equal(got[1].data, data[:, 400:650])  # restarted after the gap
    assert got[1].t0 == pytest.approx(10.4)


def test_bad_block_and_format_change_reset() -> None:
    blocks, _ = stream(4, 100)
    fr = Framer(150)
    fr.push(blocks[0])
    bad = WaveformBlock("a", blocks[1].data, FS, 0.0, 1, ("x", "y"), ("g", "g"), quality=Quality.BAD, reason="timeout")
    w, ev = fr.push(bad)
    assert w == [] and "bad block" in ev[0].message
    w, ev = fr.push(blocks[2])
    assert ev == [] and w == []
    other = WaveformBlock("a", blocks[3].data, 2 * FS, 0.0, 3, ("x", "y"), ("g", "g"))
    _, ev = fr.push(other)
    assert "changed" in ev[0].message


def test_assets_are_independent_and_passthrough() -> None:
    blocks, _ = stream(3, 100)
    fr = Framer(0)
    assert [fr.push(b)[0][0] for b in blocks] == blocks
    other = WaveformBlock("b", blocks[0].data, FS, 0.0, 50, ("x", "y"), ("g", "g"))
    _, ev = fr.push(other)
    assert ev == []
    with pytest.raises(PipelineError):
        Framer(100, 1.0)


def test_buffer_is_reused_for_long_streams() -> None:
    blocks, _ = stream(200, 128)
    fr = Framer(1024, 0.5)
    for b in blocks[:5]:
        fr.push(b)
    buf = fr._assets["a"].buf
    for b in blocks[5:]:
        fr.push(b)
    assert fr._assets["a"].buf is buf  # no growth, no reallocation per block


def test_feature_stream_frames_and_gaps() -> None:
    from edgekit.pipeline import FeatureStream, PipelineConfig

    rng = np.random.default_rng(0)
    stream_ = FeatureStream(PipelineConfig(window=2048, overlap=0.5))
    frames, events = [], []
    for seq in (0, 1, 2, 3, 5, 6):
        blk = WaveformBlock("m", rng.standard_normal((3, 1024)).astype(np.float32), 25600.0, seq * 0.04, seq,
                            ("a", "b", "c"), ("g",) * 3)
        f, e = stream_.push(blk)
        frames += f
        events += e
    assert [f.seq for f in frames] == [0, 1, 2, 3]  # 4 blocks -> 3 windows, gap, 2 blocks -> 1 window
    assert len(events) == 1 and events[0].kind == EventKind.GAP_DETECTED
    assert frames[0].names == stream_.names and frames[0].values.shape == (3, len(stream_.names))


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 300), min_size=1, max_size=25),
    skips=st.lists(st.booleans(), min_size=25, max_size=25),
    window=st.integers(16, 400),
    overlap=st.sampled_from([0.0, 0.25, 0.5, 0.9]),
)
def test_framer_matches_a_simple_model(sizes: list[int], skips: list[bool], window: int, overlap: float) -> None:
    fr = Framer(window, overlap)
    hop = fr.hop
    seq, pos = 0, 0
    runs: list[list[np.ndarray]] = [[]]
    got: list[WaveformBlock] = []
    gaps = 0
    for size, skip in zip(sizes, skips, strict=False):
        if skip and runs[-1]:
            seq += 1  # a lost block
            runs.append([])
        data = (np.arange(size, dtype=np.float32) + pos)[None, :]
        pos += size
        w, ev = fr.push(WaveformBlock("a", data, FS, 0.0, seq, ("x",), ("g",)))
        got += w
        gaps += len(ev)
        runs[-1].append(data)
        seq += 1
    expected = []
    for run in runs:
        if not run:
            continue
        cat = np.concatenate(run, axis=1)
        expected += [cat[:, i : i + window] for i in range(0, cat.shape[1] - window + 1, hop)]
    assert gaps == len([r for r in runs[1:] if r])
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a.data, b)
