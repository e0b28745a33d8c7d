"""Waveform groups against an in-process server whose block writes the test controls."""

from __future__ import annotations

import numpy as np
from opcua_helpers import ServerProcess, free_port, make_config, running
from server_app import BLOCK, FS, SimServer

from edgekit.types import EventKind

PROFILE = {"profile": "edgekit-sim", "machines": ["Machine01"]}


def _expected(seq: int, channel: int) -> np.ndarray:
    t = np.arange(BLOCK) / FS
    return (np.sin(2 * np.pi * (100 * (channel + 1)) * t) + 0.001 * seq).astype(np.float32)


async def test_blocks_sequence_and_gaps() -> None:
    async with SimServer(free_port(), machines=1) as srv:
        srv.paused = True
        await srv.write_block()
        cfg = make_config(srv.endpoint, security_policy="None", **PROFILE)
        async with running(cfg) as r:
            await r.wait_for(lambda s: len(s.blocks) == 1, what="first block")
            await srv.write_block()
            await r.wait_for(lambda s: len(s.blocks) == 2, what="second block")
            b = r.sink.blocks[-1]
            assert b.asset == "Machine01" and b.channels == ("ch0", "ch1") and b.units == ("g", "g")
            assert b.data.shape == (2, BLOCK) and b.fs == FS and b.seq == srv.seq
            assert b.speed_hz is not None and abs(b.speed_hz - 1480 / 60) < 1e-9
            np.testing.assert_array_equal(b.data[0], _expected(srv.seq, 0))
            np.testing.assert_array_equal(b.data[1], _expected(srv.seq, 1))
            assert EventKind.GAP_DETECTED not in r.sink.kinds()
            # three blocks inside one publishing interval: only the newest is read → 2 missed
            for _ in range(3):
                await srv.write_block()
            await r.wait_for(lambda s: len(s.blocks) == 3, what="block after the burst")
            assert r.sink.blocks[-1].seq == r.sink.blocks[-2].seq + 3
            gap = next(e for e in r.sink.events if e.kind is EventKind.GAP_DETECTED)
            assert gap.data["missing"] == 2 and gap.data["asset"] == "Machine01"
            # the source restarts its counter
            srv.seq = 0
            await srv.write_block()
            await r.wait_for(lambda s: len(s.blocks) == 4)
            assert r.sink.blocks[-1].seq == 1
            assert "went back" in r.sink.events[-1].message
            assert [b.seq for b in r.sink.blocks] == [1, 2, 5, 1]


async def test_polled_waveform_without_seq_node(opcua_server: ServerProcess) -> None:
    cfg = make_config(opcua_server.endpoint, security_policy="None", mode="poll", waveforms=[{
        "asset": "m1", "fs": 1000.0, "poll_interval": "50ms",
        "channels": [{"id": "a", "browse_path": "Plant/Machine01/Vibration/Ch0", "namespace": "urn:edgekit:sim"}],
    }])
    async with running(cfg) as r:
        await r.wait_for(lambda s: len(s.blocks) >= 3, what="polled blocks")
    seqs = [b.seq for b in r.sink.blocks]
    assert seqs[:3] == [1, 2, 3]  # locally counted without a seq node
    assert all(b.fs == 1000.0 and b.data.shape == (1, BLOCK) for b in r.sink.blocks)
