"""Resolved devices: a device config with its profile merged, addresses turned into 0-based protocol
addresses, types and byte orders made explicit, and every cross-reference checked.

A profile is a TOML file ``connectors/modbus/<name>.toml`` (found through
:func:`edgekit.resources.profiles_dir`) or any path, with the keys of :class:`ProfileConfig`. The
device's own ``tags`` and ``waveforms`` are added to the profile's; a device tag with the name of a
profile tag replaces it. ``byte_order`` and ``poll`` classes of the device win over the profile's.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ...config.parse import Duration, opt, parse
from ...errors import ConfigError
from ...resources import profiles_dir
from .address import parse_address
from .config import BIT_TABLES, ByteOrder, DeviceConfig, TagConfig, WaveformConfig

__all__ = ["ProfileConfig", "ResolvedDevice", "ResolvedTag", "ResolvedWaveform", "load_profile", "resolve_device"]

DEFAULT_POLL_S = 1.0


@dataclass(frozen=True, kw_only=True)
class ProfileConfig:
    """A device profile file: what a kind of equipment exposes over Modbus."""

    description: str = opt("", "What device this profile describes, and where its register map comes from")
    byte_order: ByteOrder = opt("ABCD", "Default byte/word order of the device")
    poll: dict[str, Duration] = opt(doc="Default poll classes", factory=dict)
    tags: list[TagConfig] = opt(doc="Tags", factory=list)
    waveforms: list[WaveformConfig] = opt(doc="Waveform blocks", factory=list)


@dataclass(frozen=True, slots=True)
class ResolvedTag:
    name: str
    table: str
    address: int
    type: str
    words: int  # registers, or bits in a bit table
    bit: int
    byte_order: str
    scale: float
    offset: float
    unit: str
    deadband: float
    poll: str
    writable: bool

    @property
    def end(self) -> int:
        return self.address + self.words


@dataclass(frozen=True, slots=True)
class ResolvedWaveform:
    name: str
    table: str
    seq_address: int
    seq_type: str
    samples_address: int
    channels: tuple[str, ...]
    unit: str
    dtype: str
    block_len: int
    block_len_address: int | None
    scale: float
    scale_address: int | None
    fs: float
    fs_address: int | None
    speed_tag: str
    speed_unit: str
    poll: str
    byte_order: str


@dataclass(frozen=True, slots=True)
class ResolvedDevice:
    name: str
    unit_id: int
    byte_order: str
    poll: dict[str, float]
    tags: tuple[ResolvedTag, ...]
    waveforms: tuple[ResolvedWaveform, ...]
    write_multiple: bool
    profile: str

    def tag(self, name: str) -> ResolvedTag:
        for t in self.tags:
            if t.name == name:
                return t
        raise KeyError(name)


def _profile_path(name: str) -> Path:
    if "/" in name or name.endswith(".toml"):
        p = Path(name)
        return p if p.is_absolute() or p.exists() else profiles_dir() / "modbus" / p.name
    return profiles_dir() / "modbus" / f"{name}.toml"


@functools.lru_cache(maxsize=64)
def _load_profile_cached(path: str, mtime_ns: int) -> ProfileConfig:
    with open(path, "rb") as fh:
        try:
            data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("profile", f"{path}: not valid TOML: {exc}") from None
    try:
        return parse(ProfileConfig, data, "")
    except ConfigError as exc:
        raise ConfigError("profile", f"{path}: {exc}") from None


def load_profile(name: str) -> ProfileConfig:
    """Load and validate a profile by name (``"edgekit-sim"``) or path."""
    path = _profile_path(name)
    if not path.is_file():
        known = sorted(p.stem for p in (profiles_dir() / "modbus").glob("*.toml"))
        raise ConfigError("profile", f"{name!r} not found at {path}; known profiles: {', '.join(known) or 'none'}")
    return _load_profile_cached(str(path), path.stat().st_mtime_ns)


def _resolve_tag(t: TagConfig, order: str) -> ResolvedTag:
    return ResolvedTag(
        name=t.name, table=t.resolved_table, address=t.resolved_address, type=t.resolved_type, words=t.words,
        bit=t.bit, byte_order=t.byte_order or order, scale=t.scale, offset=t.offset, unit=t.unit,
        deadband=t.deadband, poll=t.poll, writable=t.writable,
    )


def _addr(value: int | str | None) -> int | None:
    return None if value is None else parse_address(value)[0]


def _resolve_waveform(w: WaveformConfig, order: str) -> ResolvedWaveform:
    return ResolvedWaveform(
        name=w.name, table=w.table, seq_address=parse_address(w.seq_address)[0], seq_type=w.seq_type,
        samples_address=parse_address(w.samples_address)[0], channels=tuple(w.channels), unit=w.unit,
        dtype=w.dtype, block_len=w.block_len, block_len_address=_addr(w.block_len_address), scale=w.scale,
        scale_address=_addr(w.scale_address), fs=w.fs, fs_address=_addr(w.fs_address), speed_tag=w.speed_tag,
        speed_unit=w.speed_unit, poll=w.poll, byte_order=w.byte_order or order,
    )


def resolve_device(dev: DeviceConfig, *, max_registers: int, max_bits: int) -> ResolvedDevice:
    """Merge the profile and check cross-references; raises ConfigError with a device-relative path."""
    prof = load_profile(dev.profile) if dev.profile else ProfileConfig()
    order = dev.byte_order or (prof.byte_order if dev.profile else "ABCD")
    poll = {**prof.poll, **dev.poll} or {"default": DEFAULT_POLL_S}
    own = {t.name for t in dev.tags}
    sources: list[tuple[str, TagConfig]] = [
        (f"profile({dev.profile}).tags[{i}]", t) for i, t in enumerate(prof.tags) if t.name not in own
    ] + [(f"tags[{i}]", t) for i, t in enumerate(dev.tags)]
    seen: set[str] = set()
    tags: list[ResolvedTag] = []
    for path, t in sources:
        if t.name in seen:
            raise ConfigError(f"{path}.name", f"{t.name!r} is used twice; tag names must be unique per device")
        seen.add(t.name)
        if t.poll not in poll:
            raise ConfigError(f"{path}.poll", f"{t.poll!r} is not a poll class of this device ({', '.join(poll)})")
        limit = max_bits if t.resolved_table in BIT_TABLES else max_registers
        if t.words > limit:
            raise ConfigError(f"{path}.length", f"{t.words} exceeds the read limit {limit} of this connection")
        tags.append(_resolve_tag(t, order))
    waves: list[ResolvedWaveform] = []
    wave_sources = [(f"profile({dev.profile}).waveforms[{i}]", w) for i, w in enumerate(prof.waveforms)]
    wave_sources += [(f"waveforms[{i}]", w) for i, w in enumerate(dev.waveforms)]
    for path, w in wave_sources:
        if w.poll not in poll:
            raise ConfigError(f"{path}.poll", f"{w.poll!r} is not a poll class of this device ({', '.join(poll)})")
        if w.speed_tag and w.speed_tag not in seen:
            raise ConfigError(f"{path}.speed_tag", f"{w.speed_tag!r} is not a tag of this device")
        waves.append(_resolve_waveform(w, order))
    return ResolvedDevice(
        name=dev.name, unit_id=dev.unit_id, byte_order=order, poll=dict(poll), tags=tuple(tags),
        waveforms=tuple(waves), write_multiple=dev.write_multiple, profile=dev.profile,
    )
