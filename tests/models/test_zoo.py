"""The shipped zoo: contract-valid against the real pipeline, and identical to what the scripts rebuild."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "models"))
sys.path.insert(0, str(REPO / "models" / "train"))

import build_all  # noqa: E402
import common  # noqa: E402
import isolation_forest  # noqa: E402

from edgekit.models import check  # noqa: E402

ZOO_NAMES = ("mahalanobis", "isolation_forest", "autoencoder")


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_shipped_model_satisfies_the_contract_of_the_default_pipeline(name: str) -> None:
    info = check(common.ZOO / f"{name}.onnx", common.extractor().names)
    assert info.inputs == common.ZOO_FEATURES and info.normalise == "baseline"
    assert info.threshold is not None and info.version == common.VERSION


def test_rebuilding_gives_models_that_score_identically(tmp_path: Path) -> None:
    rebuilt = build_all.build_all(tmp_path)
    ref = common.reference_rows()
    for path in rebuilt:
        shipped = common.ZOO / path.name
        a, b = common.onnx_scores(shipped, ref), common.onnx_scores(path, ref)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=f"{path.name}: rebuild differs; run make models")
        assert check(shipped, common.extractor().names).threshold == pytest.approx(
            check(path, common.extractor().names).threshold, rel=1e-5)
        # Healthy-like rows score below the faulty-like ones (rows 48..63 carry large deviations).
        assert np.median(a[48:]) > np.percentile(a[:48], 90), path.name


def test_compact_isolation_forest_export_equals_sklearn_and_skl2onnx() -> None:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    rng = np.random.default_rng(11)
    rows = rng.standard_normal((600, 6)).astype(np.float32)
    forest = isolation_forest.fit(rows, n_trees=8, seed=3)
    ours = common.onnx_scores(isolation_forest.export_forest(forest), rows * 1.5)
    np.testing.assert_allclose(ours, -forest.decision_function(rows * 1.5), rtol=1e-5, atol=1e-6)
    sk = to_onnx(forest, initial_types=[("features", FloatTensorType([None, 6]))],
                 target_opset={"": 17, "ai.onnx.ml": 3})
    from edgekit.models.contract import open_session

    sess = open_session(sk.SerializeToString())
    theirs = sess.run(["scores"], {"features": rows * 1.5})[0].ravel()
    np.testing.assert_allclose(ours, -theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_card_quotes_the_shipped_threshold_and_version(name: str) -> None:
    card = (common.ZOO / f"{name}.md").read_text(encoding="utf-8")
    info = check(common.ZOO / f"{name}.onnx", common.extractor().names)
    assert info.threshold is not None
    block = card.split(common.CARD_BEGIN, 1)[1].split(common.CARD_END, 1)[0]
    assert f"`edgekit.threshold` = **{info.threshold:.4g}**" in block, f"{name}.md is stale: run make models"
    assert f"version `{info.version}`" in block


def test_isolation_forest_out_of_range_term_keeps_rising_where_the_trees_saturate() -> None:
    rng = np.random.default_rng(12)
    rows = rng.standard_normal((600, 6)).astype(np.float32)
    forest = isolation_forest.fit(rows, n_trees=8, seed=3)
    reach, beta = isolation_forest.envelope(forest, rows, excess_at_threshold=3.0)
    assert np.allclose(reach, np.abs(rows).max(axis=0)) and beta > 0
    both = isolation_forest.export_forest(forest, (reach, beta))
    x = rows * 1.5
    # With the term the graph leaves out scikit-learn's constant offset_: -score_samples, not
    # -decision_function (= -score_samples - offset_).
    expected = -forest.score_samples(x) + beta * np.maximum(np.abs(x) - reach, 0).sum(axis=1)
    np.testing.assert_allclose(common.onnx_scores(both, x), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(common.onnx_scores(both, rows), -forest.score_samples(rows), rtol=1e-5, atol=1e-6)
    # One feature drifting far beyond the training range: the forest alone stays flat, the sum rises.
    drift = np.zeros((3, 6), np.float32)
    drift[:, 0] = reach[0] + np.array([1.0, 5.0, 20.0])
    forest_only = common.onnx_scores(isolation_forest.export_forest(forest), drift)
    assert np.ptp(forest_only) < 1e-6
    assert np.all(np.diff(common.onnx_scores(both, drift)) > 3 * beta)
