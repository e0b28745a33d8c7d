"""Pipeline configuration (placeholder until the pipeline lands)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config.parse import opt


@dataclass(frozen=True)
class PipelineConfig:
    enabled: bool = opt(True, "Compute vibration features for waveform blocks")
