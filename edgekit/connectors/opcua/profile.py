"""OPC UA device profiles: TOML files of nodes and waveform groups, templated per machine.

A profile (``connectors/opcua/<name>.toml``) has the keys of :class:`OpcUaProfile`. Every string in
``nodes`` and ``waveforms`` may contain ``{machine}``; the profile is then expanded once per entry of
the connection's ``machines`` list (a profile without ``{machine}`` is used as is and must not be
given machines). ``namespace`` becomes the default namespace URI of the profile's browse paths.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...config.parse import opt, parse
from ...errors import ConfigError
from ...resources import profiles_dir
from .config import NodeConfig, WaveformConfig

__all__ = ["ExpandedProfile", "OpcUaProfile", "expand", "load_profile", "profile_path"]

PLACEHOLDER = "{machine}"


@dataclass(frozen=True)
class OpcUaProfile:
    description: str = opt("", "What equipment this profile describes")
    namespace: str = opt("", "Namespace URI for unprefixed browse-path elements")
    nodes: list[NodeConfig] = opt(doc="Scalar tags", factory=list)
    waveforms: list[WaveformConfig] = opt(doc="Waveform groups", factory=list)


@dataclass(frozen=True)
class ExpandedProfile:
    nodes: list[NodeConfig]
    waveforms: list[WaveformConfig]


def profile_path(ref: str) -> Path:
    """``"edgekit-sim"`` → the shipped profile; a path ending in ``.toml`` → that file."""
    if ref.endswith(".toml"):
        return Path(ref)
    return profiles_dir() / "opcua" / f"{ref}.toml"


def _substitute(obj: Any, machine: str) -> Any:
    if isinstance(obj, str):
        return obj.replace(PLACEHOLDER, machine)
    if isinstance(obj, list):
        return [_substitute(v, machine) for v in obj]
    if isinstance(obj, dict):
        return {k: _substitute(v, machine) for k, v in obj.items()}
    return obj


def _with_namespace(item: Any, namespace: str) -> Any:
    """Fill ``namespace`` of every node reference that has none."""
    if not namespace:
        return item
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(item):
        value = getattr(item, f.name)
        if f.name == "namespace" and not value:
            changes["namespace"] = namespace
        elif dataclasses.is_dataclass(value):
            changes[f.name] = _with_namespace(value, namespace)
        elif isinstance(value, list) and value and dataclasses.is_dataclass(value[0]):
            changes[f.name] = [_with_namespace(v, namespace) for v in value]
    return dataclasses.replace(item, **changes)


def load_profile(ref: str, machines: list[str], path: str = "profile") -> ExpandedProfile:
    """Read, template and validate a profile; every problem is a ConfigError under ``path``."""
    file = profile_path(ref)
    try:
        raw = tomllib.loads(file.read_text())
    except FileNotFoundError:
        shipped = sorted(p.stem for p in (profiles_dir() / "opcua").glob("*.toml"))
        raise ConfigError(path, f"profile {ref!r} not found at {file}; shipped profiles: {shipped}") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(path, f"cannot read profile {file}: {exc}") from None
    templated = PLACEHOLDER in repr(raw)
    if templated and not machines:
        raise ConfigError(path, f"profile {ref!r} is a template ({PLACEHOLDER}); list the machines = [...]")
    if machines and not templated:
        raise ConfigError("machines", f"profile {ref!r} has no {PLACEHOLDER} template; remove machines")
    nodes: list[NodeConfig] = []
    waves: list[WaveformConfig] = []
    for machine in machines or [""]:
        data = _substitute(raw, machine) if machine else raw
        try:
            prof = parse(OpcUaProfile, data, "")
        except ConfigError as exc:
            raise ConfigError(path, f"{file}: {exc}") from None
        nodes += [_with_namespace(n, prof.namespace) for n in prof.nodes]
        waves += [_with_namespace(w, prof.namespace) for w in prof.waveforms]
    return ExpandedProfile(nodes=nodes, waveforms=waves)


def expand(cfg: Any) -> ExpandedProfile:
    """All nodes and waveforms of a connection: its own plus its profile's."""
    nodes = list(cfg.nodes)
    waves = list(cfg.waveforms)
    if cfg.profile:
        prof = load_profile(cfg.profile, list(cfg.machines), "profile")
        nodes += prof.nodes
        waves += prof.waveforms
    return ExpandedProfile(nodes=nodes, waveforms=waves)
