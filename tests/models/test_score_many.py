"""Detector.score_many: several frames in one run per model give exactly what score() frame by frame gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from model_helpers import NAMES, frame, healthy_values, write_model

from edgekit.errors import PipelineError
from edgekit.models import BaselineConfig, ModelConfig, build_detector
from edgekit.types import Event, EventKind, FeatureFrame, Quality

INPUTS = ["rms", "kurtosis", "crest_factor", "velocity_rms_mm_s", "band_2000_5000_hz"]
ASSETS = ("pumpA", "pumpB", "fanC")


def _stream(seed: int) -> list[FeatureFrame]:
    """Frames of three assets interleaved in arrival order: commissioning completes mid-stream, a fault
    on pumpB/ch1 raises, escalates (zone C) and clears, fanC has 3 channels, some rows NaN or BAD, and
    one frame has the wrong feature names."""
    rng = np.random.default_rng(seed)
    frames = []
    for t in range(70):
        for a, asset in enumerate(ASSETS):
            if (t + a) % 9 == 4:
                continue  # assets do not all deliver every round
            v = healthy_values(rng, channels=3 if asset == "fanC" else 2)
            q = [Quality.GOOD] * v.shape[0]
            if asset == "pumpB" and 40 <= t < 52:
                v[1, NAMES.index("kurtosis")] *= 1.15 + 0.03 * (t - 40)
                v[1, NAMES.index("zone")] = 2.0 if t >= 47 else 1.0
            if asset == "fanC" and t in (35, 50):
                v[2, NAMES.index("rms")] *= 40  # single spikes: below k-of-n
            if asset == "pumpA" and t % 17 == 5:
                v[0, NAMES.index("rms")] = np.nan
            if asset == "pumpA" and t % 13 == 7:
                q[1] = Quality.BAD
            if asset == "fanC" and t % 11 == 3:
                q[0] = Quality.UNCERTAIN
            frames.append(frame(v, asset=asset, seq=t, quality=q))
    broken = frames[90]
    frames[90] = FeatureFrame(asset=broken.asset, values=broken.values[:, :-1], names=NAMES[:-1],
                              channels=broken.channels, t0=broken.t0, seq=broken.seq, quality=broken.quality)
    return frames


def _detector(tmp: Path, models: Path):  # type: ignore[no-untyped-def]
    a = write_model(models / "a.onnx", INPUTS)
    b = write_model(models / "b.onnx", ["rms", "peak"], normalise="none", threshold=0.2, scale=2.0)
    c = write_model(models / "c.onnx", INPUTS[:3], scale=0.5)
    cfgs = [
        ModelConfig(path=str(a)),
        # Raw features: scored from the first block, alarming at the model's own threshold (0.2, below the
        # healthy level) until the baseline exists, then at the calibrated one: alarms raise, then clear.
        ModelConfig(path=str(b), name="raw", channels=["ch1", "ch2"], model_threshold_floor=False),
        ModelConfig(path=str(c), name="pumps", assets=["pumpA", "pumpB"]),
    ]
    return build_detector(cfgs, NAMES, tmp, baseline=BaselineConfig(commission_blocks=20, min_blocks=20))


def _same_events(x: list[Event], y: list[Event]) -> None:
    """Identical events; the score (and the exceedance derived from it) up to float32 rounding."""
    assert len(x) == len(y)
    for e, f in zip(x, y, strict=True):
        rest = {k: v for k, v in e.data.items() if k not in ("score", "exceedance")}
        assert (e.kind, e.source, e.message, e.severity, e.ts, rest) == \
               (f.kind, f.source, f.message, f.severity, f.ts, {k: f.data[k] for k in rest})
        for key, rel in (("score", 1e-6), ("exceedance", 1e-3)):
            a, b = e.data.get(key), f.data.get(key)
            assert (a is None and b is None) or a == pytest.approx(b, rel=rel, abs=1e-4), key


@pytest.mark.parametrize("seed", [0, 1])
def test_score_many_equals_scoring_one_by_one(tmp_path: Path, seed: int) -> None:
    frames = _stream(seed)
    one = _detector(tmp_path / "one", tmp_path)
    many = _detector(tmp_path / "many", tmp_path)
    expected: list[tuple[FeatureFrame, list[Event]] | type[Exception]] = []
    for f in frames:
        try:
            expected.append(one.score(f))
        except PipelineError:
            expected.append(PipelineError)
    got = []
    rng = np.random.default_rng(seed + 100)
    i = 0
    while i < len(frames):  # uneven worker batches, sometimes one frame
        n = int(rng.integers(1, 13))
        got += many.score_many(frames[i:i + n])
        i += n
    assert len(got) == len(expected)
    kinds = []
    for exp, res in zip(expected, got, strict=True):
        if exp is PipelineError:
            assert isinstance(res.error, PipelineError) and res.events == [] and res.frame.names == NAMES[:-1]
            continue
        assert res.error is None and isinstance(exp, tuple)
        assert res.frame.names == exp[0].names and res.frame.channels == exp[0].channels
        nf = len(NAMES)
        np.testing.assert_array_equal(res.frame.values[:, :nf], exp[0].values[:, :nf])  # NaN == NaN here
        # onnxruntime's kernels may round the last bit differently for another batch size.
        np.testing.assert_allclose(res.frame.values[:, nf:], exp[0].values[:, nf:], rtol=1e-6, atol=0)
        assert res.frame.quality is exp[0].quality and res.frame.seq == exp[0].seq
        _same_events(res.events, exp[1])
        kinds += [e.kind for e in res.events]
    # The stream exercises what it should: alarms raised, escalated and cleared; scores and NaNs.
    assert EventKind.ALARM_RAISED in kinds and EventKind.ALARM_CLEARED in kinds
    assert any(e.data.get("escalated") for r in got if r.error is None for e in r.events)
    scores = np.concatenate([r.frame.column("anomaly_score_pumps") for r in got if r.error is None])
    assert np.isfinite(scores).sum() > 100 and np.isnan(scores).sum() > 100  # fanC, commissioning, BAD
    for asset in ASSETS:
        assert one.threshold(asset, "a") == many.threshold(asset, "a")
        assert one.baseline(asset) is not None and many.baseline(asset) is not None


def test_score_many_of_nothing_and_of_only_broken_frames(tmp_path: Path) -> None:
    det = _detector(tmp_path / "b", tmp_path)
    assert det.score_many([]) == []
    f = _stream(0)[90]
    (res,) = det.score_many([f])
    assert res.frame is f and isinstance(res.error, PipelineError) and "feature names" in str(res.error)
    with pytest.raises(PipelineError, match="feature names that differ"):
        det.score(f)
