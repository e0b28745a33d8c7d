"""Small ONNX graphs and feature frames for the model tests (built with onnx.helper, no training)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from edgekit.models import annotate
from edgekit.types import FeatureFrame, Quality

# The core names of the feature contract (/docs: features), without speed/geometry-dependent ones.
NAMES: tuple[str, ...] = (
    "rms", "peak", "peak_to_peak", "crest_factor", "kurtosis", "skewness", "shape_factor",
    "impulse_factor", "clearance_factor", "velocity_rms_mm_s", "zone",
    "band_10_1000_hz", "band_1000_2000_hz", "band_2000_5000_hz", "band_5000_10000_hz",
    "env_peak_hz", "env_peak_amp",
)


def sum_squares_graph(
    n_inputs: int,
    *,
    elem: int = TensorProto.FLOAT,
    batch: int | str = "N",
    out_shape: Sequence[int | str] | None = None,
    scale: float = 1.0,
) -> onnx.ModelProto:
    """score = scale * sum(x^2, axis=1): higher is more anomalous for z-score inputs."""
    x = helper.make_tensor_value_info("X", elem, [batch, n_inputs])
    nodes = [
        helper.make_node("Mul", ["X", "X"], ["sq"]),
        helper.make_node("ReduceSum", ["sq", "axes"], ["ss"], keepdims=0),
        helper.make_node("Mul", ["ss", "k"], ["score"]),
    ]
    inits = [
        helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
        helper.make_tensor("k", elem, [], [scale]),
    ]
    shape = list(out_shape) if out_shape is not None else [batch]
    if out_shape is not None and len(out_shape) == 2 and out_shape[1] != 1:
        # A wrong output: tile the score into several columns.
        nodes[-1] = helper.make_node("Mul", ["ss", "k"], ["s1"])
        nodes.append(helper.make_node("Unsqueeze", ["s1", "axes"], ["s2"]))
        nodes.append(helper.make_node("Tile", ["s2", "reps"], ["score"]))
        inits.append(helper.make_tensor("reps", TensorProto.INT64, [2], [1, int(out_shape[1])]))
    y = helper.make_tensor_value_info("score", elem, shape)
    graph = helper.make_graph(nodes, "sumsq", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def write_model(
    path: Path,
    inputs: Sequence[str],
    *,
    version: str = "1",
    threshold: float | None = None,
    normalise: str = "baseline",
    scale: float = 1.0,
    **graph_kw: object,
) -> Path:
    model = sum_squares_graph(len(inputs), scale=scale, **graph_kw)  # type: ignore[arg-type]
    annotate(model, inputs=inputs, version=version, threshold=threshold, normalise=normalise, out=path)
    return path


def frame(values: np.ndarray, *, asset: str = "pump1", seq: int = 0, names: Sequence[str] = NAMES,
          quality: Sequence[int] | None = None) -> FeatureFrame:
    v = np.asarray(values, dtype=np.float32)
    c = v.shape[0]
    q = np.asarray(quality if quality is not None else [Quality.GOOD] * c, dtype=np.uint8)
    return FeatureFrame(asset=asset, values=v, names=tuple(names), channels=tuple(f"ch{i}" for i in range(c)),
                        t0=float(seq), seq=seq, quality=q)


def healthy_values(rng: np.random.Generator, channels: int = 2) -> np.ndarray:
    """Plausible healthy feature rows: positive levels with a few % spread; zone A."""
    base = np.array([0.1, 0.35, 0.7, 3.5, 3.0, 0.0, 1.25, 4.4, 5.2, 1.2, 0.0,
                     0.004, 0.001, 0.002, 0.0005, 24.0, 0.01], dtype=np.float64)
    noise = 1.0 + 0.05 * rng.standard_normal((channels, base.size))
    v = base * noise
    v[:, 5] = 0.05 * rng.standard_normal(channels)  # skewness around 0
    v[:, 10] = 0.0
    return v.astype(np.float32)
