"""The one-frame fast path of Detector.score: bit for bit what the general (batch) path gives.

``Detector.score`` (and ``score_many`` of one frame) takes a short path for the common case (baseline
present, rows finite and not BAD, models scoring every asset and channel). A second detector with that
path switched off scores the same stream through the general path; values, names, events (with their
evidence) and alarm state must be identical, not merely close: same float32 operations, same runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from model_helpers import NAMES, frame, healthy_values, write_model

from edgekit.models import BaselineConfig, ModelConfig, build_detector
from edgekit.models.detector import Detector, _scored_frame
from edgekit.types import EventKind, FeatureFrame, Quality

ZOO = Path(__file__).resolve().parents[2] / "models" / "zoo"


def _stream(seed: int) -> list[FeatureFrame]:
    """Two assets; pumpB/ch1 develops a fault (raise, escalate in zone C, clear); a few NaN/BAD rows, two
    blocks with z-scores beyond the clip."""
    rng = np.random.default_rng(seed)
    frames = []
    for t in range(90):
        for asset in ("pumpA", "pumpB"):
            v = healthy_values(rng)
            q = [Quality.GOOD, Quality.GOOD]
            if asset == "pumpB" and 40 <= t < 60:
                v[1, NAMES.index("kurtosis")] *= 1.5 + 0.2 * (t - 40)
                v[1, NAMES.index("velocity_rms_mm_s")] *= 3.0
                v[1, NAMES.index("rms")] *= 2.0
                v[1, NAMES.index("peak")] *= 3.0
                v[1, NAMES.index("zone")] = 2.0 if t >= 50 else 1.0
            if asset == "pumpA" and t % 17 == 5:
                v[0, NAMES.index("rms")] = np.nan
            if asset == "pumpA" and t % 13 == 7:
                q[1] = Quality.BAD
            if asset == "pumpA" and t in (70, 71):
                v[0, NAMES.index("kurtosis")] *= 1e7  # z-scores beyond the clip (+-1e4)
            frames.append(frame(v, asset=asset, seq=t, quality=q))
    return frames


def _detector(tmp: Path, models: Path) -> Detector:
    raw = write_model(models / "raw.onnx", ["rms", "peak"], normalise="none", threshold=0.2, scale=2.0)
    cfgs = [ModelConfig(path=str(ZOO / "mahalanobis.onnx"), reload=False),
            ModelConfig(path=str(ZOO / "isolation_forest.onnx"), reload=False),
            ModelConfig(path=str(raw), name="raw", reload=False, model_threshold_floor=False)]
    return build_detector(cfgs, NAMES, tmp, baseline=BaselineConfig(commission_blocks=20, min_blocks=20))


def test_one_frame_path_equals_general_path_bit_for_bit(tmp_path: Path) -> None:
    fast = _detector(tmp_path / "fast", tmp_path)
    general = _detector(tmp_path / "general", tmp_path)
    general._one_ok = False  # every frame through _score_locked
    kinds = []
    for i, f in enumerate(_stream(3)):
        if i % 2:
            (a, ev_a, err), = fast.score_many([f])
            assert err is None
        else:
            a, ev_a = fast.score(f)
        b, ev_b = general.score(f)
        assert a.names == b.names and a.channels == b.channels and a.values.dtype == np.float32
        assert (a.asset, a.t0, a.seq, a.reasons) == (b.asset, b.t0, b.seq, b.reasons) and a.quality is b.quality
        np.testing.assert_array_equal(a.values, b.values)  # exact (NaN == NaN here)
        assert [(e.kind, e.source, e.message, e.severity, e.ts, e.data) for e in ev_a] == \
               [(e.kind, e.source, e.message, e.severity, e.ts, e.data) for e in ev_b]
        kinds += [(e.kind, e.data["model"], bool(e.data["top_features"])) for e in ev_a
                  if e.kind is EventKind.ALARM_RAISED]
    # Runs bound to reused buffers served the 2-row frames (from the second one on).
    assert all(r is not None for g in fast._groups for r in g.bound[2][1])
    # The stream reaches the alarm path of every model, with evidence (z-scores) for each.
    assert {m for _, m, top in kinds if top} == {"mahalanobis", "isolation_forest", "raw"}
    for asset in ("pumpA", "pumpB"):
        for m in ("mahalanobis", "isolation_forest", "raw"):
            assert fast.threshold(asset, m) == general.threshold(asset, m)


def test_one_frame_path_is_taken_for_the_common_case(tmp_path: Path) -> None:
    det = _detector(tmp_path / "d", tmp_path)
    frames = _stream(4)
    for f in frames[:40]:  # commissioning: general path
        assert det._score_one(f) is None or det.baseline(f.asset) is not None
        det.score(f)
    healthy = frames[60]
    assert det._score_one(healthy) is not None
    nan = frame(np.where(np.arange(17) == 0, np.nan, healthy.values), asset=healthy.asset)
    assert det._score_one(nan) is None  # NaN rows: the general path scores the rest


def test_scored_frame_sets_every_field_like_the_constructor() -> None:
    f = frame(healthy_values(np.random.default_rng(0)), asset="a", seq=5)
    f = FeatureFrame(asset=f.asset, values=f.values, names=f.names, channels=f.channels, t0=2.5, seq=5,
                     quality=f.quality, reasons=("ok", "ok"))
    values = np.concatenate([f.values, np.ones((2, 1), np.float32)], axis=1)
    names = (*f.names, "anomaly_score")
    got = _scored_frame(f, values, names)
    assert got == FeatureFrame(asset="a", values=values, names=names, channels=f.channels, t0=2.5, seq=5,
                               quality=f.quality, reasons=("ok", "ok"))
    assert got.values is values and got.column("anomaly_score").tolist() == [1.0, 1.0]


def test_a_failing_bound_run_falls_back_to_the_general_path_and_is_dropped(tmp_path: Path) -> None:
    det = _detector(tmp_path / "d", tmp_path)
    ref = _detector(tmp_path / "r", tmp_path)
    ref._one_ok = False
    frames = [f for f in _stream(5) if f.asset == "pumpB"][:30]
    for f in frames[:25]:
        det.score(f)
        ref.score(f)
    group = det._groups[0]
    entry = group.bound[2]
    assert entry[1][0] is not None

    def broken() -> object:  # what an onnxruntime error in a bound run looks like to the detector
        raise RuntimeError("bound run failed")

    entry[1][0] = (broken, entry[1][0][1])
    for f in frames[25:]:
        a, _ = det.score(f)
        b, _ = ref.score(f)
        np.testing.assert_array_equal(a.values, b.values)
    assert entry[1][0] is None  # dropped after the failure: later frames run unbound


def test_after_a_hot_reload_the_one_frame_path_runs_the_new_model(tmp_path: Path) -> None:
    inputs = ["rms", "kurtosis", "crest_factor"]
    live = write_model(tmp_path / "live.onnx", inputs, version="1")
    v2 = write_model(tmp_path / "v2.onnx", inputs, version="2", scale=3.0)
    det = build_detector([ModelConfig(path=str(live), reload_interval=3600.0)], NAMES, tmp_path / "b",
                         baseline=BaselineConfig(commission_blocks=20, min_blocks=20))
    frames = [f for f in _stream(6) if f.asset == "pumpA" and np.isfinite(f.values).all()
              and max(f.quality.tolist()) < Quality.BAD]
    for f in frames[:25]:
        det.score(f)
    before, _ = det.score(frames[25])  # bound runs serve this frame
    assert det._groups[0].bound
    tmp = live.with_suffix(".tmp")
    tmp.write_bytes(v2.read_bytes())
    st = live.stat()
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    os.replace(tmp, live)
    (ev,) = det.maybe_reload(force=True)
    assert ev.data["accepted"] and ev.data["new"] == "2"
    after, _ = det.score(frames[25])
    np.testing.assert_allclose(after.column("anomaly_score"), 3.0 * before.column("anomaly_score"), rtol=1e-6)
