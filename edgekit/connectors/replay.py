"""Replay a recording (.mat, .npy, .csv, .wav) through the live pipeline as if a device sent it.

``ReplayConnector(cfg)`` loads the file when built (a missing file, key or rate is a ConfigError
at startup). ``run(sink)`` hands ``sink.waveform`` one WaveformBlock of ``cfg.block`` samples per
``block / fs / speedup`` seconds of wall time, paced against the loop clock so it does not drift.
Blocks carry ``seq`` 0, 1, 2, … (continuing across loops, so a replay never looks like a gap),
``t0`` on the recording's own timeline starting at the connector's start time (so with ``speedup``
> 1 data time runs ahead of wall time), ``speed_hz = rpm/60`` when ``rpm`` (or the file's RPM
variable) is known, and the configured unit. A trailing partial block is not sent. Without
``loop`` the connector reports ``finished`` and idles until cancelled (so a supervisor does not
replay it again).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..config.schema import ReplayConfig
from ..errors import ConfigError
from ..pipeline.recording import load_recording
from ..runtime.interfaces import Sink
from ..types import Event, EventKind, Severity, WaveformBlock

__all__ = ["ReplayConnector"]


class ReplayConnector:
    def __init__(self, cfg: ReplayConfig) -> None:
        if cfg.block < 16:
            raise ConfigError("replay.block", f"{cfg.block!r} must be >= 16 samples")
        if not cfg.speedup > 0:
            raise ConfigError("replay.speedup", f"{cfg.speedup!r} must be > 0")
        self.name = cfg.name
        self.cfg = cfg
        self.recording = load_recording(cfg.file, key=cfg.key, fs=cfg.fs)
        if self.recording.data.shape[1] < cfg.block:
            raise ConfigError("replay.block", f"{cfg.block} samples is longer than the recording "
                              f"({self.recording.data.shape[1]} samples)")
        rpm = cfg.rpm or self.recording.rpm
        self.speed_hz = rpm / 60 if rpm > 0 else None
        self.units = ("m/s2" if cfg.units == "m/s2" else "g",) * self.recording.data.shape[0]
        self._state = "idle"
        self._blocks = 0
        self._loops = 0
        self._last = 0.0
        self._errors = 0

    def __repr__(self) -> str:
        r = self.recording
        return (f"ReplayConnector({self.name!r}, {self.cfg.file!r}, {r.data.shape[0]} ch @ {r.fs:g} Hz, "
                f"state={self._state}, blocks={self._blocks})")

    async def run(self, sink: Sink) -> None:
        rec, block = self.recording, self.cfg.block
        n = rec.data.shape[1]
        period = block / rec.fs / self.cfg.speedup
        loop = asyncio.get_running_loop()
        start_wall, start_loop = time.time(), loop.time()
        self._state = "running"
        sink.event(Event(EventKind.CONNECTOR_UP, self.name, f"replaying {self.cfg.file} at x{self.cfg.speedup:g}"))
        pos = 0
        try:
            while True:
                if pos + block > n:
                    if not self.cfg.loop:
                        self._state = "finished"
                        sink.event(Event(EventKind.CONNECTOR_DOWN, self.name, "replay finished", Severity.INFO))
                        await asyncio.Event().wait()
                    pos = 0
                    self._loops += 1
                seq = self._blocks
                delay = start_loop + (seq + 1) * period - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                wf = WaveformBlock(
                    asset=self.name, data=rec.data[:, pos : pos + block].copy(), fs=rec.fs,
                    t0=start_wall + seq * block / rec.fs, seq=seq, channels=rec.channels,
                    units=self.units, speed_hz=self.speed_hz,
                )
                await sink.waveform(wf)
                self._blocks += 1
                self._last = time.time()
                pos += block
        finally:
            if self._state == "running":
                self._state = "stopped"

    def health(self) -> dict[str, Any]:
        rec = self.recording
        return {
            "state": self._state,
            "last_good_read": self._last or None,
            "errors": self._errors,
            "file": self.cfg.file,
            "blocks": self._blocks,
            "loops": self._loops,
            "channels": list(rec.channels),
            "fs": rec.fs,
        }
