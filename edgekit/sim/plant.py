"""The plant simulator: N machines served over OPC UA and Modbus TCP from one asyncio loop.

Timing: block ``k`` of a machine covers simulated ``[k·T, (k+1)·T)`` (``T = block/fs``). Block 0
is published by :meth:`PlantSimulator.start` (so clients never see placeholder arrays) and block
``k`` when the wall clock reaches ``start + k·T/speedup`` — as if simulated time had begun one block
before ``start`` returned. Blocks are computed in a worker thread (numpy releases the
GIL), then written to both servers on the loop (OPC UA: channel arrays, sample rate, speed, then
BlockSeq; Modbus: samples, then the header with block_seq). A machine that falls more than two
block periods and ``SKIP_AFTER_S`` behind skips ahead (``stats.skipped``), so block_seq stays tied
to time and gaps are visible; smaller delays are caught up.

Writes from clients (OPC UA ``Setpoint``, Modbus holding 50-51 and coil 1) are picked up once per
scheduling round and mirrored to the other protocol; the shaft speed ramps towards the setpoint at
``RAMP_RPM_PER_S`` (setpoint 0 stops the machine: ``running`` false, harmonics vanish).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import numpy.typing as npt
from scipy import fft as sfft

from ..errors import EdgekitError
from .config import MachineConfig, SecurityOptions, SimConfig, bearing_geometry
from .layout import encode_holding, machine_name
from .modbus_server import MAX_SETPOINT_RPM, ModbusMachineLayout, SimModbusServer
from .opcua_server import SimOpcUaServer
from .physics import MachineSignal, ProcessModel, ProcessState

__all__ = ["PlantSimulator", "PlantStats", "SimMachine", "decimate_block"]

RAMP_RPM_PER_S = 300.0
SKIP_AFTER_S = 0.5  # a machine later than this (and 2 block periods) skips ahead instead of bursting
_STATE_FIELDS = dataclasses.fields(ProcessState)


def decimate_block(block: npt.NDArray[np.float32], factor: int) -> npt.NDArray[np.float32]:
    """Anti-aliased decimation by spectral truncation: ``(ch, n)`` → ``(ch, n // factor)``."""
    if factor == 1:
        return block
    n = block.shape[-1]
    m = n // factor
    spec = sfft.rfft(block, axis=-1)[:, : m // 2 + 1]
    out = sfft.irfft(spec, n=m, axis=-1) * (m / n)
    return out.astype(np.float32)


class SimMachine:
    """One simulated machine: physics, process model and the last published block and truth."""

    def __init__(self, index: int, cfg: MachineConfig, seed: int) -> None:
        self.index = index
        self.id = f"m{index:02d}"
        self.name = machine_name(index)
        self.cfg = cfg
        mseed = seed * 1000 + index
        self.signal = MachineSignal(
            fs=cfg.fs, block_len=cfg.block, channels=cfg.channels, rpm=cfg.rpm, speed_wobble=cfg.speed_wobble,
            bearing=bearing_geometry(cfg.bearing), faults=[f.spec() for f in cfg.faults], noise_g=cfg.noise_g,
            resonance_hz=cfg.resonance_hz, gear_teeth=cfg.gear_teeth, seed=mseed,
        )
        self.process = ProcessModel(seed=mseed, ambient_c=cfg.ambient_c, run_hours0=12000 + 731 * index,
                                    energy_wh0=123_456_789_012 + 1_000_003 * index)
        self.setpoint_rpm = int(round(cfg.rpm))
        self.remote_enable = True
        self.next_seq = 0
        self.last_seq = -1
        self.last_block: npt.NDArray[np.float32] | None = None
        self.last_speed_hz = 0.0
        self._t_end = 0.0  # simulated time at the end of the last computed block
        self._state = self.process.step(0.0, 0.0, running=cfg.rpm > 0, speed_rpm=cfg.rpm,
                                        severity=self.signal.severity_at(0.0), vib_rms_g=0.0, total_rev=0.0,
                                        setpoint_rpm=self.setpoint_rpm, remote_enable=True)
        self._published = asyncio.Event()

    @property
    def block_s(self) -> float:
        return self.signal.block_s

    def truth(self) -> ProcessState:
        """The process values currently published (what a client should decode)."""
        return self._state

    def compute(self, seq: int) -> tuple[npt.NDArray[np.float32], ProcessState, float]:
        """Advance to block ``seq``: returns the block, the new truth and the block's shaft speed (Hz)."""
        sig = self.signal
        t0 = sig.t0(seq)
        dt = t0 + sig.block_s - self._t_end  # one block, or more after a skip-ahead
        self._t_end = t0 + sig.block_s
        if sig.rpm != self.setpoint_rpm:
            step = RAMP_RPM_PER_S * dt
            new = min(self.setpoint_rpm, sig.rpm + step) if self.setpoint_rpm > sig.rpm else max(self.setpoint_rpm, sig.rpm - step)
            sig.set_rpm(new, at_t=t0)
        block = sig.block(seq)
        speed_hz = sig.speed_hz(seq) if sig.rpm > 0 else 0.0
        vib = float(np.sqrt(np.mean(np.square(block[0] - block[0].mean(), dtype=np.float64))))
        total_rev = float(sig.theta(self._t_end)) / (2 * math.pi)
        state = self.process.step(self._t_end, dt, running=sig.rpm > 0, speed_rpm=speed_hz * 60.0,
                                  severity=sig.severity_at(self._t_end), vib_rms_g=vib, total_rev=total_rev,
                                  setpoint_rpm=self.setpoint_rpm, remote_enable=self.remote_enable)
        return block, state, speed_hz

    def _commit(self, seq: int, block: npt.NDArray[np.float32], state: ProcessState, speed_hz: float) -> None:
        self.last_seq, self.last_block, self._state, self.last_speed_hz = seq, block, state, speed_hz
        self.next_seq = seq + 1
        self._published.set()
        self._published = asyncio.Event()

    async def wait_block(self, min_seq: int, timeout: float = 10.0) -> int:
        """Wait until block ``min_seq`` (or later) is published; returns the published seq."""
        deadline = time.monotonic() + timeout
        while self.last_seq < min_seq:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.id}: block {min_seq} not published within {timeout} s")
            await asyncio.wait_for(self._published.wait(), left)
        return self.last_seq


@dataclass
class PlantStats:
    published: int = 0
    skipped: int = 0
    max_lag_s: float = 0.0
    compute_s: float = 0.0  # wall time spent computing blocks in the worker thread
    publish_s: float = 0.0  # wall time spent writing to the servers on the loop


class PlantSimulator:
    """Serve ``cfg.machines`` machines; ``async with PlantSimulator(cfg) as sim: ...``."""

    def __init__(self, cfg: SimConfig | None = None, *, security: SecurityOptions | None = None) -> None:
        cfg = cfg or SimConfig()
        if security is not None:
            cfg = dataclasses.replace(cfg, opcua=dataclasses.replace(cfg.opcua, security=security))
        self.cfg = cfg
        self.machines: dict[str, SimMachine] = {}
        self.stats = PlantStats()
        self._modbus: SimModbusServer | None = None
        self._opcua: SimOpcUaServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._t_start = 0.0
        self._setpoints_seen: dict[str, tuple[int, float, bool]] = {}

    # ---- public properties -----------------------------------------------------------------

    @property
    def opcua_endpoint(self) -> str:
        if self._opcua is None:
            raise RuntimeError("OPC UA is not running")
        return self._opcua.endpoint

    @property
    def opcua_cert_path(self) -> Path | None:
        return self._opcua.cert_path if self._opcua else None

    @property
    def modbus_host(self) -> str:
        return self.cfg.host

    @property
    def modbus_port(self) -> int:
        if self._modbus is None:
            raise RuntimeError("Modbus is not running")
        return self._modbus.port

    def scale_g_per_count(self) -> float:
        return self.cfg.modbus.full_scale_g / 32767.0

    # ---- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.cfg
        self.machines = {
            mid: SimMachine(i, cfg.machine_config(mid), cfg.seed)
            for i, mid in enumerate(cfg.machine_ids(), start=1)
        }
        ms = list(self.machines.values())
        try:
            if cfg.modbus.enabled:
                layouts = [ModbusMachineLayout(m.cfg.channels, m.cfg.block // cfg.modbus.decimation) for m in ms]
                self._modbus = SimModbusServer(cfg.host, cfg.modbus.port, layouts, [m.setpoint_rpm for m in ms])
                try:
                    await self._modbus.start()
                except (OSError, RuntimeError) as exc:
                    self._modbus = None
                    raise EdgekitError(f"Modbus: cannot listen on {cfg.host}:{cfg.modbus.port} "
                                       f"(port in use?): {exc}") from exc
            if cfg.opcua.enabled:
                self._opcua = SimOpcUaServer(cfg.host, cfg.opcua.port, cfg.opcua.path,
                                             [(m.index, m.cfg.channels, m.cfg.block) for m in ms], cfg.opcua.security)
                try:
                    await self._opcua.start()
                except OSError as exc:
                    self._opcua = None
                    raise EdgekitError(f"OPC UA: cannot listen on {cfg.host}:{cfg.opcua.port} "
                                       f"(port in use?): {exc}") from exc
            now = _now()
            for m in ms:
                await self._publish_process(m, now)
                if self._opcua:
                    await self._opcua.write_setpoint(m.index, m.setpoint_rpm, now)
                self._setpoints_seen[m.id] = (m.setpoint_rpm, float(m.setpoint_rpm), m.remote_enable)
            await self._publish_round(ms)  # block 0: clients never see placeholder arrays
        except BaseException:
            await self.stop()
            raise
        self._t_start = time.monotonic()
        self._task = asyncio.create_task(self._run(), name="edgekit-sim-plant")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self._opcua is not None:
            await self._opcua.stop()
            self._opcua = None
        if self._modbus is not None:
            await self._modbus.stop()
            self._modbus = None

    async def __aenter__(self) -> PlantSimulator:
        await self.start()
        return self

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    def describe(self) -> list[str]:
        """Human-readable lines: endpoints and where each tag lives (printed by ``edgekit simulate``)."""
        from .layout import HOLDING, HOLDING_SETPOINT, OPCUA_TAGS

        lines = []
        if self._opcua:
            lines.append(f"OPCUA_ENDPOINT={self.opcua_endpoint}")
            if self._opcua.cert_path:
                lines.append(f"OPCUA_CERT={self._opcua.cert_path}")
        if self._modbus:
            lines.append(f"MODBUS={self.modbus_host}:{self.modbus_port}")
        lines.append(f"MACHINES={','.join(self.machines)}")
        for m in self.machines.values():
            for f in m.cfg.faults:
                lines.append(f"# {m.id}: fault {f.kind} severity {f.severity:g} onset {f.onset:g} s ramp {f.ramp:g} s")
        lines.append("# OPC UA (per machine NN): ns=2;s=MachineNN.<tag>, browse Objects/Plant/MachineNN/<tag>")
        lines.append("#   " + ", ".join(f"{t.name}:{t.variant}" for t in OPCUA_TAGS)
                     + ", Vibration.Ch0..ChN:Float[], Vibration.SampleRateHz, Vibration.SpeedHz, Vibration.BlockSeq")
        lines.append("# Modbus (unit id NN): holding " + ", ".join(
            f"{t.address}:{t.name}:{t.type}{'' if t.type == 'string' or t.count == 1 else ':' + t.order}"
            f"{'' if t.scale == 1 else f'*{t.scale:g}'}" for t in (*HOLDING, HOLDING_SETPOINT)))
        lines.append(f"#   coils 0:running 1:remote_enable; discrete 0:fault_active; input 0-7 header, "
                     f"1000+ samples (int16 × {self.scale_g_per_count():.6g} g), fs/{self.cfg.modbus.decimation}")
        return lines

    # ---- publishing -----------------------------------------------------------------------

    def _wall_period(self, m: SimMachine) -> float:
        return m.block_s / self.cfg.speedup

    def _due(self, m: SimMachine) -> float:
        return self._t_start + m.next_seq * self._wall_period(m)

    async def _run(self) -> None:
        ms = list(self.machines.values())
        while True:
            now = time.monotonic()
            due = [m for m in ms if self._due(m) <= now + 0.002]
            if not due:
                await asyncio.sleep(max(0.0, min(self._due(m) for m in ms) - now))
                continue
            for m in due:
                lag = now - self._due(m)
                period = self._wall_period(m)
                if lag > max(2 * period, SKIP_AFTER_S):  # overloaded: skip to the latest block due
                    target = int((now - self._t_start) / period)
                    self.stats.skipped += target - m.next_seq
                    m.next_seq = target
                self.stats.max_lag_s = max(self.stats.max_lag_s, now - self._due(m))
            await self._poll_writes(due)
            await self._publish_round(due)

    async def _publish_round(self, due: Sequence[SimMachine]) -> None:
        """Compute the next block of each machine in a worker thread, then publish them on the loop."""
        t0 = time.perf_counter()
        results = await asyncio.to_thread(_compute_all, due)
        t1 = time.perf_counter()
        ts = _now()
        for m, (block, state, speed_hz) in zip(due, results, strict=True):
            seq = m.next_seq
            await self._publish_block(m, seq, block, speed_hz, ts)
            await self._publish_process(m, ts, state)
            m._commit(seq, block, state, speed_hz)  # truth changes once both servers show it
        self.stats.compute_s += t1 - t0
        self.stats.publish_s += time.perf_counter() - t1
        self.stats.published += len(due)

    async def _poll_writes(self, ms: Sequence[SimMachine]) -> None:
        for m in ms:
            seen_mb, seen_ua, seen_en = self._setpoints_seen[m.id]
            new_sp: float | None = None
            if self._modbus:
                mb = self._modbus.read_setpoint(m.index)
                if mb != seen_mb:
                    new_sp = mb
                en = self._modbus.read_remote_enable(m.index)
                if en != seen_en:
                    m.remote_enable = en
            if self._opcua:
                sp = self._opcua.read_setpoint(m.index)
                if sp != seen_ua and new_sp is None:
                    new_sp = min(max(0.0, sp), MAX_SETPOINT_RPM)  # clamped; the clamped value is written back
            if new_sp is not None:
                m.setpoint_rpm = int(round(new_sp))
            self._setpoints_seen[m.id] = (m.setpoint_rpm, float(m.setpoint_rpm), m.remote_enable)
            if new_sp is not None:
                if self._modbus:
                    self._modbus.write_setpoint(m.index, m.setpoint_rpm)
                if self._opcua:
                    await self._opcua.write_setpoint(m.index, m.setpoint_rpm, _now())

    async def _publish_block(self, m: SimMachine, seq: int, block: npt.NDArray[np.float32], speed_hz: float,
                             ts: datetime.datetime) -> None:
        if self._opcua:
            await self._opcua.publish_block(m.index, block, seq, m.cfg.fs, speed_hz, ts)
        if self._modbus:
            dec = decimate_block(block, self.cfg.modbus.decimation)
            counts = np.clip(np.rint(dec / self.scale_g_per_count()), -32767, 32767).astype(np.int16)
            self._modbus.publish_waveform(m.index, seq, m.cfg.fs / self.cfg.modbus.decimation,
                                          self.scale_g_per_count(), counts)

    async def _publish_process(self, m: SimMachine, ts: datetime.datetime, state: ProcessState | None = None) -> None:
        st = state or m.truth()
        if self._modbus:
            self._modbus.publish_process(m.index, encode_holding(st, m.index), st.running, st.fault_active)
        if self._opcua:
            values = {f.name: getattr(st, f.name) for f in _STATE_FIELDS}  # asdict() deep-copies: slow
            values["name"] = m.name
            await self._opcua.publish_process(m.index, values, ts)


def _compute_all(ms: Sequence[SimMachine]) -> list[tuple[npt.NDArray[np.float32], ProcessState, float]]:
    return [m.compute(m.next_seq) for m in ms]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
