"""Modbus config: address notations, exact error messages, the sample config, and every profile."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from edgekit.config.parse import describe, parse
from edgekit.connectors import modbus
from edgekit.connectors.modbus.address import parse_address
from edgekit.connectors.modbus.config import ModbusConnectionConfig
from edgekit.connectors.modbus.device import resolve_device
from edgekit.errors import ConfigError
from edgekit.resources import profiles_dir

SAMPLE = Path(modbus.__file__).with_name("sample.toml")


def conn(devices: list[dict[str, Any]], **kw: Any) -> ModbusConnectionConfig:
    return parse(ModbusConnectionConfig, {"name": "c", "devices": devices, **kw}, "modbus[0]")


@pytest.mark.parametrize(
    ("notation", "address", "table"),
    [
        (0, 0, None), (0x1F, 31, None), (65535, 65535, None),
        ("0-based:17", 17, None), ("1-based:1", 0, None), ("1-based:65536", 65535, None),
        ("40001", 0, "holding_register"), ("49999", 9998, "holding_register"),
        ("400001", 0, "holding_register"), ("465536", 65535, "holding_register"),
        ("30101", 100, "input_register"), ("10001", 0, "discrete_input"), ("00001", 0, "coil"),
        ("4x0001", 0, "holding_register"), ("3x00010", 9, "input_register"), ("0x0001", 0, "coil"),
    ],
)
def test_address_notations(notation: int | str, address: int, table: str | None) -> None:
    assert parse_address(notation) == (address, table)


@pytest.mark.parametrize(
    ("notation", "message"),
    [
        (65536, "65536 is out of range; protocol addresses are 0..65535"),
        (-1, "-1 is out of range"),
        ("40000", "'40000' is out of range; register numbers are 1..9999"),
        ("1-based:0", "'1-based:0' is out of range; 1-based numbers are 1..65536"),
        ("50001", "Modicon notation starts with 0, 1, 3 or 4"),
        ("123", "'123' is not an address"),
        ("0x1F", "'0x1F' is not an address"),
    ],
)
def test_address_errors(notation: int | str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_address(notation)


TAG = {"name": "t", "address": 0, "table": "holding_register"}


@pytest.mark.parametrize(
    ("device", "kw", "error"),
    [
        ({"tags": [TAG, {**TAG, "name": "u", "byte_order": "XYZW"}]}, {},
         "modbus[0].devices[0].tags[1].byte_order: 'XYZW' is not one of ABCD, BADC, CDAB, DCBA"),
        ({"tags": [{**TAG, "type": "float128"}]}, {},
         "modbus[0].devices[0].tags[0].type: 'float128' is not one of bool, int16"),
        ({"tags": [{"name": "t", "address": "40001", "table": "coil"}]}, {},
         "modbus[0].devices[0].tags[0].table: 'coil' contradicts address '40001', which names holding_register"),
        ({"tags": [{"name": "t", "address": 3}]}, {},
         "modbus[0].devices[0].tags[0].table: missing: address 3 does not name a table"),
        ({"tags": [{**TAG, "type": "string"}]}, {},
         "modbus[0].devices[0].tags[0].length: 0: a string tag needs length = 1..125 registers"),
        ({"tags": [{**TAG, "type": "bit", "bit": 16}]}, {}, "modbus[0].devices[0].tags[0].bit: 16 is out of range 0..15"),
        ({"tags": [{"name": "t", "address": "30001", "writable": True}]}, {},
         "modbus[0].devices[0].tags[0].writable: table input_register is read-only in Modbus"),
        ({"tags": [{**TAG, "poll": "fast"}]}, {},
         "modbus[0].devices[0].tags[0].poll: 'fast' is not a poll class of this device (default)"),
        ({"tags": [TAG, TAG]}, {}, "modbus[0].devices[0].tags[1].name: 't' is used twice"),
        ({"tags": [{**TAG, "address": 65535, "type": "float32"}]}, {},
         "modbus[0].devices[0].tags[0].address: 65535 + 2 registers runs past address 65535"),
        ({"profile": "no-such-profile"}, {}, "modbus[0].devices[0].profile: 'no-such-profile' not found"),
        ({"tags": [TAG], "poll": {"default": "fast"}}, {}, "modbus[0].devices[0].poll.default: 'fast' is not a duration"),
        ({"tags": [TAG]}, {"max_registers": 126}, "modbus[0].max_registers: 126 is out of range 1..125"),
        ({"tags": [TAG]}, {"max_bits": 2001}, "modbus[0].max_bits: 2001 is out of range 1..2000"),
        ({"tags": [TAG]}, {"transport": "rtu"}, 'modbus[0].serial_port: required for transport = "rtu"'),
        ({"tags": [TAG], "unit_id": 0}, {"transport": "rtu", "serial_port": "/dev/null"},
         "modbus[0].devices[0].unit_id: 0: RTU unit ids are 1..247"),
        ({"tags": [{**TAG, "type": "string", "length": 130}]}, {"max_registers": 125},
         "modbus[0].devices[0].tags[0].length: 130: a string tag needs length = 1..125"),
        ({"tags": [{"name": "t", "address": 0, "table": "coil", "type": "int16"}]}, {},
         "modbus[0].devices[0].tags[0].type: 'int16' is not possible in table coil"),
        ({"tags": [TAG], "waveforms": [{"seq_address": 0, "samples_address": 10, "channels": ["a"], "block_len": 8}]},
         {}, "modbus[0].devices[0].waveforms[0].fs: set fs > 0 (Hz) or fs_address"),
    ],
)
def test_config_errors_name_the_key(device: dict[str, Any], kw: dict[str, Any], error: str) -> None:
    with pytest.raises(ConfigError) as info:
        conn([{"name": "d", **device}], **kw)
    assert str(info.value).startswith(error), str(info.value)


def test_sample_config_parses_and_mentions_every_key() -> None:
    text = SAMPLE.read_text()
    data = tomllib.loads(text)
    cfgs = [parse(ModbusConnectionConfig, c, f"modbus[{i}]") for i, c in enumerate(data["modbus"])]
    assert cfgs[0].timeout == 0.5 and len(cfgs[0].devices) == 2
    leaves = [k.rsplit(".", 1)[-1].replace("[]", "") for k, *_ in describe(ModbusConnectionConfig)]
    missing = [leaf for leaf in leaves if f"{leaf} =" not in text and f".{leaf}]]" not in text]
    assert missing == []
    plan = modbus.format_plan(cfgs[0])
    assert "device m01 (unit 1" in plan and "device pump7 (unit 7" in plan


PROFILES = sorted((profiles_dir() / "modbus").glob("*.toml"))


def test_there_are_profiles() -> None:
    names = {p.stem for p in PROFILES}
    assert {"edgekit-sim", "energy-meter-3ph", "vibration-transmitter"} <= names


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.stem)
def test_every_profile_resolves_and_plans(path: Path) -> None:
    cfg = conn([{"name": "d1", "unit_id": 1, "profile": path.stem}])
    dev = resolve_device(cfg.devices[0], max_registers=125, max_bits=2000)
    assert dev.tags, path
    plan = modbus.format_plan(cfg)
    assert "requests per full scan" in plan
    naive = len(dev.tags)
    planned = modbus.ReadPlanner(dev).total_requests()
    assert planned < naive  # every shipped profile benefits from coalescing


def test_device_tags_override_profile_tags() -> None:
    cfg = conn([{"name": "m01", "profile": "edgekit-sim", "byte_order": "CDAB",
                 "tags": [{"name": "speed_rpm", "address": 0, "table": "holding_register", "type": "float32",
                           "byte_order": "ABCD", "scale": 2.0}]}])
    dev = resolve_device(cfg.devices[0], max_registers=125, max_bits=2000)
    speed = dev.tag("speed_rpm")
    assert speed.scale == 2.0 and speed.byte_order == "ABCD"
    assert dev.tag("vib_rms_g").byte_order == "CDAB"  # device order replaces the profile's default
    assert dev.tag("bearing_temp_c").byte_order == "CDAB"  # per-tag order in the profile kept
    assert [t.name for t in dev.tags].count("speed_rpm") == 1


def test_sim_profile_plan_is_minimal() -> None:
    cfg = conn([{"name": "m01", "unit_id": 1, "profile": "edgekit-sim"}])
    plan = modbus.format_plan(cfg)
    # default class: holding 0..27 in one read (run_hours/name are slow), setpoint 50..51 separate
    # (40..49 unmapped, gap 22 > max_gap), coils 0..1, discrete input 0
    assert "FC03 holding_register     0..27" in plan
    assert "FC03 holding_register    50..51" in plan
    assert "FC01 coil                 0..1" in plan
    assert "FC02 discrete_input       0..0" in plan


def test_public_api_is_sorted_and_importable() -> None:
    assert list(modbus.__all__) == sorted(modbus.__all__)
    for name in modbus.__all__:
        assert hasattr(modbus, name), name
    cfg = conn([{"name": "d", "tags": [TAG]}])
    connector = modbus.build(cfg)
    assert connector.name == "c" and connector.health()["state"] == "connecting"
    assert "ModbusConnector('c'" in repr(connector) and "ReadPlanner('d'" in repr(connector.devices["d"].planner)
