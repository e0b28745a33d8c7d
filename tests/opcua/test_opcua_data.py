"""Data access against a real asyncua server: every data type, quality, timestamps, poll, deadband, writes."""

from __future__ import annotations

import math
import time

import pytest
from asyncua import Client, ua
from opcua_helpers import ServerProcess, make_config, running
from server_app import TYPES

from edgekit.errors import ConfigError
from edgekit.types import Quality

TYPE_NODES = [{"tag": vt.name, "node_id": f"ns=2;s=Types.{vt.name}"} for vt, _ in TYPES]
EXPECTED: dict[str, tuple[float, str | None]] = {
    "Boolean": (1.0, None), "SByte": (-5.0, None), "Byte": (200.0, None), "Int16": (-1234.0, None),
    "UInt16": (60000.0, None), "Int32": (-123456.0, None), "UInt32": (4000000000.0, None),
    "Int64": (float(-(2**40)), None), "UInt64": (float(2**50), None), "Float": (1.5, None),
    "Double": (2.25, None), "String": (math.nan, "hello"), "DateTime": (1767323045.0, None),
    "ByteString": (math.nan, "b'\\x01\\x02'"), "LocalizedText": (math.nan, "text-en"),
}


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.parametrize("mode", ["subscribe", "poll"])
async def test_every_data_type(opcua_server: ServerProcess, mode: str) -> None:
    cfg = make_config(opcua_server.endpoint, security_policy="None", mode=mode, poll_interval="100ms",
                      nodes=[*TYPE_NODES, {"tag": "missing", "node_id": "ns=2;s=Nope"}])
    async with running(cfg) as r:
        await r.wait_for(lambda s: len(s.latest()) == len(TYPE_NODES) + 1, what="all types")
        latest = r.sink.latest()
    for name, (value, text) in EXPECTED.items():
        got = latest[("t", name)]
        assert _same(got[0], value) and got[1] == text and got[2] == Quality.GOOD, (name, got)
    assert latest[("t", "missing")][2] == Quality.BAD
    assert latest[("t", "missing")][3] == "BadNodeIdUnknown"


async def test_profile_scalars_and_timestamps(opcua_server: ServerProcess) -> None:
    t_start = time.time()
    cfg = make_config(opcua_server.endpoint, security_policy="None", profile="edgekit-sim",
                      machines=["Machine01", "Machine02"], timestamps="gateway")
    async with running(cfg) as r:
        await r.wait_for(lambda s: len(s.latest()) == 20, what="20 profile tags")
        batch = next(b for b in r.sink.points_ if b.device == "Machine01" and len(b) == 10)
    assert batch.tags[0] == "speed_rpm" and batch.values[0] > 1400
    assert batch.text is not None and batch.text[batch.tags.index("name")] == "MACHINE-01"
    assert batch.values[batch.tags.index("energy_wh")] == 2**40 + 5
    assert (batch.source_ts == batch.recv_ts).all() and batch.recv_ts[0] >= t_start  # gateway time


async def test_source_and_server_timestamps(opcua_server: ServerProcess) -> None:
    async with Client(opcua_server.endpoint) as plain:
        dv = await plain.get_node("ns=2;s=Machine01.RunHours").read_data_value()
    assert dv.SourceTimestamp is not None
    assert dv.ServerTimestamp is not None
    # RunHours never changes, so a notification carries the same timestamps as a plain read. An
    # asyncua server stamps ServerTimestamp when the value is written (here ~1 µs after the source
    # time), not when it samples — so compare each mode with the plain read's own timestamp.
    for choice, expect in (("source", dv.SourceTimestamp.timestamp()), ("server", dv.ServerTimestamp.timestamp())):
        cfg = make_config(opcua_server.endpoint, security_policy="None", timestamps=choice,
                          nodes=[{"tag": "rh", "node_id": "ns=2;s=Machine01.RunHours"}])
        async with running(cfg) as r:
            await r.wait_for(lambda s: bool(s.points_))
        b = r.sink.points_[0]
        assert b.source_ts[0] == pytest.approx(expect, abs=1e-3)
        assert b.source_ts[0] < b.recv_ts[0]  # device time, not the gateway's receive time


