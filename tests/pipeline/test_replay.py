"""ReplayConnector: real file, real event loop, pacing, sequence numbers, looping, into the pipeline."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from edgekit.config.schema import ReplayConfig
from edgekit.connectors.replay import ReplayConnector
from edgekit.errors import ConfigError
from edgekit.pipeline import Framer, PipelineConfig, build
from edgekit.runtime.interfaces import Connector, Sink
from edgekit.types import Event, EventKind, PointBatch, Quality, WaveformBlock


class ListSink:
    def __init__(self, limit: int) -> None:
        self.blocks: list[WaveformBlock] = []
        self.events: list[Event] = []
        self.limit = limit
        self.done = asyncio.Event()

    async def points(self, batch: PointBatch) -> None:
        raise AssertionError("replay sends no points")

    async def waveform(self, block: WaveformBlock) -> None:
        self.blocks.append(block)
        if len(self.blocks) >= self.limit:
            self.done.set()

    def event(self, event: Event) -> None:
        self.events.append(event)


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    x = np.random.default_rng(0).standard_normal((2, 4000)).astype(np.float32)
    np.save(tmp_path / "rec.npy", x)
    return tmp_path / "rec.npy"


async def _run(conn: ReplayConnector, sink: ListSink, timeout: float = 5.0) -> float:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    task = asyncio.create_task(conn.run(sink))
    await asyncio.wait_for(sink.done.wait(), timeout)
    elapsed = loop.time() - t0
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return elapsed


async def test_replay_paces_loops_and_numbers_blocks(recording: Path) -> None:
    cfg = ReplayConfig(name="m1", file=str(recording), fs=8000.0, block=1000, rpm=1500.0, speedup=20.0)
    conn = ReplayConnector(cfg)
    assert isinstance(conn, Connector) and isinstance(ListSink(1), Sink)
    sink = ListSink(limit=10)  # 4 blocks per pass: this crosses two loop boundaries
    elapsed = await _run(conn, sink)
    assert elapsed >= 10 * 1000 / 8000 / 20 * 0.9  # paced at real time x speedup, not as fast as possible
    assert [b.seq for b in sink.blocks] == list(range(10))
    data = np.load(recording)
    np.testing.assert_array_equal(sink.blocks[5].data, data[:, 1000:2000])
    b = sink.blocks[1]
    assert b.fs == 8000.0 and b.speed_hz == 25.0 and b.units == ("g", "g") and b.channels == ("ch0", "ch1")
    assert b.t0 - sink.blocks[0].t0 == pytest.approx(1000 / 8000)
    assert sink.events[0].kind == EventKind.CONNECTOR_UP
    h = conn.health()
    assert h["state"] == "stopped" and h["blocks"] == 10 and h["loops"] == 2 and h["last_good_read"]


async def test_replay_without_loop_finishes_and_idles(recording: Path) -> None:
    conn = ReplayConnector(ReplayConfig(name="m1", file=str(recording), fs=8000.0, block=1500, loop=False, speedup=100.0))
    sink = ListSink(limit=2)
    task = asyncio.create_task(conn.run(sink))
    await asyncio.wait_for(sink.done.wait(), 5)
    for _ in range(100):
        if conn.health()["state"] == "finished":
            break
        await asyncio.sleep(0.01)
    assert conn.health()["state"] == "finished" and len(sink.blocks) == 2  # 500-sample tail not sent
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sink.events[-1].kind == EventKind.CONNECTOR_DOWN


def test_replay_config_errors(recording: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        ReplayConnector(ReplayConfig(name="m", file=str(tmp_path / "missing.npy"), fs=1000.0))
    with pytest.raises(ConfigError, match="sample rate"):
        ReplayConnector(ReplayConfig(name="m", file=str(recording)))
    with pytest.raises(ConfigError, match="speedup"):
        ReplayConnector(ReplayConfig(name="m", file=str(recording), fs=1000.0, speedup=0.0))
    with pytest.raises(ConfigError, match="longer than the recording"):
        ReplayConnector(ReplayConfig(name="m", file=str(recording), fs=1000.0, block=8192))


async def test_cwru_replay_through_framer_and_extractor(cwru_dir: Path) -> None:
    cfg = ReplayConfig(name="rig", file=str(cwru_dir / "inner_race_007_0hp_12k.mat"), key="X105_DE_time",
                       fs=12000.0, block=4096, speedup=1000.0)
    conn = ReplayConnector(cfg)
    sink = ListSink(limit=12)
    await _run(conn, sink)
    framer = Framer(16384, 0.5)
    ex = build(PipelineConfig(bearing="6205", envelope_band_hz=(2000.0, 5500.0), block_speed=True))
    frames = []
    for b in sink.blocks:
        windows, events = framer.push(b)
        assert events == []
        frames += [ex.transform(w) for w in windows]
    assert len(frames) >= 4
    bpfi = 5.4152 * 1797 / 60  # the file's RPM variable gives the speed per block
    for f in frames:
        assert f.quality[0] == Quality.GOOD
        assert abs(f.column("env_peak_hz")[0] / bpfi - 1) < 0.02
