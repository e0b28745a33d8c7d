"""Typed configuration of ``edgekit simulate``: machines, fault schedules, ports, seed, speed-up, security.

The file is TOML (sample: examples/sim.toml). Top-level keys: ``machines`` (count), ``seed``,
``speedup``, ``host``, tables ``[opcua]`` (with ``[opcua.security]``), ``[modbus]``, ``[defaults]``
(every machine) and ``[[machine]]`` entries that override the defaults of one machine by ``id``
(``"m02"``) and carry its ``faults`` schedule. Machines are ``m01`` … ``mNN``.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..config.parse import Duration, Secret, opt, parse
from ..errors import ConfigError
from .physics import FAULT_KINDS, BearingGeometry, FaultSpec

__all__ = [
    "FaultConfig",
    "MachineConfig",
    "MachineOverride",
    "ModbusSimConfig",
    "OpcUaSimConfig",
    "SecurityOptions",
    "SimConfig",
    "bearing_geometry",
    "load_sim_config",
    "machine_id",
    "parse_fault_flag",
]

FaultKindName = Literal["unbalance", "misalignment", "outer_race", "inner_race", "ball", "cage", "gear", "looseness"]
PolicyName = Literal["Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"]
ModeName = Literal["Sign", "SignAndEncrypt"]


def bearing_geometry(name: str) -> BearingGeometry:
    """The simulator's geometry for a designation in the pipeline's catalogue (the one authority).

    Raises :class:`ConfigError` (key ``bearing``) naming the known designations.
    """
    from ..pipeline.bearings import lookup

    g = lookup(name)
    return BearingGeometry(g.n_elements, g.element_diameter, g.pitch_diameter, g.contact_angle_deg, g.name)


def machine_id(index: int) -> str:
    """``1 → "m01"``: the id of machine ``index`` (1-based)."""
    return f"m{index:02d}"


@dataclass(frozen=True)
class FaultConfig:
    kind: FaultKindName = opt(doc="Fault type: " + ", ".join(FAULT_KINDS))
    severity: float = opt(1.0, "Final severity, 0 (healthy) .. 1 (severe); may exceed 1")
    onset: Duration = opt(0.0, "Simulated time at which the fault appears")
    ramp: Duration = opt(0.0, "Linear growth from 0 to severity over this long; 0 = step at onset")

    def _validate(self) -> None:
        if self.severity < 0:
            raise ConfigError("severity", f"{self.severity!r} must be >= 0")

    def spec(self) -> FaultSpec:
        return FaultSpec(self.kind, self.severity, self.onset, self.ramp)


@dataclass(frozen=True)
class MachineConfig:
    """Physical parameters of one machine (the ``[defaults]`` table has the same keys)."""

    fs: float = opt(25600.0, "Accelerometer sample rate, Hz")
    block: int = opt(8192, "Samples per channel per published block")
    channels: int = opt(2, "Accelerometer channels (ch0, ch1, …)")
    rpm: float = opt(1480.0, "Nominal shaft speed, r/min (also the initial setpoint)")
    speed_wobble: float = opt(0.003, "Relative amplitude of the slow speed variation")
    bearing: str = opt("6205", "Bearing designation from edgekit.pipeline.bearings.CATALOGUE (6205, 6203, 6204, …)")
    noise_g: float = opt(0.03, "Broadband noise RMS per channel, g")
    resonance_hz: float = opt(3500.0, "Structural resonance excited by bearing impacts, Hz")
    gear_teeth: int = opt(0, "Teeth of a gear on the shaft (0 = no gearbox); needed for 'gear' faults")
    ambient_c: float = opt(22.0, "Mean ambient temperature, °C (may be negative)")
    faults: list[FaultConfig] = opt(doc="Fault schedule of this machine", factory=list)

    def _validate(self) -> None:
        if self.fs <= 0:
            raise ConfigError("fs", f"{self.fs!r} must be > 0")
        if self.block < 64 or self.block > 65536:
            raise ConfigError("block", f"{self.block!r} must be in 64..65536")
        if not 1 <= self.channels <= 8:
            raise ConfigError("channels", f"{self.channels!r} must be in 1..8")
        if self.rpm < 0:
            raise ConfigError("rpm", f"{self.rpm!r} must be >= 0")
        bearing_geometry(self.bearing)  # raises ConfigError("bearing", …) naming the catalogue
        if not 0 < self.resonance_hz < self.fs / 2:
            raise ConfigError("resonance_hz", f"{self.resonance_hz!r} must be in (0, fs/2 = {self.fs / 2:g})")
        if self.gear_teeth < 0:
            raise ConfigError("gear_teeth", f"{self.gear_teeth!r} must be >= 0")
        for i, f in enumerate(self.faults):
            if f.kind == "gear" and self.gear_teeth <= 0:
                raise ConfigError(f"faults[{i}].kind", "'gear' needs gear_teeth > 0 on this machine")


@dataclass(frozen=True)
class MachineOverride:
    """One ``[[machine]]`` entry: ``id`` plus any keys of ``[defaults]`` to change for that machine."""

    id: str = opt(doc="Machine id, m01 … mNN")
    fs: float | None = opt(None, "See [defaults]")
    block: int | None = opt(None, "See [defaults]")
    channels: int | None = opt(None, "See [defaults]")
    rpm: float | None = opt(None, "See [defaults]")
    speed_wobble: float | None = opt(None, "See [defaults]")
    bearing: str | None = opt(None, "See [defaults]")
    noise_g: float | None = opt(None, "See [defaults]")
    resonance_hz: float | None = opt(None, "See [defaults]")
    gear_teeth: int | None = opt(None, "See [defaults]")
    ambient_c: float | None = opt(None, "See [defaults]")
    faults: list[FaultConfig] = opt(doc="Fault schedule of this machine (added to the defaults')", factory=list)

    def _validate(self) -> None:
        if not re.fullmatch(r"m\d{2,3}", self.id):
            raise ConfigError("id", f"{self.id!r} is not a machine id like 'm01'")


@dataclass(frozen=True)
class SecurityOptions:
    """Secured OPC UA endpoint options (``[opcua.security]``)."""

    enabled: bool = opt(False, "Offer secured endpoints with a generated self-signed server certificate")
    policies: list[PolicyName] = opt(
        doc="Security policies offered", factory=lambda: ["Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"],
    )
    modes: list[ModeName] = opt(doc="Message security modes offered", factory=lambda: ["Sign", "SignAndEncrypt"])
    allow_none: bool = opt(True, "Also offer the unsecured None endpoint")
    allow_anonymous: bool = opt(True, "Accept anonymous sessions (false: a user name is required)")
    users: dict[str, Secret] = opt(doc="User name → password accepted on every endpoint", factory=dict)
    cert_dir: str = opt("./sim-pki", "Folder for the generated server key and certificate (reused if present)")
    application_uri: str = opt("urn:edgekit:sim:server", "Server application URI (in the certificate)")

    def _validate(self) -> None:
        if self.enabled and not (self.policies and self.modes):
            raise ConfigError("policies", "a secured endpoint needs at least one policy and one mode")
        if not self.allow_anonymous and not self.users:
            raise ConfigError("users", "allow_anonymous = false needs at least one user")


@dataclass(frozen=True)
class OpcUaSimConfig:
    enabled: bool = opt(True, "Serve OPC UA")
    port: int = opt(4840, "TCP port (0 = any free port)")
    path: str = opt("/edgekit/sim", "Endpoint path")
    security: SecurityOptions = opt(doc="Secured endpoints and users", factory=SecurityOptions)

    def _validate(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError("port", f"{self.port!r} is not a port number 0..65535")


@dataclass(frozen=True)
class ModbusSimConfig:
    enabled: bool = opt(True, "Serve Modbus TCP")
    port: int = opt(5020, "TCP port (0 = any free port)")
    decimation: int = opt(8, "The Modbus waveform is the physics block decimated by this factor")
    full_scale_g: float = opt(16.0, "Acceleration at int16 full scale; scale_g_per_count = full_scale_g/32767")

    def _validate(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError("port", f"{self.port!r} is not a port number 0..65535")
        if self.decimation < 1:
            raise ConfigError("decimation", f"{self.decimation!r} must be >= 1")
        if self.full_scale_g <= 0:
            raise ConfigError("full_scale_g", f"{self.full_scale_g!r} must be > 0")


@dataclass(frozen=True)
class SimConfig:
    machines: int = opt(3, "Number of machines m01 … mNN (1..247, the Modbus unit id range)")
    seed: int = opt(0, "Seed of every random draw; the same seed gives the same signals")
    speedup: float = opt(1.0, "Publish blocks this many times faster than real time")
    host: str = opt("127.0.0.1", "Address both servers bind to")
    opcua: OpcUaSimConfig = opt(doc="OPC UA server", factory=OpcUaSimConfig)
    modbus: ModbusSimConfig = opt(doc="Modbus TCP server", factory=ModbusSimConfig)
    defaults: MachineConfig = opt(doc="Parameters of every machine", factory=MachineConfig)
    machine: list[MachineOverride] = opt(doc="Per-machine overrides and fault schedules", factory=list)

    def _validate(self) -> None:
        if not 1 <= self.machines <= 247:
            raise ConfigError("machines", f"{self.machines!r} must be in 1..247")
        if not self.speedup > 0:
            raise ConfigError("speedup", f"{self.speedup!r} must be > 0")
        known = {machine_id(i) for i in range(1, self.machines + 1)}
        seen: set[str] = set()
        for i, m in enumerate(self.machine):
            if m.id not in known:
                raise ConfigError(f"machine[{i}].id", f"{m.id!r} is not one of m01 … {machine_id(self.machines)}")
            if m.id in seen:
                raise ConfigError(f"machine[{i}].id", f"{m.id!r} is listed twice")
            seen.add(m.id)
            try:
                self.machine_config(m.id)
            except ConfigError as exc:
                raise ConfigError(f"machine[{i}].{exc.path}", exc.message) from None
        block = self.defaults.block
        if any(self.machine_config(machine_id(i)).block % self.modbus.decimation for i in range(1, self.machines + 1)):
            raise ConfigError("modbus.decimation", f"{self.modbus.decimation} must divide every machine's block ({block})")

    def machine_ids(self) -> list[str]:
        return [machine_id(i) for i in range(1, self.machines + 1)]

    def machine_config(self, mid: str) -> MachineConfig:
        """Defaults with the ``[[machine]]`` overrides of ``mid`` applied (faults are appended)."""
        base = self.defaults
        for m in self.machine:
            if m.id == mid:
                changes: dict[str, Any] = {
                    f.name: getattr(m, f.name)
                    for f in dataclasses.fields(m)
                    if f.name not in ("id", "faults") and getattr(m, f.name) is not None
                }
                merged = dataclasses.replace(base, **changes, faults=[*base.faults, *m.faults])
                merged._validate()
                return merged
        return base

    def with_fault(self, mid: str, fault: FaultConfig) -> SimConfig:
        """A copy with ``fault`` appended to machine ``mid``'s schedule."""
        overrides = list(self.machine)
        for i, m in enumerate(overrides):
            if m.id == mid:
                overrides[i] = dataclasses.replace(m, faults=[*m.faults, fault])
                break
        else:
            overrides.append(MachineOverride(id=mid, faults=[fault]))
        out = dataclasses.replace(self, machine=overrides)
        out._validate()
        return out


