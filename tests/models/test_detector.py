"""The runtime detector: commissioning, batched scoring, thresholds, alarms, channel groups, hot reload."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest
from model_helpers import NAMES, frame, healthy_values, write_model

from edgekit.errors import ModelContractError
from edgekit.models import BaselineConfig, ModelConfig, build_detector, load_baseline
from edgekit.types import EventKind, Quality, Severity

INPUTS = ["rms", "kurtosis", "crest_factor", "velocity_rms_mm_s", "band_2000_5000_hz"]


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def commission(det, rng, asset="pump1", blocks=60):  # type: ignore[no-untyped-def]
    for seq in range(blocks):
        out, events = det.score(frame(healthy_values(rng), asset=asset, seq=seq))
        # Not scored until the baseline is complete; the block that completes it is scored.
        assert np.isnan(out.column("anomaly_score")).all() == (seq < blocks - 1)
        assert events == []


def test_commissioning_then_scoring_then_alarm(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    model = write_model(tmp_path / "m.onnx", INPUTS)
    det = build_detector([ModelConfig(path=str(model))], NAMES, tmp_path / "baselines",
                         baseline=BaselineConfig(commission_blocks=60))
    commission(det, rng)
    assert load_baseline(tmp_path / "baselines", "pump1") is not None  # persisted
    thr = det.threshold("pump1", "m")
    assert thr is not None and thr.source == "baseline" and thr.value > thr.centre > 0
    out, events = det.score(frame(healthy_values(rng), seq=100))
    assert out.names == (*NAMES, "anomaly_score") and out.values.dtype == np.float32
    assert np.isfinite(out.column("anomaly_score")).all() and events == []
    # A bearing-like fault on channel 1: kurtosis and crest up, band energy up.
    raised = []
    for seq in range(101, 106):
        v = healthy_values(rng)
        v[1, NAMES.index("kurtosis")] *= 3
        v[1, NAMES.index("crest_factor")] *= 2
        v[1, NAMES.index("band_2000_5000_hz")] *= 20
        v[1, NAMES.index("zone")] = 2.0
        _, events = det.score(frame(v, seq=seq))
        raised += events
    (ev,) = raised  # k-of-n: one event, on the third anomalous block, for channel 1 only
    assert ev.kind is EventKind.ALARM_RAISED and ev.data["channel"] == "ch1" and ev.data["seq"] == 103
    assert ev.severity >= Severity.ALARM  # zone C escalates
    assert {f["name"] for f in ev.data["top_features"]} == {"kurtosis", "crest_factor", "band_2000_5000_hz"}
    cleared = []
    for seq in range(106, 112):
        cleared += det.score(frame(healthy_values(rng), seq=seq))[1]
    assert [e.kind for e in cleared] == [EventKind.ALARM_CLEARED]


def test_stored_baseline_is_used_by_a_new_detector(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    model = write_model(tmp_path / "m.onnx", INPUTS)
    cfg = [ModelConfig(path=str(model))]
    det = build_detector(cfg, NAMES, tmp_path, baseline=BaselineConfig(commission_blocks=50))
    commission(det, rng, blocks=50)
    fresh = build_detector(cfg, NAMES, tmp_path, baseline=BaselineConfig(commission_blocks=0))
    out, _ = fresh.score(frame(healthy_values(rng)))
    assert np.isfinite(out.column("anomaly_score")).all()
    assert fresh.threshold("pump1", "m") == det.threshold("pump1", "m")


def test_bad_quality_and_nan_channels_are_not_scored(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    model = write_model(tmp_path / "m.onnx", INPUTS)
    det = build_detector([ModelConfig(path=str(model))], NAMES, tmp_path, baseline=BaselineConfig(commission_blocks=50))
    commission(det, rng, blocks=50)
    v = np.vstack([healthy_values(rng), healthy_values(rng)])
    v[2, NAMES.index("rms")] = np.nan
    out, _ = det.score(frame(v, quality=[Quality.GOOD, Quality.BAD, Quality.GOOD, Quality.UNCERTAIN]))
    s = out.column("anomaly_score")
    assert np.isfinite(s[0]) and np.isnan(s[1]) and np.isnan(s[2])
    assert np.isnan(s[3])  # channel ch3 is not in the baseline (learned on ch0, ch1)
    assert out.quality.tolist() == [0, 2, 0, 1]


def test_several_models_and_channel_groups(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    a = write_model(tmp_path / "a.onnx", INPUTS)
    b = write_model(tmp_path / "b.onnx", ["rms", "peak"], normalise="none", threshold=10.0, scale=2.0)
    det = build_detector(
        [ModelConfig(path=str(a)), ModelConfig(path=str(b), name="raw", channels=["ch1"], calibrate=False)],
        NAMES, tmp_path, baseline=BaselineConfig(commission_blocks=50),
    )
    assert det.columns == ("anomaly_score", "anomaly_score_a", "anomaly_score_raw")
    commission_rows = [frame(healthy_values(rng), seq=i) for i in range(50)]
    for f in commission_rows:
        out, _ = det.score(f)
    raw = out.column("anomaly_score_raw")
    assert np.isnan(raw[0])  # not in its channel group
    v = out.values[1]
    assert raw[1] == pytest.approx(2 * (v[0] ** 2 + v[1] ** 2), rel=1e-5)  # raw features, no baseline needed
    np.testing.assert_array_equal(out.column("anomaly_score"), out.column("anomaly_score_a"))
    thr = det.threshold("pump1", "raw")
    assert thr is not None and thr.source == "model" and thr.value == 10.0


def test_contract_failures_at_build_name_the_model(tmp_path: Path) -> None:
    bad = write_model(tmp_path / "bad.onnx", ["rms", "env_bpfo_amp"])
    with pytest.raises(ModelContractError, match=r"models\[0\] \(bad\):.*\['env_bpfo_amp'\]"):
        build_detector([ModelConfig(path=str(bad))], NAMES, tmp_path)
    ok = write_model(tmp_path / "ok.onnx", INPUTS)
    with pytest.raises(ModelContractError, match="used twice"):
        build_detector([ModelConfig(path=str(ok)), ModelConfig(path=str(ok))], NAMES, tmp_path)
    with pytest.raises(ModelContractError, match="no threshold"):
        build_detector([ModelConfig(path=str(ok), calibrate=False)], NAMES, tmp_path)


def _replace(path: Path, src: Path, bump_ns: int) -> None:
    """Atomic replacement (as docs/models.md recommends) with a distinct mtime."""
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(src.read_bytes())
    st = path.stat()
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns + bump_ns))
    os.replace(tmp, path)


def test_hot_reload_swaps_valid_models_and_refuses_bad_ones(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    clock = Clock()
    live = write_model(tmp_path / "live.onnx", INPUTS, version="1")
    v2 = write_model(tmp_path / "v2.onnx", INPUTS, version="2", scale=3.0)
    bad = write_model(tmp_path / "bad.onnx", ["rms", "h1x_amp"], version="3")
    v4 = write_model(tmp_path / "v4.onnx", INPUTS, version="4", scale=4.0)
    det = build_detector([ModelConfig(path=str(live), reload_interval=5.0)], NAMES, tmp_path / "b",
                         baseline=BaselineConfig(commission_blocks=50), clock=clock)
    commission(det, rng, blocks=50)
    probe = frame(healthy_values(rng))
    s1 = det.score(probe)[0].column("anomaly_score")
    thr1 = det.threshold("pump1", "live")

    _replace(live, v2, 1_000_000)
    out, events = det.score(probe)  # interval not yet due: the old model still scores
    np.testing.assert_array_equal(out.column("anomaly_score"), s1)
    assert events == []
    clock.t = 6.0
    out, events = det.score(probe)  # due: validated and swapped before this block is scored
    (ev,) = events
    assert ev.kind is EventKind.MODEL_RELOADED and ev.data["accepted"] and ev.data["new"] == "2"
    np.testing.assert_allclose(out.column("anomaly_score"), 3 * s1, rtol=1e-5)
    thr2 = det.threshold("pump1", "live")
    assert thr1 is not None and thr2 is not None and thr2.value == pytest.approx(3 * thr1.value, rel=1e-5)

    _replace(live, bad, 2_000_000)
    clock.t = 12.0
    out, events = det.score(probe)
    (ev,) = events
    assert ev.kind is EventKind.MODEL_RELOADED and not ev.data["accepted"] and ev.severity is Severity.WARNING
    assert "h1x_amp" in ev.message and "keeping version '2'" in ev.message
    np.testing.assert_allclose(out.column("anomaly_score"), 3 * s1, rtol=1e-5)  # old model stays
    clock.t = 18.0
    assert det.score(probe)[1] == []  # the same bad file is not reported again

    live.write_bytes(b"half-written garbage")
    os.utime(live, ns=(1, 10**18))
    (ev,) = det.maybe_reload(force=True)
    assert not ev.data["accepted"] and "protobuf" in ev.message and str(live) in ev.message
    _replace(live, v4, 3_000_000)
    (ev,) = det.maybe_reload(force=True)
    assert ev.data["accepted"] is True and ev.data["old"] == "2" and ev.data["new"] == "4"


def test_reload_from_another_thread_while_scoring(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    live = write_model(tmp_path / "live.onnx", INPUTS, version="1")
    v2 = write_model(tmp_path / "v2.onnx", INPUTS, version="2", scale=3.0)
    det = build_detector([ModelConfig(path=str(live))], NAMES, tmp_path / "b",
                         baseline=BaselineConfig(commission_blocks=50))
    commission(det, rng, blocks=50)
    frames = [frame(healthy_values(rng), seq=i) for i in range(300)]
    results = []

    def worker() -> None:
        for f in frames:
            results.append(det.score(f)[0])

    t = threading.Thread(target=worker)
    t.start()
    _replace(live, v2, 1_000_000)
    det.maybe_reload(force=True)
    t.join()
    assert len(results) == 300 and all(np.isfinite(r.column("anomaly_score")).all() for r in results)
    assert det.models["live"].info.version == "2"


def test_model_threshold_is_a_floor_for_calibration(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    m = write_model(tmp_path / "m.onnx", INPUTS, threshold=1e6)
    cfgs = [ModelConfig(path=str(m), name="floor"), ModelConfig(path=str(m), name="free", model_threshold_floor=False)]
    det = build_detector(cfgs, NAMES, tmp_path, baseline=BaselineConfig(commission_blocks=50))
    commission(det, rng, blocks=50)
    floor, free = det.threshold("pump1", "floor"), det.threshold("pump1", "free")
    assert floor is not None and floor.value == 1e6 and floor.source.startswith("model (floor")
    assert free is not None and free.source == "baseline" and free.value < 100


def test_conformance_deterministic_no_mutation_survives_reload(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    model = write_model(tmp_path / "m.onnx", INPUTS)
    frames = [frame(healthy_values(rng), seq=i) for i in range(60)]
    copies = [f.values.copy() for f in frames]
    outs = []
    for run in ("a", "b"):
        det = build_detector([ModelConfig(path=str(model))], NAMES, tmp_path / run,
                             baseline=BaselineConfig(commission_blocks=50))
        outs.append([det.score(f)[0] for f in frames])
    for f, c in zip(frames, copies, strict=True):
        np.testing.assert_array_equal(f.values, c)  # input not mutated
    for x, y in zip(*outs, strict=True):
        np.testing.assert_array_equal(x.values, y.values)  # deterministic
        assert x.values.dtype == np.float32 and x.values.shape == (2, len(NAMES) + 1)
    again = build_detector([ModelConfig(path=str(model))], NAMES, tmp_path / "a",
                           baseline=BaselineConfig(commission_blocks=50))
    np.testing.assert_array_equal(again.score(frames[-1])[0].values, outs[0][-1].values)  # after reload


def test_corrupt_baseline_is_moved_aside_and_recommissioned(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    model = write_model(tmp_path / "m.onnx", INPUTS)
    bdir = tmp_path / "b"
    bdir.mkdir()
    (bdir / "pump1.json").write_text("{torn")
    det = build_detector([ModelConfig(path=str(model))], NAMES, bdir, baseline=BaselineConfig(commission_blocks=50))
    commission(det, rng, blocks=50)
    names = sorted(p.name for p in bdir.iterdir())
    assert names[0] == "pump1.json" and names[1].startswith("pump1.json.corrupt-")
    assert load_baseline(bdir, "pump1") is not None
