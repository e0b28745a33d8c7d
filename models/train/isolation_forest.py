"""Train the zoo's IsolationForest (scikit-learn) and export it as ONE ONNX TreeEnsembleRegressor.

Why not ``skl2onnx.to_onnx`` directly: its IsolationForest converter emits ~27 nodes per tree; for 100
trees conversion took ~22 s here (its identity-removal pass is superlinear) and scoring 2 rows took
0.7-5.6 ms (per-node overhead), which breaks both the < 30 s rebuild and the < 10 % scoring-cost
targets. This exporter writes all trees into a single ``ai.onnx.ml.TreeEnsembleRegressor`` whose leaf
value is the tree's path length ``depth + c(n_leaf)`` already multiplied by
``-ln 2 / (n_trees c(max_samples))`` (summed over trees: the exponent), then ``Exp``: the isolation
score ``2^(-E[h(x)] / c(max_samples))`` of Liu et al. (scikit-learn's ``-score_samples``, higher = more
anomalous), to which one ``Gemm`` adds the out-of-range term: 6 nodes (1.1.0: 10). Each node of a run
costs ~1.5-2 us right after feature extraction (cold caches), tree traversal a few us per row. Without
the term (``export_forest(forest)``) the graph adds scikit-learn's ``offset_`` instead and gives exactly
``-decision_function`` (the tests compare it with scikit-learn and skl2onnx); the shipped model leaves
the constant offset out: a shift of every score changes no threshold-relative decision. tests/models/test_zoo.py checks it against both
scikit-learn and skl2onnx's own conversion (target_opset {'': 17, 'ai.onnx.ml': 3}).

Run: ``python models/train/isolation_forest.py [OUT_DIR]`` (default models/zoo).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

NAME = "isolation_forest"
# 1.2.0: 24 trees of 128 samples (1.1.0: 100 x 256). A run's cost beyond its fixed part is tree
# traversal, per row and tree, mostly cache misses right after a feature extraction: one 2-channel block
# took ~35 us more to score than with the Mahalanobis model. Every quality figure of benchmarks/detection.py
# held (isolation_forest.md); 32 trees of 64 samples tolerated +-10 % speed steps worse (65 vs 0 blocks
# per 1,000 above threshold, quick run).
N_TREES = 24
MAX_SAMPLES = 128
SEED = 0
# Out-of-range term: a row whose features lie beyond the training rows' range by this many robust SDs in
# total (sum over features of |z| - max training |z|) scores as much above the healthy median as the
# forest's own threshold. Trees cannot extrapolate: past the training range every value of a feature
# lands in the same leaf, so a single feature drifting far out (unbalance: velocity z 3 -> 30) kept the
# forest's score flat below its threshold until zone C.
EXCESS_AT_THRESHOLD = 3.0


def fit(rows: np.ndarray, n_trees: int = N_TREES, seed: int = SEED, max_samples: int = MAX_SAMPLES) -> Any:
    from sklearn.ensemble import IsolationForest

    return IsolationForest(n_estimators=n_trees, max_samples=max_samples, random_state=seed).fit(rows)


def export_forest(forest: Any, envelope: tuple[np.ndarray, float] | None = None) -> onnx.ModelProto:
    """One TreeEnsembleRegressor graph equal to ``-forest.decision_function``; with ``envelope = (r, beta)``
    ``-forest.score_samples`` (no offset) plus ``beta x sum_j max(|x_j| - r_j, 0)`` (the out-of-range term)."""
    from sklearn.ensemble._iforest import _average_path_length

    n_features = int(forest.n_features_in_)
    denom = len(forest.estimators_) * float(_average_path_length([forest.max_samples_])[0])
    scale = -math.log(2.0) / denom  # folded into the leaves: the ensemble's sum is the exponent
    attrs: dict[str, list[Any]] = {k: [] for k in (
        "nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_values", "nodes_modes",
        "nodes_truenodeids", "nodes_falsenodeids", "target_treeids", "target_nodeids", "target_ids",
        "target_weights")}
    for t, (est, feats) in enumerate(zip(forest.estimators_, forest.estimators_features_, strict=True)):
        tree = est.tree_
        depth = tree.compute_node_depths().astype(np.float64)  # the decision path length, root = 1
        apl = _average_path_length(tree.n_node_samples)
        for node in range(tree.node_count):
            left, right = int(tree.children_left[node]), int(tree.children_right[node])
            attrs["nodes_treeids"].append(t)
            attrs["nodes_nodeids"].append(node)
            if left == -1:
                attrs["nodes_featureids"].append(0)
                attrs["nodes_values"].append(0.0)
                attrs["nodes_modes"].append("LEAF")
                attrs["nodes_truenodeids"].append(0)
                attrs["nodes_falsenodeids"].append(0)
                attrs["target_treeids"].append(t)
                attrs["target_nodeids"].append(node)
                attrs["target_ids"].append(0)
                attrs["target_weights"].append(float((depth[node] + apl[node] - 1.0) * scale))
            else:
                attrs["nodes_featureids"].append(int(feats[tree.feature[node]]))
                attrs["nodes_values"].append(float(tree.threshold[node]))
                attrs["nodes_modes"].append("BRANCH_LEQ")  # scikit-learn: x <= threshold goes left
                attrs["nodes_truenodeids"].append(left)
                attrs["nodes_falsenodeids"].append(right)
    x = helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", n_features])
    y = helper.make_tensor_value_info("anomaly_score", TensorProto.FLOAT, ["batch", 1])
    nodes = [
        helper.make_node("TreeEnsembleRegressor", ["features"], ["expo"], domain="ai.onnx.ml",
                         n_targets=1, aggregate_function="SUM", post_transform="NONE", **attrs),
        helper.make_node("Exp", ["expo"], ["iso_score"]),
    ]
    if envelope is None:
        nodes.append(helper.make_node("Add", ["iso_score", "offset"], ["anomaly_score"]))
        inits = [numpy_helper.from_array(np.array([[forest.offset_]], np.float32), "offset")]
        doc = "IsolationForest on baseline z-scores; output = -decision_function (see isolation_forest.md)"
    else:
        # iso + beta x sum_j relu(|x_j| - r_j): the sum and the addition in one Gemm (a column of beta).
        reach, beta = envelope
        nodes += [
            helper.make_node("Abs", ["features"], ["absz"]),
            helper.make_node("Sub", ["absz", "reach"], ["beyond"]),
            helper.make_node("Relu", ["beyond"], ["excess"]),
            helper.make_node("Gemm", ["excess", "betas", "iso_score"], ["anomaly_score"]),
        ]
        inits = [
            numpy_helper.from_array(np.asarray(reach, np.float32).reshape(1, n_features), "reach"),
            numpy_helper.from_array(np.full((n_features, 1), beta, np.float32), "betas"),
        ]
        doc = ("IsolationForest isolation score 2^(-E[h]/c) on baseline z-scores (-score_samples) plus an "
               "out-of-range term beta x sum(max(|z| - r, 0)) (see isolation_forest.md)")
    g = helper.make_graph(nodes, NAME, [x], [y], inits)
    return common.zoo_model(g, doc, ml_opset=True)


def envelope(forest: Any, rows: np.ndarray, excess_at_threshold: float = EXCESS_AT_THRESHOLD) -> tuple[np.ndarray, float]:
    """``(r, beta)``: r_j = the largest |z_j| of the training rows; beta such that an excess of
    ``excess_at_threshold`` adds the forest's own threshold-minus-median score."""
    reach = np.abs(rows).max(axis=0).astype(np.float64)
    scores = common.onnx_scores(export_forest(forest), rows)
    thr = common.default_threshold(scores, margin=0.0)
    return reach, (thr - float(np.median(scores))) / excess_at_threshold


def main(out_dir: Path = common.ZOO) -> Path:
    rows = common.training_rows()
    # Margin 0: the forest's scores saturate (at most 0.5, a one-feature fault gives ~0.2), so a threshold
    # far above the healthy tail would never be reached. The out-of-range term is 0 on every training
    # row (r is their maximum), so the threshold is the forest's own.
    forest = fit(rows)
    return common.finish(export_forest(forest, envelope(forest, rows)), NAME, rows, out_dir, margin=0.0)


if __name__ == "__main__":
    print(main(Path(sys.argv[1]) if len(sys.argv) > 1 else common.ZOO))