def load_sim_config(path: str | Path | None = None, data: dict[str, Any] | None = None) -> SimConfig:
    """Parse a sim TOML file (or already-loaded ``data``) into a :class:`SimConfig`."""
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text())
        except OSError as exc:
            raise ConfigError("", f"cannot read {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("", f"{path} is not valid TOML: {exc}") from None
    return parse(SimConfig, data or {})


_FLAG_RE = re.compile(r"^(m\d{2,3}):([a-z_]+):([0-9.eE+-]+)((?::[a-z]+=[^:]+)*)$")


def parse_fault_flag(text: str) -> tuple[str, FaultConfig]:
    """``"m02:outer_race:0.8:onset=60:ramp=300"`` → ``("m02", FaultConfig(...))``.

    ``onset`` and ``ramp`` take durations (``60``, ``"90s"``, ``"5m"``); both default to 0.
    """
    m = _FLAG_RE.match(text.strip())
    if not m:
        raise ConfigError("--fault", f"{text!r} is not MACHINE:KIND:SEVERITY[:onset=T][:ramp=T], e.g. m02:outer_race:0.8:onset=60:ramp=300")
    mid, kind, sev, rest = m.groups()
    raw: dict[str, Any] = {"kind": kind}
    try:
        raw["severity"] = float(sev)
    except ValueError:
        raise ConfigError("--fault", f"severity {sev!r} is not a number") from None
    for item in filter(None, rest.split(":")):
        key, _, value = item.partition("=")
        if key not in ("onset", "ramp"):
            raise ConfigError("--fault", f"unknown option {key!r}; allowed: onset, ramp")
        raw[key] = float(value) if re.fullmatch(r"[0-9.]+", value) else value
    return mid, parse(FaultConfig, raw, "--fault")
