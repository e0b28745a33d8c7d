"""The model contract: each kind of bad model is refused with its own specific message."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from model_helpers import NAMES, sum_squares_graph, write_model
from onnx import TensorProto, helper

from edgekit.errors import ModelContractError
from edgekit.models import annotate, check, load_scorer
from edgekit.models.contract import KEY_INPUTS, KEY_SCORE

INPUTS = ["rms", "kurtosis", "crest_factor"]


def test_good_model_passes_and_reports_its_metadata(tmp_path: Path) -> None:
    path = write_model(tmp_path / "m.onnx", INPUTS, version="7.1", threshold=3.5)
    info = check(path, NAMES)
    assert info.inputs == tuple(INPUTS)
    assert info.threshold == 3.5
    assert info.version == "7.1"
    assert info.normalise == "baseline"
    assert len(info.sha256) == 64


def test_missing_features_are_named(tmp_path: Path) -> None:
    path = write_model(tmp_path / "m.onnx", ["rms", "env_bpfo_amp", "h1x_amp"])
    with pytest.raises(ModelContractError, match=r"does not produce: \['env_bpfo_amp', 'h1x_amp'\]"):
        check(path, NAMES)


def test_wrong_input_dtype_is_refused(tmp_path: Path) -> None:
    path = write_model(tmp_path / "m.onnx", INPUTS, elem=TensorProto.DOUBLE)
    with pytest.raises(ModelContractError, match=r"input 'X' has dtype tensor\(double\); edgekit feeds float32"):
        check(path, NAMES)


def test_fixed_batch_dimension_is_refused(tmp_path: Path) -> None:
    path = write_model(tmp_path / "m.onnx", INPUTS, batch=1)
    with pytest.raises(ModelContractError, match="fixed batch dimension of 1.*must be dynamic"):
        check(path, NAMES)


def test_wrong_output_shape_is_refused(tmp_path: Path) -> None:
    path = write_model(tmp_path / "m.onnx", INPUTS, out_shape=["N", 3])
    with pytest.raises(ModelContractError, match=r"score output 'score' has shape \['N', 3\]; it must be \[batch\]"):
        check(path, NAMES)


def test_output_shape_only_visible_when_run_is_refused_by_the_smoke_run(tmp_path: Path) -> None:
    # Tiles the score by a width taken from a runtime input shape: no static shape to check, so the
    # contract check passes and the test run at load time refuses it.
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", "F"])
    y = helper.make_tensor_value_info("score", TensorProto.FLOAT, None)
    nodes = [
        helper.make_node("ReduceSum", ["X", "axes"], ["ss"], keepdims=1),
        helper.make_node("Shape", ["X"], ["shp"]),
        helper.make_node("Slice", ["shp", "one", "two"], ["width"]),
        helper.make_node("Concat", ["one", "width"], ["reps"], axis=0),
        helper.make_node("Tile", ["ss", "reps"], ["score"]),
    ]
    inits = [helper.make_tensor(n, TensorProto.INT64, [1], [v]) for n, v in (("axes", 1), ("one", 1), ("two", 2))]
    model = helper.make_model(helper.make_graph(nodes, "liar", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "liar.onnx"
    annotate(model, inputs=INPUTS, version="1", out=path)
    with pytest.raises(ModelContractError, match=r"gave output shape \[3, 3\]; wrong output shape"):
        load_scorer(path, NAMES)


def test_missing_metadata_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bare.onnx"
    onnx.save(sum_squares_graph(3), str(path))
    with pytest.raises(ModelContractError, match=r"metadata is missing \['edgekit.inputs', 'edgekit.score'\]"):
        check(path, NAMES)


def test_wrong_score_direction_is_refused(tmp_path: Path) -> None:
    model = annotate(sum_squares_graph(3), inputs=INPUTS, version="1")
    for p in model.metadata_props:
        if p.key == KEY_SCORE:
            p.value = "lower_is_anomalous"
    onnx.save(model, str(tmp_path / "m.onnx"))
    with pytest.raises(ModelContractError, match="requires 'higher_is_anomalous'"):
        check(tmp_path / "m.onnx", NAMES)


def test_width_mismatch_and_bad_inputs_json(tmp_path: Path) -> None:
    model = annotate(sum_squares_graph(4), inputs=INPUTS, version="1")
    onnx.save(model, str(tmp_path / "w.onnx"))
    with pytest.raises(ModelContractError, match="has 4 columns but metadata 'edgekit.inputs' names 3"):
        check(tmp_path / "w.onnx", NAMES)
    for p in model.metadata_props:
        if p.key == KEY_INPUTS:
            p.value = "rms, kurtosis"
    onnx.save(model, str(tmp_path / "j.onnx"))
    with pytest.raises(ModelContractError, match="is not valid JSON"):
        check(tmp_path / "j.onnx", NAMES)


def test_spectrum_bin_models_are_refused_clearly(tmp_path: Path) -> None:
    spec = {"spectrum": {"band": [0, 5000], "resolution_hz": 3.125, "scaling": "density"}}
    model = annotate(sum_squares_graph(3), inputs=spec, version="1")
    assert json.loads({p.key: p.value for p in model.metadata_props}[KEY_INPUTS]) == spec
    onnx.save(model, str(tmp_path / "s.onnx"))
    with pytest.raises(ModelContractError, match="reads spectrum bins"):
        check(tmp_path / "s.onnx", NAMES)


def test_unreadable_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(ModelContractError, match="cannot read the file"):
        check(tmp_path / "nope.onnx", NAMES)
    (tmp_path / "junk.onnx").write_bytes(b"not a model at all")
    with pytest.raises(ModelContractError, match="onnxruntime cannot load it"):
        check(tmp_path / "junk.onnx", NAMES)


def test_third_party_skl2onnx_isolation_forest_annotated_loads_and_scores(tmp_path: Path) -> None:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.ensemble import IsolationForest

    rng = np.random.default_rng(3)
    x = rng.standard_normal((300, len(INPUTS))).astype(np.float32)
    forest = IsolationForest(n_estimators=8, random_state=0).fit(x)
    exported = to_onnx(forest, initial_types=[("features", FloatTensorType([None, len(INPUTS)]))],
                       target_opset={"": 17, "ai.onnx.ml": 3})
    # Unannotated, the export is refused for missing metadata ...
    onnx.save(exported, str(tmp_path / "raw.onnx"))
    with pytest.raises(ModelContractError, match="metadata is missing"):
        check(tmp_path / "raw.onnx", NAMES)
    # ... annotated (scores output, negated in-graph) it loads and scores all rows in one call.
    path = tmp_path / "iforest.onnx"
    annotate(exported, inputs=INPUTS, version="sk-1", output="scores", negate=True, normalise="baseline", out=path)
    scorer = load_scorer(path, NAMES)
    probe = np.vstack([np.zeros((1, 3)), np.full((1, 3), 8.0), [[np.nan, 0, 0]]]).astype(np.float32)
    s = scorer.score(probe)
    assert np.isnan(s[2])
    assert s[1] > s[0]  # the far point is more anomalous: the Neg turned decision_function around
    np.testing.assert_allclose(s[:2], -forest.decision_function(probe[:2]), rtol=1e-4, atol=1e-5)


def test_public_api_is_sorted_and_importable() -> None:
    import edgekit.models as m

    assert list(m.__all__) == sorted(m.__all__)
    for name in m.__all__:
        assert getattr(m, name) is not None


def test_annotate_keeps_foreign_metadata_and_replaces_its_own(tmp_path: Path) -> None:
    model = sum_squares_graph(3)
    model.metadata_props.append(onnx.StringStringEntryProto(key="author", value="data team"))
    once = annotate(model, inputs=INPUTS, version="1", threshold=2.0)
    twice = annotate(once, inputs=INPUTS, version="2")
    meta = {p.key: p.value for p in twice.metadata_props}
    assert meta["author"] == "data team" and meta["edgekit.version"] == "2" and "edgekit.threshold" not in meta
    assert len(model.metadata_props) == 1  # the caller's proto is not mutated
