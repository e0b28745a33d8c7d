"""Scorer fast paths give exactly what the plain per-row path gives (direct pybind run, all-good shortcut)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from model_helpers import NAMES, write_model

from edgekit.models import load_scorer
from edgekit.types import Quality

INPUTS = ["rms", "kurtosis", "crest_factor"]


def _reference(scorer: object, x: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Row by row through the public ``session.run``: NaN for non-finite or BAD rows."""
    out = np.full(len(x), np.nan, dtype=np.float32)
    sess, info = scorer.session, scorer.info  # type: ignore[attr-defined]
    for i, row in enumerate(x):
        if np.isfinite(row).all() and quality[i] < Quality.BAD:
            out[i] = np.asarray(sess.run([info.output_name], {info.input_name: row[None, :]})[0]).ravel()[0]
    return out


def test_scores_match_the_public_run_row_by_row_on_every_path(tmp_path: Path) -> None:
    scorer = load_scorer(write_model(tmp_path / "m.onnx", INPUTS, normalise="none"), NAMES)
    assert scorer._fast_run is not None  # this onnxruntime exposes the pybind session: the fast path runs
    rng = np.random.default_rng(3)
    good = rng.normal(size=(5, 3)).astype(np.float32)
    q0 = np.zeros(5, dtype=np.uint8)
    cases = {
        "all good": (good, q0),
        "nan row": (np.where(np.arange(5)[:, None] == 2, np.nan, good).astype(np.float32), q0),
        "inf value": (np.where((np.arange(5)[:, None] == 4) & (np.arange(3) == 1), np.inf, good).astype(np.float32), q0),
        "bad quality": (good, np.array([0, 1, 2, 0, 0], dtype=np.uint8)),
        # Every value finite but huge (a float32 sum would overflow): scored, not dropped.
        "huge finite": (np.full((5, 3), 3e38, dtype=np.float32), q0),
    }
    for label, (x, q) in cases.items():
        got = scorer.score(x, q)
        want = _reference(scorer, x, q)
        np.testing.assert_array_equal(got, want, err_msg=label)
        assert got.dtype == np.float32 and got.shape == (5,)
    assert np.isnan(scorer.score(cases["bad quality"][0], cases["bad quality"][1])[2])
    assert not np.isnan(scorer.score(cases["huge finite"][0], q0)).any()  # scored, not dropped
    assert scorer.score(np.empty((0, 3), np.float32), np.empty(0, np.uint8)).shape == (0,)


def test_public_session_run_is_used_when_the_pybind_session_is_absent(tmp_path: Path) -> None:
    scorer = load_scorer(write_model(tmp_path / "m.onnx", INPUTS), NAMES)
    x = np.random.default_rng(4).normal(size=(4, 3)).astype(np.float32)
    fast = scorer.score(x)
    scorer._fast_run = None
    np.testing.assert_array_equal(scorer.score(x), fast)


def test_bound_run_gives_what_run_gives_on_refilled_buffers(tmp_path: Path) -> None:
    zoo = Path(__file__).resolve().parents[2] / "models" / "zoo"
    rng = np.random.default_rng(5)
    for path in (write_model(tmp_path / "m.onnx", INPUTS), zoo / "isolation_forest.onnx"):  # [batch], [batch, 1]
        scorer = load_scorer(path, NAMES)
        k = scorer.info.n_inputs
        for n in (1, 2, 16):
            buf = rng.normal(size=(n, k)).astype(np.float32)
            bound = scorer.bind(buf)
            assert bound is not None
            run, out = bound
            assert out.shape == (n, 1) and out.dtype == np.float32
            for _ in range(3):  # refilled in place, as the detector does
                buf[...] = rng.normal(size=(n, k)) * 3
                run()
                np.testing.assert_array_equal(out.reshape(n), scorer.run(buf.copy()))