async def test_browse_path_resolution_and_bad_path(opcua_server: ServerProcess) -> None:
    cfg = make_config(opcua_server.endpoint, security_policy="None", namespace="urn:edgekit:sim", nodes=[
        {"tag": "speed", "browse_path": "Plant/Machine02/SpeedRpm"},
        {"tag": "speed_nsu", "node_id": "nsu=urn:edgekit:sim;s=Machine02.SpeedRpm"},
        {"tag": "nothing", "browse_path": "Plant/Machine02/NoSuchThing"},
    ])
    async with running(cfg) as r:
        await r.wait_for(lambda s: len(s.latest()) == 3)
        latest = r.sink.latest()
    assert latest[("t", "speed")][2] == Quality.GOOD and latest[("t", "speed")][0] > 1400
    assert latest[("t", "speed_nsu")][2] == Quality.GOOD
    assert latest[("t", "nothing")][2] == Quality.BAD and latest[("t", "nothing")][3].startswith("Bad")


async def test_absolute_deadband_filters_small_changes(opcua_server: ServerProcess) -> None:
    cfg = make_config(opcua_server.endpoint, security_policy="None", nodes=[
        {"tag": "db", "node_id": "ns=2;s=Machine02.Setpoint", "deadband_type": "absolute", "deadband": 5.0},
        {"tag": "all", "node_id": "ns=2;s=Machine02.Setpoint"},
    ])
    async with Client(opcua_server.endpoint) as writer:
        node = writer.get_node("ns=2;s=Machine02.Setpoint")
        await node.write_value(ua.DataValue(ua.Variant(1000.0, ua.VariantType.Double)))
        async with running(cfg) as r:
            await r.wait_for(lambda s: ("t", "db") in s.latest())
            for v in (1002.0, 1004.0, 1010.0, 1011.0, 1030.0):
                await node.write_value(ua.DataValue(ua.Variant(v, ua.VariantType.Double)))
                await r.wait_for(lambda s, v=v: s.latest()[("t", "all")][0] == v)
            await r.wait_for(lambda s: s.latest()[("t", "db")][0] == 1030.0)
        seen_db = [float(b.values[i]) for b in r.sink.points_ for i, t in enumerate(b.tags) if t == "db"]
        seen_all = [float(b.values[i]) for b in r.sink.points_ for i, t in enumerate(b.tags) if t == "all"]
    assert seen_db == [1000.0, 1010.0, 1030.0]
    assert seen_all == [1000.0, 1002.0, 1004.0, 1010.0, 1011.0, 1030.0]


async def test_writes_only_when_configured(opcua_server: ServerProcess) -> None:
    nodes = [{"tag": "sp", "node_id": "ns=2;s=Machine01.Setpoint", "writable": True},
             {"tag": "speed", "node_id": "ns=2;s=Machine01.SpeedRpm"}]
    ro = make_config(opcua_server.endpoint, security_policy="None", nodes=nodes)
    async with running(ro) as r:
        await r.wait_for(lambda s: len(s.latest()) == 2)
        with pytest.raises(ConfigError, match="writable"):
            await r.connector.write("sp", 1234.0)
    rw = make_config(opcua_server.endpoint, security_policy="None", nodes=nodes, writable=True)
    async with running(rw) as r:
        await r.wait_for(lambda s: len(s.latest()) == 2)
        with pytest.raises(ConfigError, match="writable"):
            await r.connector.write("speed", 1.0)
        await r.connector.write("sp", 1234.0)
        await r.wait_for(lambda s: s.latest()[("t", "sp")][0] == 1234.0, what="written value comes back")


async def test_method_call_only_when_writable(opcua_server: ServerProcess) -> None:
    nodes = [{"tag": "speed", "node_id": "ns=2;s=Machine01.SpeedRpm"}]
    for writable in (False, True):
        cfg = make_config(opcua_server.endpoint, security_policy="None", nodes=nodes, writable=writable)
        async with running(cfg) as r:
            await r.wait_for(lambda s: bool(s.points_))
            if writable:
                assert await r.connector.call("ns=2;s=Test", "ns=2;s=Test.Twice", 21.0) == 42.0
            else:
                with pytest.raises(ConfigError, match="writable"):
                    await r.connector.call("ns=2;s=Test", "ns=2;s=Test.Twice", 21.0)
