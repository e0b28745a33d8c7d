"""Shared pieces of the zoo training scripts: the simulated fleet, the features, the training rows.

Every zoo model reads the same 15 baseline-normalised features (robust z-scores, see
edgekit/models/baseline.py), so one model serves many assets. Training data: 8 simulated healthy
machines (edgekit.sim.physics, seeds TRAIN_SEEDS, varied speed, noise floor and structural
resonance), features from the default pipeline (edgekit.pipeline.build), each machine normalised by a
baseline fitted on its own first BASELINE_BLOCKS blocks and the following TRAIN_BLOCKS blocks used as
training rows (out-of-baseline, as in service), plus SPEED_BLOCKS blocks at each relative speed step of
SPEED_STEPS (normalised by the same nominal-speed baseline): a healthy machine running a few per cent
off its commissioning speed is healthy, so the models learn the direction in which a speed change
moves the features (1x-related band energy, RMS and velocity together, in proportion) as normal
variation, while a change that speed does not explain (velocity alone: unbalance) stays anomalous.
Everything is deterministic.
Seeds >= 2000 are never used here: benchmarks/detection.py evaluates on them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx

from edgekit.models import annotate, fit_baseline
from edgekit.pipeline import FeatureExtractor, PipelineConfig, build
from edgekit.sim.physics import FaultSpec, MachineSignal

ZOO = Path(__file__).resolve().parents[1] / "zoo"
VERSION = "1.2.0"

ZOO_FEATURES: tuple[str, ...] = (
    "rms", "peak", "peak_to_peak", "crest_factor", "kurtosis", "skewness", "shape_factor",
    "impulse_factor", "clearance_factor", "velocity_rms_mm_s",
    "band_10_1000_hz", "band_1000_2000_hz", "band_2000_5000_hz", "band_5000_10000_hz", "env_peak_amp",
)

FS = 25600.0
BLOCK = 8192
CHANNELS = 2
BASELINE_BLOCKS = 60
TRAIN_BLOCKS = 60
TRAIN_SEEDS = tuple(range(1000, 1008))
SPEED_STEPS = (-0.15, -0.10, -0.05, -0.02, 0.02, 0.05, 0.10, 0.15)  # relative to the commissioning speed
SPEED_BLOCKS = 10  # per machine and speed step
# (rpm, noise_g, resonance_hz) per simulated asset of the training fleet.
FLEET: tuple[tuple[float, float, float], ...] = (
    (1480.0, 0.03, 3500.0), (2960.0, 0.02, 4200.0), (990.0, 0.04, 2800.0), (1780.0, 0.03, 5000.0),
    (1480.0, 0.05, 3000.0), (2960.0, 0.03, 2600.0), (1180.0, 0.02, 4600.0), (1780.0, 0.04, 3800.0),
)
# Fixed rows every test compares shipped and rebuilt models on (z-scores: healthy-like and faulty-like).
REFERENCE_SEED = 7


def machine(index: int, seed: int, faults: Sequence[FaultSpec] = ()) -> MachineSignal:
    rpm, noise, res = FLEET[index % len(FLEET)]
    return MachineSignal(fs=FS, block_len=BLOCK, channels=CHANNELS, rpm=rpm, noise_g=noise,
                         resonance_hz=res, faults=faults, seed=seed)


@functools.lru_cache(maxsize=1)
def extractor() -> FeatureExtractor:
    return build(PipelineConfig())


def block_features(sig: MachineSignal, seqs: Sequence[int]) -> np.ndarray:
    """``(blocks, channels, features)`` float32 in the pipeline's name order."""
    ex = extractor()
    return np.stack([ex.compute(sig.block(s), sig.fs).values for s in seqs])


def zoo_columns() -> list[int]:
    names = extractor().names
    return [names.index(n) for n in ZOO_FEATURES]


@functools.lru_cache(maxsize=1)
def _fleet_rows() -> tuple[np.ndarray, np.ndarray]:
    """Healthy z-score rows of the training fleet: (at the commissioning speed, at the speed steps)."""
    names = extractor().names
    cols = zoo_columns()
    chans = tuple(f"ch{i}" for i in range(CHANNELS))
    nominal_rows, speed_rows = [], []
    for i, seed in enumerate(TRAIN_SEEDS):
        sig = machine(i, seed)
        v = block_features(sig, range(BASELINE_BLOCKS + TRAIN_BLOCKS))
        nominal, seq = sig.rpm, BASELINE_BLOCKS + TRAIN_BLOCKS
        for step in SPEED_STEPS:
            sig.set_rpm(nominal * (1.0 + step), seq * BLOCK / FS)
            v = np.concatenate([v, block_features(sig, range(seq, seq + SPEED_BLOCKS))])
            seq += SPEED_BLOCKS
        base = fit_baseline(f"train{i}", v[:BASELINE_BLOCKS], names, chans)
        z = np.stack([base.normalise(b, names, chans) for b in v[BASELINE_BLOCKS:]])[:, :, cols]
        nominal_rows.append(z[:TRAIN_BLOCKS].reshape(-1, len(cols)))
        speed_rows.append(z[TRAIN_BLOCKS:].reshape(-1, len(cols)))

    def finite(parts: list[np.ndarray]) -> np.ndarray:
        out = np.concatenate(parts).astype(np.float32)
        return out[np.isfinite(out).all(axis=1)]

    return finite(nominal_rows), finite(speed_rows)


