"""edgekit.pipeline: vectorised vibration features on ``(channels, samples)`` float32 blocks.

``build(PipelineConfig) -> FeatureExtractor`` assembles the stages; ``Framer`` cuts streams of
WaveformBlocks into analysis windows; ``FeatureStream(cfg).push(block)`` does both. Feature names and definitions: docs/features.md.
"""

from __future__ import annotations

# edgekit.config assembles every part's section (ours included): load it first so that importing
# edgekit.pipeline before edgekit.config does not hit a half-initialised circular import.
from .. import config as _config  # noqa: F401  (import order matters)
from .base import Spectrum, Stage, clone
from .bearings import CATALOGUE, BearingGeometry, defect_multipliers, lookup
from .cepstrum import Cepstrum
from .config import PipelineConfig
from .envelope import Envelope
from .extractor import FeatureExtractor, build
from .framer import Framer
from .harmonics import Harmonics, OrderSpectrum
from .stream import FeatureStream
from .time_domain import TimeDomain
from .velocity import Velocity
from .welch import WelchBands
from .zones import PROFILES, ZoneProfile, classify

__all__ = [
    "CATALOGUE",
    "PROFILES",
    "BearingGeometry",
    "Cepstrum",
    "Envelope",
    "FeatureExtractor",
    "FeatureStream",
    "Framer",
    "Harmonics",
    "OrderSpectrum",
    "PipelineConfig",
    "Spectrum",
    "Stage",
    "TimeDomain",
    "Velocity",
    "WelchBands",
    "ZoneProfile",
    "build",
    "classify",
    "clone",
    "defect_multipliers",
    "lookup",
]
