"""``FeatureStream``: framing and features from one PipelineConfig, the runtime's one call per block.

``stream.push(block)`` cuts the block into the configured analysis windows (``window``,
``overlap``; ``window = 0`` analyses each block as it arrives) and returns their FeatureFrames and
any gap events. Use it from the pipeline worker thread.
"""

from __future__ import annotations

from ..types import Event, FeatureFrame, WaveformBlock
from .config import PipelineConfig
from .extractor import FeatureExtractor, build
from .framer import Framer

__all__ = ["FeatureStream"]


class FeatureStream:
    def __init__(self, cfg: PipelineConfig | None = None) -> None:
        cfg = cfg or PipelineConfig()
        self.extractor: FeatureExtractor = build(cfg)
        self.framer = Framer(cfg.window, cfg.overlap)

    @property
    def names(self) -> tuple[str, ...]:
        return self.extractor.names

    def __repr__(self) -> str:
        return f"FeatureStream({self.framer!r}, {self.extractor!r})"

    def push(self, block: WaveformBlock) -> tuple[list[FeatureFrame], list[Event]]:
        windows, events = self.framer.push(block)
        return [self.extractor.transform(w) for w in windows], events
