"""The connector against a real pymodbus TCP server: every type x byte order, addressing, writes,
exception responses, waveform blocks with gap detection."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pytest
from modbus_helpers import CollectSink, Running, start_tcp_server
from pymodbus.client import AsyncModbusTcpClient
from test_modbus_decode import FMT, ORDERS, SAMPLE, wire_registers

from edgekit.config.parse import parse
from edgekit.connectors import modbus
from edgekit.connectors.modbus.config import ModbusConnectionConfig
from edgekit.errors import ConfigError
from edgekit.types import EventKind, Quality


def conn(port: int, devices: list[dict[str, Any]], **kw: Any) -> ModbusConnectionConfig:
    base = {"name": "t", "host": "127.0.0.1", "port": port, "timeout": "300ms", "retries": 0,
            "reconnect_min": "50ms", "reconnect_max": "200ms", "devices": devices}
    return parse(ModbusConnectionConfig, {**base, **kw}, "modbus[0]")


async def test_modbus_server_addressing(port: int) -> None:
    """Protocol address N of the helper server is what SimData(N) holds (the 3.16 offset pitfall)."""
    server = await start_tcp_server({1: {"holding_register": {0: 11, 1: 12, 100: 13}, "coil": {0: True, 3: True}}}, port)
    client = AsyncModbusTcpClient("127.0.0.1", port=port, retries=0, reconnect_delay=0)
    try:
        await client.connect()
        assert (await client.read_holding_registers(0, count=2, device_id=1)).registers == [11, 12]
        assert (await client.read_holding_registers(100, count=1, device_id=1)).registers == [13]
        assert (await client.read_holding_registers(2, count=1, device_id=1)).exception_code == 2
        assert (await client.read_coils(0, count=4, device_id=1)).bits[:4] == [True, False, False, True]
    finally:
        client.close()
        await server.shutdown()


async def test_every_type_and_byte_order_live(port: int) -> None:
    regs: dict[int, int] = {}
    tags: list[dict[str, Any]] = []
    expected: dict[str, float | str] = {}
    addr = 0
    for kind in FMT:
        for order in ORDERS:
            words = wire_registers(kind, SAMPLE[kind], order)
            regs.update({addr + i: w for i, w in enumerate(words)})
            name = f"{kind}_{order}"
            tags.append({"name": name, "address": addr, "table": "holding_register", "type": kind, "byte_order": order})
            expected[name] = SAMPLE[kind]
            regs[addr + len(words)] = 0xFFFF  # an unused register between tags: merged across
            addr += len(words) + 1
    for order, data in (("ABCD", b"EDGE-KIT"), ("BADC", b"DEEGK-TI")):
        regs.update({addr + i: w for i, w in enumerate(np.frombuffer(data, ">u2").tolist())})
        tags.append({"name": f"string_{order}", "address": f"1-based:{addr + 1}", "table": "holding_register",
                     "type": "string", "length": 4, "byte_order": order})
        expected[f"string_{order}"] = "EDGE-KIT"
        addr += 4
    regs[addr] = 0b1010_0000_0000_0100
    tags += [{"name": f"bit{b}", "address": f"4x{addr + 1:04d}", "type": "bit", "bit": b} for b in (0, 2, 13, 15)]
    expected.update({"bit0": 0, "bit2": 1, "bit13": 1, "bit15": 1})
    tags += [{"name": "coil3", "address": "00004"}, {"name": "di0", "address": "100001"},
             {"name": "ir7", "address": "30008", "type": "int16", "scale": 0.5, "offset": 1}]
    expected.update({"coil3": 1, "di0": 1, "ir7": -9.0})
    server = await start_tcp_server({3: {"holding_register": regs, "coil": {3: True}, "discrete_input": {0: True},
                                         "input_register": {7: (-20) & 0xFFFF}}}, port)
    cfg = conn(port, [{"name": "dev", "unit_id": 3, "tags": tags}])
    connector = modbus.build(cfg)
    sink = CollectSink()
    try:
        async with Running(connector, sink):
            await sink.wait_for(lambda: bool(sink.of("dev")))
    finally:
        await server.shutdown()
    got = sink.last("dev")
    assert set(got) == set(expected)
    for name, want in expected.items():
        value, quality, reason, text = got[name]
        assert quality == Quality.GOOD, (name, reason)
        if isinstance(want, str):
            assert text == want, name
        else:
            assert value == pytest.approx(want, rel=1e-3 if "float16" in name else 1e-9), name
    # 36 numeric tags + 2 strings + 4 bits over holding registers 0..128: 2 reads of <= 125, plus one
    # FC01, FC02 and FC04 each
    health = connector.health()["devices"]["dev"]
    assert health["requests_per_scan"] == 5 and health["refused"] == {}


async def test_writes_fc5_fc6_fc15_fc16(port: int) -> None:
    server = await start_tcp_server({1: {"holding_register": {i: 0 for i in range(10)}, "coil": {0: False, 1: False}}}, port)
    tags = [
        {"name": "sp", "address": 0, "table": "holding_register", "type": "uint16", "scale": 0.1, "writable": True},
        {"name": "sp32", "address": 2, "table": "holding_register", "type": "float32", "byte_order": "CDAB",
         "writable": True},
        {"name": "txt", "address": 4, "table": "holding_register", "type": "string", "length": 2, "writable": True},
        {"name": "ro", "address": 6, "table": "holding_register"},
        {"name": "en", "address": 1, "table": "coil", "writable": True},
    ]
    c1 = modbus.build(conn(port, [{"name": "a", "unit_id": 1, "tags": tags}]))
    c2 = modbus.build(conn(port, [{"name": "a", "unit_id": 1, "tags": tags, "write_multiple": True}]))
    plain = AsyncModbusTcpClient("127.0.0.1", port=port, retries=0, reconnect_delay=0)
    try:
        await plain.connect()
        for c in (c1, c2):
            await c.link.connect()
        await c1.write("a", "sp", 123.4)          # FC6
        await c1.write("a", "en", True)           # FC5
        await c2.write("a", "sp32", -2.5)         # FC16
        await c2.write("a", "txt", "OK")          # FC16
        assert (await plain.read_holding_registers(0, count=1, device_id=1)).registers == [1234]
        assert (await plain.read_coils(0, count=2, device_id=1)).bits[:2] == [False, True]
        assert (await plain.read_holding_registers(2, count=2, device_id=1)).registers == wire_registers(
            "float32", -2.5, "CDAB")
        assert (await plain.read_holding_registers(4, count=2, device_id=1)).registers == [0x4F4B, 0]
        await c2.write("a", "en", False)          # FC15
        assert (await plain.read_coils(0, count=2, device_id=1)).bits[:2] == [False, False]
        with pytest.raises(ConfigError, match="a.ro: is not writable"):
            await c1.write("a", "ro", 1)
        with pytest.raises(ConfigError, match="out of range"):
            await c1.write("a", "sp", 7000.0)
        with pytest.raises(ConfigError, match="no such tag"):
            await c1.write("a", "nope", 1)
    finally:
        plain.close()
        c1.link.close()
        c2.link.close()
        await server.shutdown()


async def test_exception_response_is_bad_with_reason_and_learned(port: int) -> None:
    # register 5 does not exist: a tag on it is refused, its neighbours are read in merged requests
    server = await start_tcp_server({1: {"holding_register": {0: 1, 1: 2, 2: 3, 3: 4, 4: 5, 6: 7, 7: 8}}}, port)
    tags = [{"name": f"r{a}", "address": a, "table": "holding_register"} for a in (0, 2, 4, 5, 7)]
    connector = modbus.build(conn(port, [{"name": "d", "tags": tags, "poll": {"default": "50ms"}}]))
    sink = CollectSink()
    try:
        async with Running(connector, sink):
            await sink.wait_for(lambda: len(sink.of("d")) >= 3)
            health = connector.health()
    finally:
        await server.shutdown()
    got = sink.last("d")
    assert got["r5"][1] == Quality.BAD and "exception 2 (illegal data address)" in got["r5"][2]
    assert {k: v[0] for k, v in got.items() if k != "r5"} == {"r0": 1, "r2": 3, "r4": 5, "r7": 8}
    assert health["devices"]["d"]["refused"] == {"holding_register": [[5, 6]]}
    assert health["devices"]["d"]["requests_per_scan"] == 3  # 0..4, 5 alone, 7
    assert health["devices"]["d"]["state"] == "up"  # an exception response is an answer


async def test_waveform_blocks_and_gap_events(port: int) -> None:
    n, scale = 64, 0.001
    ch = (np.arange(2 * n) - n).astype(np.int16)

    def ir(seq: int, samples: np.ndarray) -> dict[int, int]:
        hdr = [seq >> 16, seq & 0xFFFF, *np.frombuffer(struct.pack(">f", scale), ">u2").tolist(),
               *np.frombuffer(struct.pack(">f", 3200.0), ">u2").tolist(), 2, n]
        out = {i: int(v) for i, v in enumerate(hdr)}
        out.update({1000 + i: int(v) for i, v in enumerate(samples.astype(np.uint16))})
        return out

    server = await start_tcp_server({1: {"input_register": ir(7, ch), "holding_register": {0: 0, 1: 0}}}, port)
    cfg = conn(port, [{"name": "m01", "unit_id": 1, "profile": "edgekit-sim",
                       "poll": {"default": "1s", "slow": "10s", "wave": "50ms"}}])
    connector = modbus.build(cfg)
    sink = CollectSink()
    try:
        async with Running(connector, sink):
            await sink.wait_for(lambda: len(sink.blocks) >= 1)
            for addr, val in ir(10, -ch).items():  # seq jumps 7 -> 10: two blocks missed
                await server.async_setValues(1, 4, addr, [val])
            await sink.wait_for(lambda: len(sink.blocks) >= 2)
    finally:
        await server.shutdown()
    first, second = sink.blocks[0], sink.blocks[1]
    assert first.asset == "m01" and first.seq == 7 and first.fs == 3200.0 and first.channels == ("ch0", "ch1")
    assert first.units == ("g", "g") and first.data.shape == (2, n) and first.data.dtype == np.float32
    np.testing.assert_allclose(first.data.ravel(), ch * np.float32(scale), rtol=1e-6)
    assert second.seq == 10
    np.testing.assert_allclose(second.data.ravel(), -ch * np.float32(scale), rtol=1e-6)
    gaps = [e for e in sink.events if e.kind == EventKind.GAP_DETECTED]
    assert len(gaps) == 1 and gaps[0].data["missed"] == 2 and gaps[0].source == "m01"
    # the simulator profile's holding registers do not exist on this server: BAD points with reason
    assert sink.of("m01") and all(q == Quality.BAD for q in sink.of("m01")[-1].quality)
