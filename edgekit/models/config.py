"""Anomaly model configuration (placeholder until the model runtime lands)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config.parse import opt


@dataclass(frozen=True)
class ModelConfig:
    path: str = opt(doc="ONNX model file")
