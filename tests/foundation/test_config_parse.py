"""The typed config parser: durations, sizes, secrets, nested paths, unknown keys."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from edgekit.config.parse import ByteSize, Duration, Secret, describe, opt, parse, parse_duration, parse_size
from edgekit.errors import ConfigError


@dataclass(frozen=True)
class Tag:
    name: str = opt(doc="tag name")
    byte_order: Literal["ABCD", "BADC", "CDAB", "DCBA"] = opt("ABCD", "word/byte order")


@dataclass(frozen=True)
class Device:
    name: str = opt(doc="device")
    poll: Duration = opt(1.0, "poll period")
    tags: list[Tag] = opt(doc="tags", factory=list)
    password: Secret | None = opt(None, "secret")
    quota: ByteSize = opt(1024, "bytes")


@dataclass(frozen=True)
class Root:
    devices: list[Device] = opt(doc="devices", factory=list)


@pytest.mark.parametrize(("text", "seconds"), [("250ms", 0.25), ("5s", 5.0), ("2m", 120.0), ("1h", 3600.0),
                                               ("1.5s", 1.5), (3, 3.0), (0.1, 0.1)])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["5", "5 sec", "-1s", True, "ms"])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ConfigError, match="duration|negative"):
        parse_duration(bad, "x")


def test_sizes() -> None:
    assert parse_size("64MiB") == 64 * 2**20
    assert parse_size("1GB") == 10**9
    assert parse_size(512) == 512
    with pytest.raises(ConfigError, match="is not a size"):
        parse_size("lots", "q")


def test_nested_error_path_names_key_value_and_allowed() -> None:
    data = {"devices": [{"name": "a"}, {"name": "b"}, {"name": "c", "tags": [{"name": "t"}] * 5
                                                       + [{"name": "u", "byte_order": "XYZW"}]}]}
    with pytest.raises(ConfigError) as err:
        parse(Root, data)
    assert str(err.value) == "devices[2].tags[5].byte_order: 'XYZW' is not one of ABCD, BADC, CDAB, DCBA"


def test_unknown_key_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"devices\[0\].nmae: unknown key; allowed keys are name, password"):
        parse(Root, {"devices": [{"nmae": "x"}]})


def test_secret_from_env_and_file_never_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EK_TEST_PW", "hunter2")
    d = parse(Device, {"name": "a", "password": {"env": "EK_TEST_PW"}})
    assert d.password is not None and d.password.value() == "hunter2"
    assert "hunter2" not in repr(d) and "hunter2" not in str(d.password)
    f = tmp_path / "pw"
    f.write_text("s3cret\n")
    d2 = parse(Device, {"name": "a", "password": {"file": str(f)}})
    assert d2.password is not None and d2.password.value() == "s3cret"
    assert "s3cret" not in repr(d2)


def test_secret_errors_name_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EK_NOPE", raising=False)
    with pytest.raises(ConfigError, match=r"^password: environment variable 'EK_NOPE' is not set$"):
        parse(Device, {"name": "a", "password": {"env": "EK_NOPE"}})
    with pytest.raises(ConfigError, match="cannot read secret file"):
        parse(Device, {"name": "a", "password": {"file": "/nonexistent/pw"}})


def test_describe_lists_nested_keys() -> None:
    keys = {k for k, *_ in describe(Root)}
    assert {"devices", "devices[].name", "devices[].tags[].byte_order", "devices[].poll"} <= keys
