"""Framing: a stream of WaveformBlocks per asset → analysis windows of fixed length and overlap.

Each asset has one preallocated buffer (grown only if a block is larger than it), so a long stream
keeps memory flat. Blocks are appended whole and windows are cut as array slices — no per-sample
Python. A window is a new WaveformBlock: ``seq`` counts windows per asset, ``t0`` is its first
sample's time, ``speed_hz`` the speed of the newest block in it.

The window restarts (buffered samples are discarded, and counted) when a block's ``seq`` is not the
previous one + 1 (a gap), when its rate, channels or units change, or when it is marked BAD; each
such reset yields a ``gap_detected`` :class:`~edgekit.types.Event` with the details. ``window=0``
passes blocks through unchanged (gaps are still reported).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import PipelineError
from ..types import Event, EventKind, Quality, Severity, WaveformBlock

__all__ = ["Framer"]


@dataclass
class _State:
    fs: float
    channels: tuple[str, ...]
    units: tuple[str, ...]
    buf: np.ndarray
    next_seq: int
    fill: int = 0
    t_start: float = 0.0
    windows: int = 0
    speed_hz: float | None = None
    extra: dict[str, int] = field(default_factory=dict)


class Framer:
    def __init__(self, window: int, overlap: float = 0.0) -> None:
        if window < 0:
            raise PipelineError(f"Framer window must be >= 0, got {window}")
        if not 0 <= overlap < 1:
            raise PipelineError(f"Framer overlap must be in [0, 1), got {overlap}")
        self.window = window
        self.overlap = overlap
        self.hop = max(1, int(round(window * (1 - overlap)))) if window else 0
        self.gaps = 0
        self.dropped_samples = 0
        self._assets: dict[str, _State] = {}

    def __repr__(self) -> str:
        return f"Framer(window={self.window}, overlap={self.overlap}, assets={len(self._assets)}, gaps={self.gaps})"

    def reset(self, asset: str | None = None) -> None:
        if asset is None:
            self._assets.clear()
        else:
            self._assets.pop(asset, None)

    def push(self, block: WaveformBlock) -> tuple[list[WaveformBlock], list[Event]]:
        """Add one block; return the windows it completed and any gap events."""
        events: list[Event] = []
        st = self._assets.get(block.asset)
        why = ""
        if st is not None:
            if block.seq != st.next_seq:
                why = f"sequence gap: expected seq {st.next_seq}, got {block.seq}"
            elif block.fs != st.fs or block.channels != st.channels or block.units != st.units:
                why = "block rate, channels or units changed"
        if block.quality == Quality.BAD:
            why = why or f"bad block seq {block.seq}: {block.reason or 'no reason given'}"
        if why:
            dropped = st.fill if st is not None and self.window else 0
            self.gaps += 1
            self.dropped_samples += dropped
            events.append(Event(EventKind.GAP_DETECTED, block.asset, f"{why}; window restarted",
                                Severity.WARNING, data={"seq": block.seq, "dropped_samples": dropped}))
            st = None
        if st is None:
            cap = max(self.window, 1) + block.n_samples
            st = _State(block.fs, block.channels, block.units,
                        np.empty((block.data.shape[0], cap), dtype=np.float32), block.seq + 1)
            st.windows = self._assets[block.asset].windows if block.asset in self._assets else 0
            self._assets[block.asset] = st
        st.next_seq = block.seq + 1
        if block.quality == Quality.BAD:
            return [], events
        if not self.window:
            return [block], events
        n = block.n_samples
        if st.fill == 0:
            st.t_start = block.t0
        if st.fill + n > st.buf.shape[1]:
            grown = np.empty((st.buf.shape[0], st.fill + n), dtype=np.float32)
            grown[:, : st.fill] = st.buf[:, : st.fill]
            st.buf = grown
        st.buf[:, st.fill : st.fill + n] = block.data
        st.fill += n
        st.speed_hz = block.speed_hz
        out: list[WaveformBlock] = []
        if st.fill < self.window:
            return out, events
        count = (st.fill - self.window) // self.hop + 1
        for i in range(count):
            start = i * self.hop
            out.append(WaveformBlock(
                asset=block.asset, data=st.buf[:, start : start + self.window].copy(), fs=st.fs,
                t0=st.t_start + start / st.fs, seq=st.windows, channels=st.channels, units=st.units,
                speed_hz=st.speed_hz,
            ))
            st.windows += 1
        used = count * self.hop
        rest = st.fill - used
        if rest > 0:
            st.buf[:, :rest] = st.buf[:, used : st.fill]
        st.fill = rest
        st.t_start += used / st.fs
        return out, events