def training_rows(speed: bool = True) -> np.ndarray:
    """Healthy z-score rows ``(n, len(ZOO_FEATURES))`` float32 from the training fleet: the rows at the
    commissioning speed, then (``speed``) the rows at the speed steps."""
    nominal, stepped = _fleet_rows()
    return np.concatenate([nominal, stepped]) if speed else nominal


def reference_rows() -> np.ndarray:
    """64 fixed z-score rows: 48 healthy-like (N(0,1)), 16 with a few large deviations."""
    rng = np.random.default_rng(REFERENCE_SEED)
    x = rng.standard_normal((64, len(ZOO_FEATURES)))
    x[48:, rng.integers(0, len(ZOO_FEATURES), 16)] += rng.uniform(3, 30, 16)
    return x.astype(np.float32)


def default_threshold(scores: np.ndarray, margin: float = 0.5) -> float:
    """The model's own threshold: the 99.9 % quantile q of healthy training scores (out-of-baseline rows)
    plus ``margin x (q - median)``."""
    from edgekit.models import calibrate_threshold

    thr, _ = calibrate_threshold(scores, rate=0.001, margin=margin)
    return float(thr)


def zoo_model(graph: onnx.GraphProto, doc: str, *, ml_opset: bool = False) -> onnx.ModelProto:
    """Wrap a zoo graph the same way for every model: opset 17 (+ ai.onnx.ml 3), IR 8, producer, doc."""
    opsets = [onnx.helper.make_opsetid("", 17)]
    if ml_opset:
        opsets.append(onnx.helper.make_opsetid("ai.onnx.ml", 3))
    model = onnx.helper.make_model(graph, opset_imports=opsets, producer_name="edgekit-zoo")
    model.ir_version = 8
    model.doc_string = doc
    return model


CARD_BEGIN = "<!-- build: written by models/build_all.py from the model it built; do not edit -->"
CARD_END = "<!-- /build -->"


def card_line(threshold: float, rows: np.ndarray) -> str:
    """The generated line of a model card: version, threshold and training rows of the built model."""
    nominal = len(training_rows(speed=False))
    stepped = len(rows) - nominal
    data = f"{nominal} healthy rows at the commissioning speed" + (
        f" + {stepped} at speed steps of {', '.join(f'{s:+.0%}' for s in SPEED_STEPS)}" if stepped else "")
    return f"Built: version `{VERSION}`, `edgekit.threshold` = **{threshold:.4g}**; trained on {data}."


def update_card(card: Path, line: str) -> None:
    """Replace the generated block of ``card`` (if that card exists and has one) with ``line``."""
    if not card.is_file():
        return
    text = card.read_text(encoding="utf-8")
    if CARD_BEGIN not in text or CARD_END not in text:
        return
    head, rest = text.split(CARD_BEGIN, 1)
    _, tail = rest.split(CARD_END, 1)
    card.write_text(f"{head}{CARD_BEGIN}\n{line}\n{CARD_END}{tail}", encoding="utf-8")


def save(model: onnx.ModelProto, name: str, threshold: float, out_dir: Path = ZOO) -> Path:
    """Check, annotate (baseline-normalised zoo features) and write ``<out_dir>/<name>.onnx``."""
    onnx.checker.check_model(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.onnx"
    annotate(model, inputs=ZOO_FEATURES, version=VERSION, threshold=threshold, normalise="baseline", out=path)
    return path


def onnx_scores(model: onnx.ModelProto | Path, rows: np.ndarray) -> np.ndarray:
    """Run a (zoo) model on ``rows`` with onnxruntime; one score per row."""
    from edgekit.models.contract import open_session

    blob = model.read_bytes() if isinstance(model, Path) else model.SerializeToString()
    sess = open_session(blob)
    out = sess.run(None, {sess.get_inputs()[0].name: np.ascontiguousarray(rows, dtype=np.float32)})[0]
    return np.asarray(out, dtype=np.float32).reshape(len(rows))


def finish(model: onnx.ModelProto, name: str, rows: np.ndarray, out_dir: Path = ZOO, margin: float = 0.5) -> Path:
    """The model's own threshold from its healthy training scores, then annotate and save; the card next
    to the file (``<out_dir>/<name>.md``, if there is one) gets its generated line rewritten."""
    threshold = default_threshold(onnx_scores(model, rows), margin)
    path = save(model, name, threshold, out_dir)
    update_card(out_dir / f"{name}.md", card_line(threshold, rows))
    return path
