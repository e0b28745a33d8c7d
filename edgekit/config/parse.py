"""Typed configuration: frozen dataclasses parsed and validated once from TOML-shaped data.

Every config section is a frozen dataclass whose fields carry their documentation
(``opt(default, "meaning")``). :func:`parse` walks the class's type hints and the input together:

* unknown keys are errors; missing keys without a default are errors;
* every error is a :class:`~edgekit.errors.ConfigError` naming the dotted key path
  (``devices[2].tags[5].byte_order``), the bad value and what is allowed;
* supported field types: ``bool``, ``int``, ``float``, ``str``, ``Literal[...]``, ``Enum``,
  ``X | None``, ``list[X]``, ``tuple[X, ...]``, ``dict[str, X]``, nested dataclasses,
  :data:`Duration` (``"250ms"``, ``"5s"``, ``"2m"``, ``"1h"`` or a number of seconds, stored as float
  seconds), :data:`ByteSize` (``"64MiB"``, ``"1GB"`` or an int), and :class:`Secret`;
* a dataclass may define ``_validate(self) -> None`` raising ``ConfigError(field, message)`` for
  cross-field rules; the path is prefixed automatically.

Secrets come from ``{ env = "NAME" }``, ``{ file = "/path" }`` or a literal string; they are
resolved once at load and their ``repr``/``str`` never shows the value.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import re
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from ..errors import ConfigError

__all__ = ["ByteSize", "Duration", "Secret", "describe", "opt", "parse", "parse_duration", "parse_size"]

T = TypeVar("T")


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_DURATION = _Marker("duration")
_SIZE = _Marker("size")

Duration = Annotated[float, _DURATION]
"""Seconds as float; accepts ``"250ms"``, ``"5s"``, ``"1.5m"``, ``"2h"``, ``"1d"`` or a number."""
ByteSize = Annotated[int, _SIZE]
"""Bytes as int; accepts ``"512KiB"``, ``"64MiB"``, ``"1GB"``, ``"2GiB"`` or an integer."""


class Secret:
    """A credential. ``value()`` gives it; ``repr``, ``str`` and logs never do."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str = "literal") -> None:
        self._value = value
        self.source = source

    def value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret(<hidden, from {self.source}>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def opt(default: Any = dataclasses.MISSING, doc: str = "", *, factory: Callable[[], Any] | None = None) -> Any:
    """A documented dataclass field: ``opt(5.0, "Request timeout")``."""
    meta = {"doc": doc}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


_DUR_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ms|s|m|h|d)\s*$")
_DUR_UNITS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?\s*$")
_SIZE_UNITS = {
    None: 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
    "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40,
}


def parse_duration(value: Any, path: str = "") -> float:
    if isinstance(value, bool):
        raise ConfigError(path, f"{value!r} is not a duration (like \"250ms\", \"5s\", \"2m\", \"1h\")")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DUR_RE.match(value)):
        seconds = float(m.group(1)) * _DUR_UNITS[m.group(2)]
    else:
        raise ConfigError(path, f"{value!r} is not a duration (like \"250ms\", \"5s\", \"2m\", \"1h\")")
    if seconds < 0:
        raise ConfigError(path, f"{value!r} is negative; durations must be >= 0")
    return seconds


