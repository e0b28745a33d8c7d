"""ONNX anomaly detection: the model contract, batched scoring, per-asset baselines and alarms.

The runtime calls :func:`build_detector` once at start-up and ``Detector.score_many(frames)`` per worker
batch (``Detector.score(frame)`` for one block);
see docs/models.md. ``annotate``/``check`` implement the model contract (``edgekit.models.contract``).
"""

from .. import config as _config  # noqa: F401  (first: edgekit.config's schema imports .config below)
from .alarms import AlarmBank, severity_of
from .baseline import Baseline, BaselineLearner, calibrate_threshold, fit_baseline, load_baseline
from .config import AlarmConfig, BaselineConfig, ModelConfig
from .contract import ModelInfo, annotate, check
from .detector import Detector, Scored, Threshold, build_detector
from .scorer import Scorer, load_scorer

__all__ = [
    "AlarmBank",
    "AlarmConfig",
    "Baseline",
    "BaselineConfig",
    "BaselineLearner",
    "Detector",
    "ModelConfig",
    "ModelInfo",
    "Scored",
    "Scorer",
    "Threshold",
    "annotate",
    "build_detector",
    "calibrate_threshold",
    "check",
    "fit_baseline",
    "load_baseline",
    "load_scorer",
    "severity_of",
]
