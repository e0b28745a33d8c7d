"""Baselines: robust statistics, scale floor, persistence round trip, threshold calibration."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from model_helpers import NAMES, frame, healthy_values

from edgekit.errors import PipelineError
from edgekit.models import BaselineLearner, calibrate_threshold, fit_baseline, load_baseline
from edgekit.models.baseline import baseline_path
from edgekit.types import Quality


def test_median_and_mad_scale_with_floor() -> None:
    rng = np.random.default_rng(0)
    v = np.zeros((2001, 1, 3), np.float32)
    v[:, 0, 0] = 10 + 2 * rng.standard_normal(2001)
    v[:, 0, 1] = 5.0  # constant -> floor 0.05 x 5
    v[:, 0, 2] = 0.0  # constant zero -> absolute floor
    v[:20, 0, 0] = 1e6  # outliers barely move robust statistics
    b = fit_baseline("a", v, ["x", "c", "z"], ["ch"])
    assert b.location[0, 0] == pytest.approx(10, abs=0.2)
    assert b.scale[0, 0] == pytest.approx(2, rel=0.08)
    assert b.scale[0, 1] == pytest.approx(0.25)
    assert b.scale[0, 2] == pytest.approx(1e-6)


def test_learner_persistence_round_trip_and_normalise(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    learner = BaselineLearner("pump/1", blocks=60, sample_rows=50)
    for seq in range(60):
        q = [Quality.GOOD, Quality.BAD] if seq == 3 else None
        learner.add(frame(healthy_values(rng), asset="pump/1", seq=seq, quality=q))
    assert learner.done
    base = learner.fit()
    path = base.save(tmp_path)
    assert path == baseline_path(tmp_path, "pump/1") and path.name == "pump_1.json"
    data = json.loads(path.read_text())
    assert data["format"] == "edgekit.baseline" and data["n_blocks"] == 60
    again = load_baseline(tmp_path, "pump/1")
    assert again is not None
    np.testing.assert_allclose(again.location, base.location)
    np.testing.assert_allclose(again.scale, base.scale)
    assert again.sample_values.shape == (50, len(NAMES))
    # Normalising by channel id and feature name: reordered channels and a foreign channel.
    v = healthy_values(rng)
    z1 = again.normalise(v, NAMES, ("ch0", "ch1"))
    z2 = again.normalise(v[::-1].copy(), NAMES, ("ch1", "ch0"))
    np.testing.assert_allclose(z1, z2[::-1])
    assert np.isnan(again.normalise(v[:1], NAMES, ("other",))).all()
    assert np.abs(np.nan_to_num(z1)).max() < 10


def test_missing_and_corrupt_baselines(tmp_path: Path) -> None:
    assert load_baseline(tmp_path, "nothing") is None
    baseline_path(tmp_path, "bad").write_text("{not json")
    with pytest.raises(PipelineError, match="not valid JSON"):
        load_baseline(tmp_path, "bad")
    baseline_path(tmp_path, "old").write_text(json.dumps({"format": "edgekit.baseline", "version": 99}))
    with pytest.raises(PipelineError, match="not an edgekit baseline of version 1"):
        load_baseline(tmp_path, "old")


def test_learner_refuses_layout_change() -> None:
    learner = BaselineLearner("a", blocks=5)
    learner.add(frame(np.ones((2, len(NAMES)))))
    with pytest.raises(PipelineError, match="layout changed"):
        learner.add(frame(np.ones((3, len(NAMES)))))


def test_calibrated_threshold_meets_the_target_rate_on_fresh_healthy_scores() -> None:
    rng = np.random.default_rng(2)
    train = rng.chisquare(5, 2000)
    thr, med = calibrate_threshold(train, rate=0.001, margin=0.5)
    assert med == pytest.approx(np.median(train))
    fresh = rng.chisquare(5, 200_000)
    assert (fresh >= thr).mean() < 0.001
    with pytest.raises(PipelineError):
        calibrate_threshold(np.array([np.nan, 1.0]), 0.01, 0.1)


def test_crossfit_scores_are_out_of_sample() -> None:
    # A slow drift during commissioning: in-sample z-scores hide it, cross-fitted ones show it.
    rng = np.random.default_rng(4)
    v = (1.0 + np.linspace(0, 0.5, 200)[:, None, None] + 0.01 * rng.standard_normal((200, 1, 1))).astype(np.float32)
    base = fit_baseline("a", v, ["x"], ["ch"], scale_floor=0.0, sample_rows=200)
    inside = np.abs(base.sample_normalised(["x"])).max()
    outside = np.abs(base.sample_crossfit(["x"], scale_floor=0.0)).max()
    assert outside > 2 * inside
    assert base.sample_crossfit(["x"]).shape == (200, 1)
