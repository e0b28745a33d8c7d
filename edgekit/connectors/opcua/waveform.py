"""Waveform groups: several Float/Double array nodes of one asset read as one WaveformBlock.

Consistency: a change of the block counter (``seq`` node, written by the server *after* the
arrays) wakes the reader, which reads ``[seq, fs?, speed?, channel arrays…, seq]`` in ONE Read
service call. If the two seq values differ the server moved on during the read; the read is
discarded and retried once the next change arrives. Without a seq node every read is delivered
with a locally counted seq. Gaps: a seq more than one above the last delivered one emits a
``gap_detected`` Event (``data = {"missing": n, "from_seq", "to_seq"}``); a seq below it means
the source restarted (reported, counting starts again). ``t0`` is the source timestamp of the
first channel array minus the block duration (the server stamps a block when it is complete).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

import numpy as np
from asyncua import Client, ua

from ...runtime.interfaces import Sink
from ...types import Event, EventKind, Quality, Severity, WaveformBlock
from .config import WaveformConfig
from .decode import _ts, quality_of

__all__ = ["WaveformReader"]

log = logging.getLogger(__name__)


def _val(dv: ua.DataValue) -> Any:
    return dv.Value.Value if dv.Value is not None else None


class WaveformReader:
    """Reads one waveform group on the current session; survives reconnects through ``last_seq``."""

    def __init__(self, source: str, cfg: WaveformConfig) -> None:
        self.source = source
        self.cfg = cfg
        self.last_seq: int | None = None
        self.blocks = 0
        self.torn = 0
        self.errors = 0
        self._wake = asyncio.Event()
        self._ids: list[ua.NodeId] = []
        self._has_fs = self._has_speed = self._has_seq = False
        self._local_seq = 0

    def bind(self, seq: ua.NodeId | None, fs: ua.NodeId | None, speed: ua.NodeId | None, chans: list[ua.NodeId]) -> None:
        """Set the node ids resolved on the current session."""
        self._has_seq, self._has_fs, self._has_speed = seq is not None, fs is not None, speed is not None
        ids: list[ua.NodeId] = []
        if seq is not None:
            ids.append(seq)
        if fs is not None:
            ids.append(fs)
        if speed is not None:
            ids.append(speed)
        ids += chans
        if seq is not None:
            ids.append(seq)
        self._ids = ids

    def notify(self) -> None:
        """Called from the publish callback when the seq node changed."""
        self._wake.set()

    async def run_subscribed(self, client: Client, sink: Sink) -> None:
        self._wake.set()  # read the current block once at start
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.read_once(client, sink)

    async def run_polled(self, client: Client, sink: Sink) -> None:
        while True:
            t = time.monotonic()
            await self.read_once(client, sink)
            await asyncio.sleep(max(0.0, self.cfg.poll_interval - (time.monotonic() - t)))

    async def read_once(self, client: Client, sink: Sink) -> bool:
        """One consistent read; True when a block was delivered."""
        params = ua.ReadParameters()
        params.TimestampsToReturn = ua.TimestampsToReturn.Both
        params.NodesToRead = [ua.ReadValueId(NodeId=nid, AttributeId=ua.AttributeIds.Value) for nid in self._ids]
        values = await client.uaclient.read(params)
        recv = time.time()
        i = 0
        seq: int | None = None
        if self._has_seq:
            seq_a, seq_b = values[0], values[-1]
            if _val(seq_a) != _val(seq_b):
                self.torn += 1
                self._wake.set()  # try again right away
                return False
            if seq_a.StatusCode is not None and not seq_a.StatusCode.is_good():
                self._bad(sink, f"seq node {quality_of(seq_a.StatusCode)[1]}")
                return False
            seq = int(_val(seq_a))
            i = 1
            if self.last_seq is not None and seq == self.last_seq:
                return False
        fs = self.cfg.fs
        if self._has_fs:
            v = _val(values[i])
            fs = float(v) if isinstance(v, (int, float)) and v > 0 else self.cfg.fs
            i += 1
        speed: float | None = None
        if self._has_speed:
            v = _val(values[i])
            speed = float(v) if isinstance(v, (int, float)) and not math.isnan(float(v)) else None
            i += 1
        chans = values[i : i + len(self.cfg.channels)]
        worst, reason = Quality.GOOD, ""
        arrays: list[Any] = []
        for ch, dv in zip(self.cfg.channels, chans, strict=True):
            q, r = quality_of(dv.StatusCode)
            if q > worst:
                worst, reason = q, f"{ch.id}: {r}"
            arrays.append(dv.Value.Value if dv.Value is not None else None)
        if fs <= 0 or any(not isinstance(a, (list, tuple, np.ndarray)) or len(a) == 0 for a in arrays):
            self._bad(sink, f"no array data or sample rate (fs={fs}, {reason or 'arrays empty'})")
            return False
        n = min(len(a) for a in arrays)
        if any(len(a) != n for a in arrays):
            worst, reason = max(worst, Quality.UNCERTAIN), f"channel lengths differ, cut to {n}"
        data = np.empty((len(arrays), n), dtype=np.float32)
        for row, a in enumerate(arrays):
            data[row] = np.asarray(a[:n], dtype=np.float32)
        if seq is None:
            self._local_seq += 1
            seq = self._local_seq
        self._check_gap(sink, seq)
        src = _ts(chans[0].SourceTimestamp or chans[0].ServerTimestamp)
        t0 = (recv if math.isnan(src) else src) - n / fs
        block = WaveformBlock(
            asset=self.cfg.asset,
            data=data,
            fs=fs,
            t0=t0,
            seq=seq,
            channels=tuple(c.id for c in self.cfg.channels),
            units=tuple(c.unit for c in self.cfg.channels),
            speed_hz=speed,
            quality=worst,
            reason=reason,
        )
        self.last_seq = seq
        self.blocks += 1
        await sink.waveform(block)
        return True

    def _check_gap(self, sink: Sink, seq: int) -> None:
        last = self.last_seq
        if last is None:
            return
        if seq > last + 1:
            sink.event(Event(
                EventKind.GAP_DETECTED, self.source,
                f"{self.cfg.asset}: {seq - last - 1} waveform block(s) missed (seq {last} -> {seq})",
                Severity.WARNING, data={"asset": self.cfg.asset, "missing": seq - last - 1, "from_seq": last, "to_seq": seq},
            ))
        elif seq < last:
            sink.event(Event(
                EventKind.GAP_DETECTED, self.source,
                f"{self.cfg.asset}: block counter went back ({last} -> {seq}); the source restarted",
                Severity.WARNING, data={"asset": self.cfg.asset, "missing": None, "from_seq": last, "to_seq": seq},
            ))

    def _bad(self, sink: Sink, reason: str) -> None:
        self.errors += 1
        log.debug("%s/%s: waveform read unusable: %s", self.source, self.cfg.asset, reason)
