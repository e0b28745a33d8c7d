"""The ONNX model contract: what a model must declare to be scored by edgekit, and its checker.

A model carries these keys in its ONNX ``metadata_props`` (strings):

=====================  ==================================================================================
``edgekit.inputs``     JSON list of the feature names it reads, in input-column order
                       (``["rms", "kurtosis", ...]``), or a spectrum-bin spec
                       ``{"spectrum": {"band": [lo, hi], "resolution_hz": r, "scaling": "density"}}``.
``edgekit.score``      must be ``"higher_is_anomalous"``.
``edgekit.version``    free text, reported in events and logs.
``edgekit.threshold``  optional float: the model author's alarm threshold (score units).
``edgekit.normalise``  ``"baseline"`` (features arrive as robust z-scores of the asset's healthy baseline)
                       or ``"none"`` (raw features). Default ``"none"``.
``edgekit.output``     optional: the name of the score output when the graph has several.
=====================  ==================================================================================

The graph itself must take ONE float32 input of shape ``[batch, n_inputs]`` with a dynamic batch
dimension (all channels of a block go through one ``session.run``) and give a float32 score output of
shape ``[batch]`` or ``[batch, 1]``. :func:`check` verifies all of it against the running pipeline's
feature names and raises :class:`~edgekit.errors.ModelContractError` with a specific message.
:func:`annotate` adds the metadata to a model exported with skl2onnx or torch.onnx (needs the
``onnx`` package, installed with the ``models`` extra; the runtime check needs only onnxruntime).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModelContractError

if TYPE_CHECKING:  # pragma: no cover
    import onnx
    import onnxruntime

__all__ = [
    "KEY_INPUTS",
    "KEY_NORMALISE",
    "KEY_OUTPUT",
    "KEY_SCORE",
    "KEY_THRESHOLD",
    "KEY_VERSION",
    "ModelInfo",
    "SCORE_HIGHER_IS_ANOMALOUS",
    "annotate",
    "check",
    "inspect_session",
    "open_session",
]

KEY_INPUTS = "edgekit.inputs"
KEY_SCORE = "edgekit.score"
KEY_THRESHOLD = "edgekit.threshold"
KEY_VERSION = "edgekit.version"
KEY_NORMALISE = "edgekit.normalise"
KEY_OUTPUT = "edgekit.output"
SCORE_HIGHER_IS_ANOMALOUS = "higher_is_anomalous"
NORMALISE_CHOICES = ("baseline", "none")
_FLOAT = "tensor(float)"


@dataclass(frozen=True)
class ModelInfo:
    """What :func:`check` learned about a model that satisfies the contract."""

    path: str
    inputs: tuple[str, ...]
    input_name: str
    output_name: str
    output_rank: int
    threshold: float | None
    version: str
    normalise: str
    sha256: str
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def n_inputs(self) -> int:
        return len(self.inputs)


def _where(path: str) -> str:
    return f"model {path}"


def open_session(
    model: str | Path | bytes, *, intra_op_threads: int = 1, inter_op_threads: int = 1, where: str = ""
) -> onnxruntime.InferenceSession:
    """An onnxruntime session configured for a gateway: few threads that never spin, sequential, CPU only."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra_op_threads
    opts.inter_op_num_threads = inter_op_threads
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL  # the default, stated
    # No busy-waiting threads: on a gateway the cores are shared, and spinning also made a run right
    # after feature extraction ~2.5x slower here (50 -> 21 us for a 2-row Mahalanobis run).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.log_severity_level = 3
    source = model if isinstance(model, bytes) else str(model)
    where = where or ("in-memory model" if isinstance(model, bytes) else str(model))
    try:
        return ort.InferenceSession(source, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/NoSuchFile types
        raise ModelContractError(f"{_where(where)}: onnxruntime cannot load it: {exc}") from exc


def _parse_inputs(raw: str, where: str) -> tuple[str, ...]:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ModelContractError(f"{where}: metadata {KEY_INPUTS!r} is not valid JSON: {exc}") from exc
    if isinstance(value, dict) and "spectrum" in value:
        spec = value["spectrum"]
        raise ModelContractError(
            f"{where}: reads spectrum bins {spec!r}; the running pipeline delivers feature frames only, "
            "so spectrum-bin models cannot be scored yet (declare feature names in "
            f"{KEY_INPUTS!r} instead)"
        )
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ModelContractError(
            f"{where}: metadata {KEY_INPUTS!r} must be a non-empty JSON list of feature names, got {raw!r}"
        )
    dupes = sorted({v for v in value if value.count(v) > 1})
    if dupes:
        raise ModelContractError(f"{where}: metadata {KEY_INPUTS!r} names {dupes} more than once")
    return tuple(value)


def _dim(d: Any) -> int | None:
    """A static dimension as int, a symbolic/unknown one as None."""
    return d if isinstance(d, int) and not isinstance(d, bool) else None


def inspect_session(
    session: onnxruntime.InferenceSession, feature_names: Sequence[str], *, where: str, sha256: str = ""
) -> ModelInfo:
    """Check a loaded session against the contract and the pipeline's ``feature_names``."""
    meta = dict(session.get_modelmeta().custom_metadata_map)
    missing_keys = [k for k in (KEY_INPUTS, KEY_SCORE) if k not in meta]
    if missing_keys:
        raise ModelContractError(
            f"{where}: metadata is missing {missing_keys}; add it with "
            "edgekit.models.annotate(model, inputs=[...], version=...) (see docs/models.md)"
        )
    if meta[KEY_SCORE] != SCORE_HIGHER_IS_ANOMALOUS:
        raise ModelContractError(
            f"{where}: metadata {KEY_SCORE!r} is {meta[KEY_SCORE]!r}; edgekit requires "
            f"{SCORE_HIGHER_IS_ANOMALOUS!r} (negate the output in the graph, e.g. annotate(..., negate=True))"
        )
    inputs = _parse_inputs(meta[KEY_INPUTS], where)
    normalise = meta.get(KEY_NORMALISE, "none")
    if normalise not in NORMALISE_CHOICES:
        raise ModelContractError(
            f"{where}: metadata {KEY_NORMALISE!r} is {normalise!r}; allowed: {list(NORMALISE_CHOICES)}"
        )
    threshold: float | None = None
    if KEY_THRESHOLD in meta:
        try:
            threshold = float(meta[KEY_THRESHOLD])
        except ValueError:
            threshold = math.nan
        if not math.isfinite(threshold):
            raise ModelContractError(
                f"{where}: metadata {KEY_THRESHOLD!r} is {meta[KEY_THRESHOLD]!r}; it must be a finite number"
            )

    graph_inputs = session.get_inputs()
    if len(graph_inputs) != 1:
        raise ModelContractError(
            f"{where}: has {len(graph_inputs)} inputs {[i.name for i in graph_inputs]}; edgekit feeds exactly "
            "one float32 [batch, n_features] input"
        )
    gin = graph_inputs[0]
    if gin.type != _FLOAT:
        raise ModelContractError(
            f"{where}: input {gin.name!r} has dtype {gin.type}; edgekit feeds float32 ({_FLOAT}) — "
            "export with FloatTensorType / float32 example inputs"
        )
    if len(gin.shape) != 2:
        raise ModelContractError(
            f"{where}: input {gin.name!r} has shape {gin.shape}; it must be 2-D [batch, {len(inputs)}]"
        )
    batch = _dim(gin.shape[0])
    if batch is not None:
        raise ModelContractError(
            f"{where}: input {gin.name!r} has a fixed batch dimension of {batch} (shape {gin.shape}); "
            "edgekit scores all channels of a block in one call, so the first dimension must be dynamic "
            "(skl2onnx: FloatTensorType([None, n]); torch.onnx: dynamic_axes={'input': {0: 'batch'}})"
        )
    width = _dim(gin.shape[1])
    if width is not None and width != len(inputs):
        raise ModelContractError(
            f"{where}: input {gin.name!r} has {width} columns but metadata {KEY_INPUTS!r} names "
            f"{len(inputs)} features"
        )

    missing = [n for n in inputs if n not in set(feature_names)]
    if missing:
        raise ModelContractError(
            f"{where}: reads features the running pipeline does not produce: {missing} "
            f"(the pipeline produces: {list(feature_names)})"
        )

    outputs = session.get_outputs()
    wanted = meta.get(KEY_OUTPUT)
    if wanted is not None:
        chosen = [o for o in outputs if o.name == wanted]
        if not chosen:
            raise ModelContractError(
                f"{where}: metadata {KEY_OUTPUT!r} names output {wanted!r} but the graph's outputs are "
                f"{[o.name for o in outputs]}"
            )
        out = chosen[0]
    else:
        floats = [o for o in outputs if o.type == _FLOAT]
        if len(outputs) == 1:
            out = outputs[0]
        elif len(floats) == 1:
            out = floats[0]
        else:
            raise ModelContractError(
                f"{where}: has outputs {[o.name for o in outputs]}; name the score output in metadata "
                f"{KEY_OUTPUT!r} (annotate(..., output=NAME))"
            )
    if out.type != _FLOAT:
        raise ModelContractError(
            f"{where}: score output {out.name!r} has dtype {out.type}; it must be float32 ({_FLOAT})"
        )
    shape = list(out.shape)
    ok = len(shape) == 1 or (len(shape) == 2 and _dim(shape[1]) in (1, None))
    if not ok or (_dim(shape[0]) is not None):
        raise ModelContractError(
            f"{where}: score output {out.name!r} has shape {shape}; it must be [batch] or [batch, 1] "
            "(one score per row, dynamic batch)"
        )
    return ModelInfo(
        path=where.removeprefix("model "),
        inputs=inputs,
        input_name=gin.name,
        output_name=out.name,
        output_rank=len(shape),
        threshold=threshold,
        version=meta.get(KEY_VERSION, ""),
        normalise=normalise,
        sha256=sha256,
        metadata=meta,
    )


def check(model_path: str | Path, feature_names: Sequence[str]) -> ModelInfo:
    """Load ``model_path`` and verify the contract against ``feature_names``; raise on any breach."""
    path = Path(model_path)
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise ModelContractError(f"{_where(str(path))}: cannot read the file: {exc}") from exc
    session = open_session(blob, where=str(path))
    return inspect_session(
        session, feature_names, where=_where(str(path)), sha256=hashlib.sha256(blob).hexdigest()
    )


def annotate(
    model: str | Path | onnx.ModelProto,
    *,
    inputs: Sequence[str] | Mapping[str, Any],
    version: str,
    threshold: float | None = None,
    normalise: str = "none",
    output: str | None = None,
    negate: bool = False,
    out: str | Path | None = None,
) -> onnx.ModelProto:
    """Add edgekit's contract metadata to an exported model; optionally save it to ``out``.

    ``inputs`` is the list of feature names in column order (or a spectrum-bin spec mapping).
    ``output`` picks the score output when the graph has several (skl2onnx gives ``label`` and
    ``scores``). ``negate=True`` appends a ``Neg`` node so that a lower-is-anomalous output (scikit-learn's
    ``decision_function``) becomes higher-is-anomalous; the graph then has that single output, named
    ``anomaly_score``. Existing edgekit keys are replaced, other metadata is kept.
    """
    import onnx
    from onnx import helper

    proto = onnx.load(str(model)) if isinstance(model, (str, Path)) else model
    proto = onnx.ModelProto.FromString(proto.SerializeToString())  # never mutate the caller's copy
    graph = proto.graph
    names = [o.name for o in graph.output]
    if output is not None and output not in names:
        raise ModelContractError(f"annotate: output {output!r} not in the graph's outputs {names}")
    if normalise not in NORMALISE_CHOICES:
        raise ModelContractError(f"annotate: normalise={normalise!r}; allowed: {list(NORMALISE_CHOICES)}")
    chosen = output if output is not None else (names[0] if len(names) == 1 else None)
    if negate:
        if chosen is None:
            raise ModelContractError(f"annotate: negate=True needs output=NAME (the graph has outputs {names})")
        src = next(o for o in graph.output if o.name == chosen)
        graph.node.append(helper.make_node("Neg", [chosen], ["anomaly_score"], name="edgekit_negate"))
        new_out = onnx.ValueInfoProto()
        new_out.CopyFrom(src)
        new_out.name = "anomaly_score"
        del graph.output[:]
        graph.output.append(new_out)
        chosen = "anomaly_score"
    meta = {
        KEY_INPUTS: json.dumps(list(inputs) if not isinstance(inputs, Mapping) else dict(inputs)),
        KEY_SCORE: SCORE_HIGHER_IS_ANOMALOUS,
        KEY_VERSION: version,
        KEY_NORMALISE: normalise,
    }
    if threshold is not None:
        meta[KEY_THRESHOLD] = repr(float(threshold))
    if chosen is not None and len(graph.output) > 1:
        meta[KEY_OUTPUT] = chosen
    kept = [p for p in proto.metadata_props if not p.key.startswith("edgekit.")]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    for key, value in meta.items():
        proto.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    if out is not None:
        onnx.save(proto, str(out))
    return proto
