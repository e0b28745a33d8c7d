"""Synthetic machine vibration: shaft harmonics, bearing defect impacts, gear mesh and noise, in g.

Everything here is pure numpy/scipy and deterministic: :meth:`MachineSignal.block` is a function of
the seed, the block number ``seq`` and the speed history (:meth:`MachineSignal.set_rpm`). Block
``seq`` covers ``t ∈ [seq·block/fs, (seq+1)·block/fs)`` seconds of simulated time.

Physics (see docs/simulator.md for the numbers):

* **shaft**: angle ``θ(t) = 2π∫f_r dt`` in closed form; speed wobbles slowly around the nominal
  (two incommensurate sinusoids, ``speed_wobble`` relative amplitude). A healthy machine carries a
  small residual 1× (unbalance) and 2× so its velocity RMS (10–1000 Hz) sits in zone A/B (~1.2 mm/s).
* **unbalance**: 1× grows with severity (amplitude ∝ speed²); severity 1 ≈ 8 mm/s (zone D).
* **misalignment**: 2× (and some 1×, 3×), strongest on channel 1 (axial).
* **looseness**: many harmonics and ½-orders.
* **bearing defects** (``outer_race``, ``inner_race``, ``ball``, ``cage``): impacts at the defect rate
  from the bearing geometry, with a mean slip of ``slip`` (default 1 %) and 1 % random jitter per
  impact, each exciting a damped structural resonance (``resonance_hz``, 2nd-order resonator). Inner
  race impacts are amplitude-modulated by shaft rotation (load zone), ball impacts by the cage (FTF)
  and alternate strong/weak (so both BSF and 2×BSF show). Late-stage damage (severity² term) adds
  defect-frequency lines in the velocity band, so a severe bearing fault also leaves zone B.
* **gear** (needs ``gear_teeth > 0``): mesh ``z·f_r`` with ±1, ±2 f_r sidebands that grow with severity.
* **noise**: white Gaussian, ``noise_g`` RMS per channel.

Severity is dimensionless 0..1 (may exceed 1); a fault is 0 before ``onset_s``, ramps linearly over
``ramp_s`` (0 = step) and then holds ``severity``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "BEARINGS",
    "FAULT_KINDS",
    "BearingGeometry",
    "FaultSpec",
    "MachineSignal",
    "ProcessModel",
    "ProcessState",
]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

G = 9.80665  # m/s² per g

FaultKind = Literal["unbalance", "misalignment", "outer_race", "inner_race", "ball", "cage", "gear", "looseness"]
FAULT_KINDS: tuple[str, ...] = (
    "unbalance", "misalignment", "outer_race", "inner_race", "ball", "cage", "gear", "looseness",
)


@dataclass(frozen=True)
class BearingGeometry:
    """Rolling-bearing geometry; defect frequencies are multipliers of the shaft frequency ``f_r``.

    ``ball_d`` and ``pitch_d`` in any one unit (only their ratio matters); ``contact_deg`` in degrees.
    """

    n_balls: int
    ball_d: float
    pitch_d: float
    contact_deg: float = 0.0
    name: str = ""

    def __post_init__(self) -> None:
        if self.n_balls < 3 or not 0 < self.ball_d < self.pitch_d:
            raise ValueError(f"bearing geometry {self!r}: need n_balls >= 3 and 0 < ball_d < pitch_d")

    @property
    def _r(self) -> float:
        return self.ball_d / self.pitch_d * math.cos(math.radians(self.contact_deg))

    def ftf(self, f_r: float = 1.0) -> float:
        return f_r / 2.0 * (1.0 - self._r)

    def bpfo(self, f_r: float = 1.0) -> float:
        return self.n_balls * f_r / 2.0 * (1.0 - self._r)

    def bpfi(self, f_r: float = 1.0) -> float:
        return self.n_balls * f_r / 2.0 * (1.0 + self._r)

    def bsf(self, f_r: float = 1.0) -> float:
        return self.pitch_d * f_r / (2.0 * self.ball_d) * (1.0 - self._r**2)


# The two CWRU bearings, so the physics runs without the pipeline; the simulator's config resolves
# designations through edgekit.pipeline.bearings (the authority; a test checks these agree). Inches.
BEARINGS: dict[str, BearingGeometry] = {
    "6205": BearingGeometry(9, 0.3126, 1.537, 0.0, "SKF 6205-2RS"),
    "6203": BearingGeometry(8, 0.2656, 1.122, 0.0, "SKF 6203-2RS"),
}


@dataclass(frozen=True)
class FaultSpec:
    """One scheduled fault: ``kind``, final ``severity`` (0..1, may exceed 1), ``onset_s`` and
    ``ramp_s`` (0 = step at onset, > 0 = linear degradation from 0 to ``severity``)."""

    kind: str
    severity: float
    onset_s: float = 0.0
    ramp_s: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {self.kind!r} is not one of {', '.join(FAULT_KINDS)}")
        if not self.severity >= 0 or not self.onset_s >= 0 or not self.ramp_s >= 0:
            raise ValueError(f"fault {self.kind}: severity, onset_s and ramp_s must be >= 0")

    def severity_at(self, t: float) -> float:
        if t < self.onset_s:
            return 0.0
        if self.ramp_s <= 0:
            return self.severity
        return self.severity * min(1.0, (t - self.onset_s) / self.ramp_s)


# Amplitudes (peak, g) at nominal 1480 r/min; tuned so velocity RMS hits the documented zones.
_BASE_1X_G = 0.024   # healthy residual unbalance → ~1.1 mm/s
_BASE_2X_G = 0.010
_UNBALANCE_G = 0.18  # severity 1 → ~8 mm/s
_MISALIGN_G = 0.27   # 2× at severity 1 → ~6 mm/s on ch1
_LOOSE_G = 0.08
_IMPACT_G = 2.0      # resonance peak per impact at severity 1
_BEARING_LF_G = 0.55 # late-stage defect line (× severity²)
_GEAR_MESH_G = 0.15
_GEAR_SIDEBAND_G = 0.25
_CAGE_G = 0.02


@dataclass
class MachineSignal:
    """Vibration of one machine: ``block(seq)`` → ``(channels, block)`` float32 in g."""

    fs: float = 25600.0
    block_len: int = 8192
    channels: int = 2
    rpm: float = 1480.0
    speed_wobble: float = 0.003
    bearing: BearingGeometry = field(default_factory=lambda: BEARINGS["6205"])
    faults: Sequence[FaultSpec] = ()
    noise_g: float = 0.03
    resonance_hz: float = 3500.0
    resonance_damping: float = 0.04
    slip: float = 0.01
    slip_jitter: float = 0.01
    gear_teeth: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.fs <= 0 or self.block_len < 16 or self.channels < 1:
            raise ValueError("MachineSignal needs fs > 0, block_len >= 16, channels >= 1")
        if not 0 < self.resonance_hz < self.fs / 2:
            raise ValueError(f"resonance_hz {self.resonance_hz} must be in (0, fs/2 = {self.fs / 2})")
        if any(f.kind == "gear" for f in self.faults) and self.gear_teeth <= 0:
            raise ValueError("a 'gear' fault needs gear_teeth > 0 on the machine")
        self.faults = tuple(self.faults)
        self.nominal_rpm = float(self.rpm)
        rng = np.random.default_rng([self.seed, 0xB10C])
        self._wob_phase = rng.uniform(0, 2 * np.pi, 2)
        self._wob_period = np.array([47.0, 11.3]) * rng.uniform(0.9, 1.1, 2)
        self._wob_amp = np.array([0.7, 0.3])
        self._ch_phase = np.arange(self.channels) * (np.pi / 2) + rng.uniform(0, 0.3, self.channels)
        self._ch_gain = 1.0 / (1.0 + 0.3 * (np.arange(self.channels) % 2))  # ch1 = 0.77
        self._theta_offset = 0.0  # keeps θ continuous across rpm changes
        self._rpm_changed_at = 0.0
        # Impulse response of the damped structural resonance, cut where it has decayed below 1e-4.
        w0 = 2 * np.pi * self.resonance_hz / self.fs
        decay = self.resonance_damping * w0  # per sample
        n_ir = int(min(self.block_len, max(16, math.ceil(9.2 / decay))))
        k = np.arange(n_ir, dtype=np.float64)
        self._ring = np.exp(-decay * k) * np.sin(w0 * (k + 1))

    # ---- time and speed ------------------------------------------------------------------------

    @property
    def block_s(self) -> float:
        return self.block_len / self.fs

    def t0(self, seq: int) -> float:
        return seq * self.block_len / self.fs

    def _theta_raw(self, t: F64 | float, rpm: float) -> F64:
        f0 = rpm / 60.0
        t = np.asarray(t, dtype=np.float64)
        th = t.copy()
        for a, p, ph in zip(self._wob_amp, self._wob_period, self._wob_phase, strict=True):
            w = self.speed_wobble * a
            th -= w * p / (2 * np.pi) * (np.cos(2 * np.pi * t / p + ph) - np.cos(ph))
        return 2 * np.pi * f0 * th

    def _theta_block(self, t0: float) -> F64:
        """θ over one block: the wobble term is smooth, so a quadratic through its exact values at the
        block's start, middle and end replaces two cosines per sample (error < 1e-4 rad, exact at
        the block edges so θ stays continuous)."""
        n = self.block_len
        tt = np.arange(n, dtype=np.float64) / self.fs
        t_end = (n - 1) / self.fs
        ends = np.array([t0, t0 + t_end / 2, t0 + t_end])
        lin = 2 * np.pi * (self.rpm / 60.0) * ends
        d0, dm, d1 = self.theta(ends) - lin  # wobble part at the three points
        h = t_end / 2
        b = (d1 - d0) / (2 * h)
        c = (d1 - 2 * dm + d0) / (2 * h * h)
        u = tt - h
        th: F64 = 2 * np.pi * (self.rpm / 60.0) * (t0 + tt) + (dm + u * (b + c * u))
        return th

    def theta(self, t: F64 | float) -> F64:
        """Shaft angle (rad) at times ``t`` (s), continuous across :meth:`set_rpm` changes."""
        return self._theta_raw(t, self.rpm) + self._theta_offset

    def speed_hz_at(self, t: float) -> float:
        f0 = self.rpm / 60.0
        wob = sum(
            self.speed_wobble * a * math.sin(2 * math.pi * t / p + ph)
            for a, p, ph in zip(self._wob_amp, self._wob_period, self._wob_phase, strict=True)
        )
        return f0 * (1.0 + wob)

    def speed_hz(self, seq: int) -> float:
        """Mean shaft speed (Hz) over block ``seq``."""
        t0 = self.t0(seq)
        d = self.theta(np.array([t0, t0 + self.block_s]))
        return float((d[1] - d[0]) / (2 * np.pi * self.block_s))

    def set_rpm(self, rpm: float, at_t: float) -> None:
        """Change the nominal speed from time ``at_t`` on, keeping the shaft angle continuous."""
        if rpm < 0:
            raise ValueError("rpm must be >= 0")
        before = float(self.theta(at_t))
        self.rpm = float(rpm)
        self._theta_offset = 0.0
        self._theta_offset = before - float(self.theta(at_t))

    # ---- faults ------------------------------------------------------------------------------

    def severities_at(self, t: float) -> dict[str, float]:
        out: dict[str, float] = {}
        for f in self.faults:
            out[f.kind] = out.get(f.kind, 0.0) + f.severity_at(t)
        return out

    def severity_at(self, t: float) -> float:
        """Largest current fault severity (0 = healthy)."""
        return max(self.severities_at(t).values(), default=0.0)

    # ---- waveform ----------------------------------------------------------------------------

    def block(self, seq: int) -> F32:
        """Acceleration block ``seq``: ``(channels, block_len)`` float32 in g."""
        if seq < 0:
            raise ValueError("seq must be >= 0")
        n, nch = self.block_len, self.channels
        t0 = self.t0(seq)
        th = self._theta_block(t0)
        rng = np.random.default_rng([self.seed, seq])
        sev = self.severities_at(t0 + self.block_s / 2)
        spd = (self.rpm / self.nominal_rpm) if self.nominal_rpm > 0 else 0.0
        k2 = spd * spd  # forces grow with speed²

        out = np.zeros((nch, n), dtype=np.float64)
        ph = self._ch_phase[:, None]
        gain = self._ch_gain[:, None]
        # Shaft harmonics: amplitudes per (harmonic, channel).
        a1 = (_BASE_1X_G + _UNBALANCE_G * sev.get("unbalance", 0.0)) * k2
        mis = sev.get("misalignment", 0.0)
        axial = 1.0 + 0.8 * (np.arange(nch) % 2)[:, None]  # odd channels read the axial direction
        # sin(hθ + ψ) = sin(hθ)·cos ψ + cos(hθ)·sin ψ, with sin/cos(hθ) by angle addition from one
        # sin/cos pair: two transcendental calls per block instead of one per harmonic and channel.
        s1, c1 = np.sin(th), np.cos(th)
        s2, c2 = 2.0 * s1 * c1, 1.0 - 2.0 * s1 * s1
        amp1 = (a1 + 0.3 * _MISALIGN_G * mis * k2) * gain
        a2 = (_BASE_2X_G + _MISALIGN_G * mis) * k2
        psi2 = 1.3 * ph + 0.4
        amp2 = a2 * axial * gain
        out += (amp1 * np.cos(ph)) * s1 + (amp1 * np.sin(ph)) * c1
        out += (amp2 * np.cos(psi2)) * s2 + (amp2 * np.sin(psi2)) * c2
        if mis:
            s3, c3 = s2 * c1 + c2 * s1, c2 * c1 - s2 * s1
            amp3 = 0.25 * _MISALIGN_G * mis * k2 * axial * gain
            out += (amp3 * np.cos(ph + 1.1)) * s3 + (amp3 * np.sin(ph + 1.1)) * c3
        loose = sev.get("looseness", 0.0)
        if loose:
            for h in (0.5, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0):
                out += _LOOSE_G * loose * k2 / (1.0 + 0.15 * h) * gain * np.sin(h * th + h * ph + 0.7 * h)

        # Bearing defects: impulse trains through the structural resonance.
        geo = self.bearing
        hit_idx: list[npt.NDArray[np.intp]] = []
        hit_amp: list[F64] = []
        theta_block = th
        for kind, mult in (("outer_race", geo.bpfo()), ("inner_race", geo.bpfi()), ("ball", 2 * geo.bsf())):
            s = sev.get(kind, 0.0)
            if s <= 0 or spd <= 0:
                continue
            idx, amp = self._impacts(theta_block, mult, rng)
            if idx.size == 0:
                continue
            if kind == "inner_race":
                amp *= 0.55 + 0.45 * np.cos(theta_block[idx])
            elif kind == "ball":
                cage = np.cos(theta_block[idx] * geo.ftf())
                amp *= (0.6 + 0.4 * cage) * np.where(np.arange(idx.size) % 2 == 0, 1.0, 0.5)
            hit_idx.append(idx)
            hit_amp.append(_IMPACT_G * s * amp)
            lf = _BEARING_LF_G * s * s * k2
            mult_eff = mult * (1 - self.slip)
            for h in (1, 2):
                out += lf / h * gain * np.sin(h * mult_eff * th + ph + 0.3 * h)
        if hit_idx:
            out += gain * self._ring_response(np.concatenate(hit_idx), np.concatenate(hit_amp), n)[None, :]
        cage_s = sev.get("cage", 0.0)
        if cage_s:
            ftf = geo.ftf() * (1 - self.slip)
            out += _CAGE_G * cage_s * gain * np.sin(ftf * th + ph)
            cage_noise = rng.standard_normal((nch, n)) * (0.08 * cage_s)
            out += cage_noise * (1 + np.cos(ftf * th))[None, :]
        if self.gear_teeth > 0 and spd > 0:
            z = float(self.gear_teeth)
            g = sev.get("gear", 0.0)
            out += _GEAR_MESH_G * k2 * (1 + 0.5 * g) * gain * np.sin(z * th + ph)
            if g:
                for side, rel in ((1, 1.0), (2, 0.5)):
                    sb = _GEAR_SIDEBAND_G * g * rel * k2
                    out += sb * gain * (np.sin((z + side) * th + ph) + np.sin((z - side) * th + ph + 0.5))

        noise = rng.standard_normal((nch, n), dtype=np.float32)
        noise *= np.float32(self.noise_g)
        res = out.astype(np.float32)
        res += noise
        return res

    def _ring_response(self, idx: npt.NDArray[np.intp], amp: F64, n: int) -> F64:
        """Sum of resonance ring-downs starting at ``idx`` with amplitudes ``amp`` (one vectorised bincount).

        Every channel sees the same impacts through its own transfer gain, so this is computed once.
        """
        ring = self._ring
        pos = (idx[:, None] + np.arange(ring.size)).ravel()
        weights = (amp[:, None] * ring[None, :]).ravel()
        keep = pos < n  # ring-downs past the block end are cut (they last < 1 ms)
        out = np.bincount(pos[keep], weights=weights[keep], minlength=n)[:n]
        return out.astype(np.float64, copy=False)

    def _impacts(self, th: F64, mult: float, rng: np.random.Generator) -> tuple[npt.NDArray[np.intp], F64]:
        """Sample indices and unit amplitudes of defect impacts in one block.

        Impact k happens when the defect cycle count ``mult·(1-slip)·θ/2π`` crosses integer k,
        then is jittered by ``slip_jitter`` of a defect period (random slip of the rolling elements).
        """
        cyc = th * (mult * (1.0 - self.slip) / (2 * np.pi))
        c0, c1 = cyc[0], cyc[-1]
        ks = np.arange(math.floor(c0) + 1, math.floor(c1) + 1, dtype=np.float64)
        if ks.size == 0 or c1 <= c0:
            return np.zeros(0, dtype=np.intp), np.zeros(0)
        pos = np.interp(ks, cyc, np.arange(cyc.size, dtype=np.float64))
        period = (cyc.size - 1) / (c1 - c0)
        pos += rng.standard_normal(ks.size) * (self.slip_jitter * period)
        idx = np.rint(pos).astype(np.intp)
        keep = (idx >= 0) & (idx < th.size)
        idx = idx[keep]
        amp = 1.0 + 0.1 * rng.standard_normal(idx.size)
        return idx, amp


@dataclass(frozen=True)
class ProcessState:
    """True process values of one machine at one instant (what the servers publish)."""

    speed_rpm: float
    bearing_temp_c: float
    motor_current_a: float
    load_pct: float
    run_hours: int
    energy_wh: int
    running: bool
    fault_active: bool
    vib_rms_g: float
    total_rev: float
    ambient_c: float
    setpoint_rpm: int
    remote_enable: bool


@dataclass
class ProcessModel:
    """Process tags of one machine, advanced one block at a time (deterministic given the seed).

    Load wanders slowly between ~55 and ~90 %; current follows load; the bearing temperature is a
    first-order lag (τ = ``temp_tau_s``) towards ambient + 18 °C + 15 °C·load + 30 °C·severity;
    run hours and energy count while running; ``fault_active`` is set at severity ≥
    ``fault_threshold``.
    """

    seed: int = 0
    ambient_c: float = 22.0
    run_hours0: int = 12000
    energy_wh0: int = 123_456_789_012
    temp_tau_s: float = 600.0
    fault_threshold: float = 0.5
    rated_current_a: float = 28.0
    voltage_v: float = 400.0

    def __post_init__(self) -> None:
        rng = np.random.default_rng([self.seed, 0x7A6])
        self._phase = rng.uniform(0, 2 * np.pi, 3)
        self._elapsed_s = 0.0
        self._energy = float(self.energy_wh0)
        self._run_s = float(self.run_hours0) * 3600.0
        self.bearing_temp_c = self.ambient_c + 18.0 + 15.0 * 0.7
        self._rng = rng

    def load_pct(self, t: float) -> float:
        p = self._phase
        return float(72.0 + 12.0 * math.sin(2 * math.pi * t / 900.0 + p[0]) + 4.0 * math.sin(2 * math.pi * t / 97.0 + p[1]))

    def ambient_at(self, t: float) -> float:
        return float(self.ambient_c + 1.5 * math.sin(2 * math.pi * t / 3600.0 + self._phase[2]))

    def step(self, t: float, dt: float, *, running: bool, speed_rpm: float, severity: float,
             vib_rms_g: float, total_rev: float, setpoint_rpm: int, remote_enable: bool) -> ProcessState:
        """Advance to time ``t`` (end of a ``dt``-second step) and return the new truth."""
        load = self.load_pct(t) if running else 0.0
        ambient = self.ambient_at(t)
        target = ambient + (18.0 + 15.0 * load / 100.0 + 30.0 * severity if running else 0.0)
        self.bearing_temp_c += (target - self.bearing_temp_c) * (1.0 - math.exp(-dt / self.temp_tau_s))
        current = (0.35 + 0.65 * load / 100.0) * self.rated_current_a * (1.0 + 0.05 * severity) if running else 0.0
        current += float(self._rng.normal(0, 0.05)) if running else 0.0
        if running:
            self._run_s += dt
            self._energy += math.sqrt(3) * self.voltage_v * current * 0.86 * dt / 3600.0
        self._elapsed_s = t
        return ProcessState(
            speed_rpm=speed_rpm,
            bearing_temp_c=self.bearing_temp_c,
            motor_current_a=round(current, 2),
            load_pct=round(load, 1),
            run_hours=int(self._run_s // 3600),
            energy_wh=int(self._energy),
            running=running,
            fault_active=severity >= self.fault_threshold,
            vib_rms_g=vib_rms_g,
            total_rev=total_rev,
            ambient_c=round(ambient, 1),
            setpoint_rpm=setpoint_rpm,
            remote_enable=remote_enable,
        )
