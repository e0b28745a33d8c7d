"""Waveform blocks over Modbus: a register block of samples plus a block sequence counter.

Each poll reads the header (sequence counter and, where configured, scale, sample rate and block
length — coalesced into as few requests as the planner allows). When the sequence changed, the
sample block is read in ``max_registers`` chunks, then the sequence counter again: if it moved
during the read the block is torn and discarded (counted; the next poll reads the newer block).
A sequence that advanced by more than one since the last block emits a ``gap_detected`` Event.
``t0`` is the end of the read minus the block duration (the device gives no timestamp).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ...errors import DecodeError
from ...types import Event, EventKind, Severity, WaveformBlock
from .decode import decode_samples
from .device import ResolvedTag, ResolvedWaveform
from .planner import ReadRequest, coalesce
from .transport import ModbusLink

__all__ = ["WaveformReader"]

MAX_BLOCK_REGISTERS = 1 << 16


def _hdr(name: str, w: ResolvedWaveform, address: int, kind: str) -> ResolvedTag:
    words = {"uint16": 1, "uint32": 2, "float32": 2}[kind]
    return ResolvedTag(name=name, table=w.table, address=address, type=kind, words=words, bit=0,
                       byte_order=w.byte_order, scale=1.0, offset=0.0, unit="", deadband=0.0, poll=w.poll,
                       writable=False)


@dataclass
class WaveformResult:
    block: WaveformBlock | None
    gap_event: Event | None
    torn: bool = False


class WaveformReader:
    def __init__(self, device: str, unit_id: int, w: ResolvedWaveform, *, max_registers: int, max_gap: int) -> None:
        self.device = device
        self.unit_id = unit_id
        self.w = w
        self.max_registers = max_registers
        hdr = [_hdr("seq", w, w.seq_address, w.seq_type)]
        if w.scale_address is not None:
            hdr.append(_hdr("scale", w, w.scale_address, "float32"))
        if w.fs_address is not None:
            hdr.append(_hdr("fs", w, w.fs_address, "float32"))
        if w.block_len_address is not None:
            hdr.append(_hdr("block_len", w, w.block_len_address, "uint16"))
        self.header: list[ReadRequest] = coalesce(w.table, hdr, limit=max_registers, max_gap=max_gap)
        self.seq_only: list[ReadRequest] = coalesce(w.table, hdr[:1], limit=max_registers, max_gap=0)
        self.last_seq: int | None = None
        self.blocks = 0
        self.torn = 0
        self.gaps = 0

    async def _read_fields(self, link: ModbusLink, reqs: list[ReadRequest]) -> dict[str, float]:
        out: dict[str, float] = {}
        for req in reqs:
            raw = await link.read(req.table, req.start, req.count, self.unit_id)
            values, _ = req.decoder.decode(raw)
            out.update({t.name: float(v) for t, v in zip(req.tags, values, strict=True)})
        return out

    async def poll(self, link: ModbusLink, speed_hz: float | None) -> WaveformResult:
        """One poll; raises the link's errors (timeout, refused, decode) for the caller to account."""
        w = self.w
        head = await self._read_fields(link, self.header)
        seq = int(head["seq"])
        if seq == self.last_seq:
            return WaveformResult(None, None)
        n = int(head.get("block_len", w.block_len))
        fs = head.get("fs", w.fs)
        scale = head.get("scale", w.scale)
        words = 1 if w.dtype == "int16" else 2
        total = len(w.channels) * n * words
        if n <= 0 or total > MAX_BLOCK_REGISTERS or w.samples_address + total > 65536:
            raise DecodeError(f"waveform {w.name}: block_len {n} x {len(w.channels)} channels does not fit")
        if not (np.isfinite(fs) and fs > 0):
            raise DecodeError(f"waveform {w.name}: sample rate {fs!r} is not a positive number")
        if not np.isfinite(scale):
            raise DecodeError(f"waveform {w.name}: scale {scale!r} is not finite")
        chunks = []
        for start in range(w.samples_address, w.samples_address + total, self.max_registers):
            count = min(self.max_registers, w.samples_address + total - start)
            chunks.append(await link.read(w.table, start, count, self.unit_id))
        after = int((await self._read_fields(link, self.seq_only))["seq"])
        t_end = time.time()
        if after != seq:
            self.torn += 1
            return WaveformResult(None, None, torn=True)
        data = decode_samples(np.concatenate(chunks), channels=len(w.channels), block_len=n, dtype=w.dtype,
                              order=w.byte_order)
        if w.dtype == "int16":
            data *= np.float32(scale)
        gap = None
        modulus = 1 << (16 if w.seq_type == "uint16" else 32)
        if self.last_seq is not None:
            missed = (seq - self.last_seq - 1) % modulus
            if missed:
                self.gaps += 1
                gap = Event(EventKind.GAP_DETECTED, self.device,
                            f"waveform {w.name}: {missed} block(s) missed between seq {self.last_seq} and {seq}",
                            Severity.WARNING, data={"waveform": w.name, "last_seq": self.last_seq, "seq": seq,
                                                    "missed": missed})
        self.last_seq = seq
        self.blocks += 1
        block = WaveformBlock(asset=self.device, data=data, fs=float(fs), t0=t_end - n / float(fs), seq=seq,
                              channels=w.channels, units=(w.unit,) * len(w.channels), speed_hz=speed_hz)
        return WaveformResult(block, gap)
