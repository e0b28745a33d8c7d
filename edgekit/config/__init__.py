"""Configuration: load a TOML file once into typed, validated objects.

``load(path)`` returns a :class:`GatewayConfig` or raises :class:`~edgekit.errors.ConfigError`
whose message names the dotted key path, the bad value and what is allowed.

The gateway schema (which assembles every part's section type) is imported on first use, so
``edgekit.config.parse`` stays cheap for parts that only need the parser.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .parse import ByteSize, Duration, Secret, describe, opt, parse, parse_duration, parse_size

if TYPE_CHECKING:
    from .schema import GatewayConfig, GatewaySection, ReplayConfig

__all__ = [
    "ByteSize", "Duration", "GatewayConfig", "GatewaySection", "ReplayConfig", "Secret",
    "describe", "load", "loads", "opt", "parse", "parse_duration", "parse_size",
]


def __getattr__(name: str) -> Any:
    if name in ("GatewayConfig", "GatewaySection", "ReplayConfig"):
        from . import schema

        return getattr(schema, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def loads(text: str, *, base_dir: Path | None = None) -> GatewayConfig:
    """Parse TOML text into a validated :class:`GatewayConfig`."""
    from .schema import GatewayConfig

    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"not valid TOML: {exc}") from None
    return parse(GatewayConfig, data)


def load(path: str | Path) -> GatewayConfig:
    """Read and validate a config file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("", f"cannot read config file {str(p)!r}: {exc.strerror}") from None
    return loads(text, base_dir=p.parent)
