"""Train the zoo's small autoencoder in numpy and export it as a hand-built ONNX graph.

Architecture 15 -> 10 -> 4 -> 10 -> 15 (tanh hidden layers, linear output), trained with Adam on
mean squared reconstruction error of healthy z-score rows (inputs soft-limited by ``tanh(x/4)*4`` so
a few extreme healthy rows do not dominate training; the same limiter is in the graph).
Score = mean squared reconstruction error per row of the limited input. torch is not needed: the
weights are numpy arrays and the graph is Mul/Tanh/Gemm/Sub/ReduceSumSquare/Mul. The graph works in units
of the limiter (``t = tanh(x/4)``): the 4 is folded into the first layer's weights and, divided out, into
the last layer's, and 16/F scales the sum of squares; 1.2.0 did so to cut the graph from 18 nodes (11
after onnxruntime's fusions) to 12 (9): each node of a run costs ~1.5-2 us right after feature extraction.

Run: ``python models/train/autoencoder.py [OUT_DIR] [--speed-tolerant]`` (default models/zoo; the
speed-tolerant variant is not shipped, see autoencoder.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

NAME = "autoencoder"
LAYERS = (10, 4, 10)
LIMIT = 4.0
EPOCHS = 300
BATCH = 128
LR = 3e-3
SEED = 0

Params = list[tuple[np.ndarray, np.ndarray]]


def limit(x: np.ndarray) -> np.ndarray:
    return np.tanh(x / LIMIT) * LIMIT


def forward(params: Params, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    acts = [x]
    h = x
    for i, (w, b) in enumerate(params):
        h = h @ w + b
        if i < len(params) - 1:
            h = np.tanh(h)
        acts.append(h)
    return h, acts


def train(rows: np.ndarray) -> Params:
    rng = np.random.default_rng(SEED)
    x = limit(rows.astype(np.float64))
    sizes = (x.shape[1], *LAYERS, x.shape[1])
    params: Params = [
        (rng.standard_normal((a, b)) * np.sqrt(1.0 / a), np.zeros(b)) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    m = [(np.zeros_like(w), np.zeros_like(b)) for w, b in params]
    v = [(np.zeros_like(w), np.zeros_like(b)) for w, b in params]
    b1, b2, eps, t = 0.9, 0.999, 1e-8, 0
    for _ in range(EPOCHS):
        order = rng.permutation(len(x))
        for start in range(0, len(x), BATCH):
            xb = x[order[start:start + BATCH]]
            out, acts = forward(params, xb)
            grad = 2.0 * (out - xb) / xb.size
            t += 1
            for i in range(len(params) - 1, -1, -1):
                w, b = params[i]
                gw, gb = acts[i].T @ grad, grad.sum(axis=0)
                if i > 0:
                    grad = (grad @ w.T) * (1.0 - acts[i] ** 2)
                mw, mb = m[i]
                vw, vb = v[i]
                mw = b1 * mw + (1 - b1) * gw
                mb = b1 * mb + (1 - b1) * gb
                vw = b2 * vw + (1 - b2) * gw * gw
                vb = b2 * vb + (1 - b2) * gb * gb
                m[i], v[i] = (mw, mb), (vw, vb)
                c1, c2 = 1 - b1**t, 1 - b2**t
                params[i] = (w - LR * (mw / c1) / (np.sqrt(vw / c2) + eps), b - LR * (mb / c1) / (np.sqrt(vb / c2) + eps))
    return params


def numpy_score(params: Params, rows: np.ndarray) -> np.ndarray:
    x = limit(rows.astype(np.float64))
    out, _ = forward(params, x)
    return ((out - x) ** 2).mean(axis=1)


def graph(params: Params) -> onnx.ModelProto:
    f = params[0][0].shape[0]
    x = helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", f])
    y = helper.make_tensor_value_info("anomaly_score", TensorProto.FLOAT, ["batch"])
    # x0 = L t with t = tanh(x / L): layer 0 reads t with L W0; the output layer gives z / L (W, b / L), so
    # err / L = z / L - t and the score = mean(err^2) = (L^2 / F) x sum((z / L - t)^2).
    inits = [
        numpy_helper.from_array(np.array(1.0 / LIMIT, np.float32), "inv_limit"),
        numpy_helper.from_array(np.array(LIMIT * LIMIT / f, np.float32), "scale"),
    ]
    nodes = [
        helper.make_node("Mul", ["features", "inv_limit"], ["scaled"]),
        helper.make_node("Tanh", ["scaled"], ["t"]),
    ]
    h = "t"
    last = len(params) - 1
    for i, (w, b) in enumerate(params):
        w = w * LIMIT if i == 0 else w
        w, b = (w / LIMIT, b / LIMIT) if i == last else (w, b)
        inits += [numpy_helper.from_array(w.astype(np.float32), f"W{i}"),
                  numpy_helper.from_array(b.astype(np.float32), f"b{i}")]
        nodes.append(helper.make_node("Gemm", [h, f"W{i}", f"b{i}"], [f"z{i}"]))
        h = f"z{i}"
        if i < last:
            nodes.append(helper.make_node("Tanh", [h], [f"h{i}"]))
            h = f"h{i}"
    nodes += [
        helper.make_node("Sub", [h, "t"], ["err"]),
        helper.make_node("ReduceSumSquare", ["err"], ["sse"], axes=[1], keepdims=0),  # opset 17: attribute
        helper.make_node("Mul", ["sse", "scale"], ["anomaly_score"]),
    ]
    g = helper.make_graph(nodes, NAME, [x], [y], inits)
    return common.zoo_model(g, "Autoencoder reconstruction error of baseline z-scores (see autoencoder.md)")


SPEED_TOLERANT_LIMIT = 32.0


def main(out_dir: Path = common.ZOO, *, speed_tolerant: bool = False) -> Path:
    """The shipped model: trained at the commissioning speed only (no speed-stepped rows). With
    ``speed_tolerant`` (not shipped): also on the speed-stepped rows, with a limiter of
    ``SPEED_TOLERANT_LIMIT`` (the speed rows would saturate the default one): it tolerated +-10 % speed
    steps but alarmed 0.3-1.6 s later on unbalance, misalignment and looseness (see autoencoder.md)."""
    global LIMIT
    rows = common.training_rows(speed=speed_tolerant)
    limit_before = LIMIT
    if speed_tolerant:
        LIMIT = SPEED_TOLERANT_LIMIT
    try:
        return common.finish(graph(train(rows)), NAME, rows, out_dir)
    finally:
        LIMIT = limit_before


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--speed-tolerant"]
    print(main(Path(args[0]) if args else common.ZOO, speed_tolerant="--speed-tolerant" in sys.argv[1:]))