def parse_size(value: Any, path: str = "") -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and (m := _SIZE_RE.match(value)):
        return int(float(m.group(1)) * _SIZE_UNITS[m.group(2)])
    raise ConfigError(path, f"{value!r} is not a size (like 1048576, \"64MiB\", \"1GB\")")


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Annotated:
        marker = get_args(tp)[1]
        return "duration" if marker is _DURATION else "size"
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp) if a is not type(None)) + " (optional)"
    if origin in (list, tuple):
        return f"list of {_type_name(get_args(tp)[0])}"
    if origin is dict:
        return f"table of {_type_name(get_args(tp)[1])}"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(str(m.value) for m in tp)
    if tp is Secret:
        return "secret ({env=…} | {file=…} | string)"
    if dataclasses.is_dataclass(tp):
        return "table"
    return getattr(tp, "__name__", str(tp))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = get_origin(tp)
    if origin is Annotated:
        base, marker = get_args(tp)[0], get_args(tp)[1]
        if marker is _DURATION:
            return parse_duration(value, path)
        if marker is _SIZE:
            return parse_size(value, path)
        return _convert(base, value, path)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None:
            return None
        if len(args) == 1:
            return _convert(args[0], value, path)
        errors = []
        for a in args:
            try:
                return _convert(a, value, path)
            except ConfigError as exc:
                errors.append(exc.message)
        raise ConfigError(path, f"{value!r} is not {_type_name(tp)}")
    if origin is Literal:
        allowed = get_args(tp)
        if value in allowed and type(value) is type(allowed[0]):
            return value
        raise ConfigError(path, f"{value!r} is not one of {', '.join(str(a) for a in allowed)}")
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise ConfigError(path, f"{value!r} is not a list")
        item = get_args(tp)[0]
        out = [_convert(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(path, f"{value!r} is not a table")
        item = get_args(tp)[1]
        return {str(k): _convert(item, v, _join(path, str(k))) for k, v in value.items()}
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return parse(tp, value, path)
    if tp is Secret:
        return _secret(value, path)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        for m in tp:
            if m.value == value:
                return m
        raise ConfigError(path, f"{value!r} is not one of {', '.join(str(m.value) for m in tp)}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(path, f"{value!r} is not a boolean (true or false)")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(path, f"{value!r} is not an integer")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(path, f"{value!r} is not a number")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(path, f"{value!r} is not a string")
    if tp is Path:
        if isinstance(value, str):
            return Path(value)
        raise ConfigError(path, f"{value!r} is not a path string")
    raise TypeError(f"unsupported config type {tp!r} at {path}")


def _secret(value: Any, path: str) -> Secret:
    if isinstance(value, str):
        return Secret(value, "literal")
    if isinstance(value, dict) and len(value) == 1:
        ((kind, ref),) = value.items()
        if kind == "env" and isinstance(ref, str):
            if ref not in os.environ:
                raise ConfigError(path, f"environment variable {ref!r} is not set")
            return Secret(os.environ[ref], f"env {ref}")
        if kind == "file" and isinstance(ref, str):
            try:
                return Secret(Path(ref).read_text().rstrip("\r\n"), f"file {ref}")
            except OSError as exc:
                raise ConfigError(path, f"cannot read secret file {ref!r}: {exc.strerror}") from None
    raise ConfigError(path, "a secret must be a string, { env = \"NAME\" } or { file = \"/path\" }")


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


def parse(cls: type[T], data: Any, path: str = "") -> T:
    """Build a ``cls`` instance from TOML-shaped ``data``, or raise :class:`ConfigError`."""
    if not isinstance(data, dict):
        raise ConfigError(path, f"{data!r} is not a table")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        key = unknown[0]
        raise ConfigError(_join(path, key), f"unknown key; allowed keys are {', '.join(sorted(fields))}")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        p = _join(path, name)
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], p)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(p, f"missing required key ({_type_name(hints[name])})")
    obj = cls(**kwargs)
    check = getattr(obj, "_validate", None)
    if check is not None:
        try:
            check()
        except ConfigError as exc:
            raise ConfigError(_join(path, exc.path), exc.message) from None
    return obj


def describe(cls: type, prefix: str = "") -> Iterator[tuple[str, str, str, str]]:
    """Yield ``(key path, type, default, doc)`` for every key of ``cls``, nested tables included."""
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        key = _join(prefix, f.name)
        if f.default is not dataclasses.MISSING:
            default = repr(f.default) if not isinstance(f.default, enum.Enum) else repr(f.default.value)
        elif f.default_factory is not dataclasses.MISSING:
            val = f.default_factory()
            default = "(table)" if dataclasses.is_dataclass(val) else repr(val)
        else:
            default = "required"
        yield key, _type_name(tp), default, str(f.metadata.get("doc", ""))
        inner = tp
        while get_origin(inner) in (Union, types.UnionType, list, tuple, dict, Annotated):
            args = [a for a in get_args(inner) if a is not type(None)]
            suffix = "[]" if get_origin(inner) in (list, tuple) else (".<name>" if get_origin(inner) is dict else "")
            inner = args[-1] if get_origin(inner) is dict else args[0]
            key += suffix
        if dataclasses.is_dataclass(inner) and isinstance(inner, type):
            yield from describe(inner, key)
