"""The gateway's scoring call site: a worker batch scored with one ``score_many`` spools the same frames,
alarm/zone events and waveform snapshots (kept while in alarm) as the same blocks processed one per batch.

(Within a batch the gateway spools a batch's events after its data records, so only the interleaving of
the two streams depends on the batch size; each stream's order must not.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgekit.config import loads
from edgekit.runtime.gateway import Gateway
from edgekit.sim.physics import FaultSpec, MachineSignal
from edgekit.types import Event, EventKind, FeatureFrame, PointBatch, WaveformBlock

REPO = Path(__file__).resolve().parents[2]
FS, BLOCK = 12800.0, 4096


def _gateway(data_dir: Path) -> tuple[Gateway, list[Any]]:
    zoo = REPO / "models" / "zoo"
    cfg = loads(f"""
[gateway]
id = "gw-batch"
data_dir = "{data_dir}"
waveforms = "alarms"
[pipeline]
window = {BLOCK}
[[models]]
path = "{zoo / 'mahalanobis.onnx'}"
reload = false
[[models]]
path = "{zoo / 'autoencoder.onnx'}"
reload = false
[baseline]
commission_blocks = 50
min_blocks = 50
""")
    gw = Gateway(cfg)
    gw.build()
    spooled: list[Any] = []
    gw._spool = spooled.extend  # type: ignore[method-assign]  # what the worker hands to the spool, in order
    return gw, spooled


def _blocks() -> list[WaveformBlock | PointBatch]:
    """Three machines delivering blocks in turn; pump2 develops unbalance after commissioning."""
    machines = {
        "pump1": MachineSignal(fs=FS, block_len=BLOCK, channels=2, rpm=1480.0, seed=31),
        "pump2": MachineSignal(fs=FS, block_len=BLOCK, channels=2, rpm=2960.0, seed=32,
                               faults=[FaultSpec("unbalance", 1.5, onset_s=60 * BLOCK / FS, ramp_s=15 * BLOCK / FS)]),
        "fan3": MachineSignal(fs=FS, block_len=BLOCK, channels=2, rpm=990.0, seed=33),
    }
    items: list[WaveformBlock | PointBatch] = []
    for seq in range(90):
        for asset, sig in machines.items():
            items.append(WaveformBlock(asset=asset, data=sig.block(seq), fs=FS, t0=sig.t0(seq), seq=seq,
                                       channels=("de", "nde"), units=("g", "g")))
    return items


def _key(r: Any) -> tuple[Any, ...]:
    if isinstance(r, Event):
        data = {k: v for k, v in r.data.items() if k not in ("score", "exceedance")}
        ts = r.ts if r.kind in (EventKind.ALARM_RAISED, EventKind.ALARM_CLEARED) else None  # zone events: wall clock
        return ("event", r.kind, r.source, r.severity, ts, tuple(sorted(data.items(), key=str)))
    if isinstance(r, FeatureFrame):
        return ("frame", r.asset, r.seq, r.names)
    return (type(r).__name__, getattr(r, "asset", None), getattr(r, "seq", None))


@pytest.mark.timeout(60)
def test_one_score_many_per_worker_batch_spools_what_one_block_per_batch_does(tmp_path: Path) -> None:
    items = _blocks()
    one, one_out = _gateway(tmp_path / "one")
    many, many_out = _gateway(tmp_path / "many")
    try:
        one_events = [e for item in items for e in one._process([item], [])]
        many_events = [e for i in range(0, len(items), 7) for e in many._process(items[i:i + 7], [])]
    finally:
        one.spool.close()
        many.spool.close()
    one_data = [r for r in one_out if not isinstance(r, Event)]
    many_data = [r for r in many_out if not isinstance(r, Event)]
    assert [_key(r) for r in many_data] == [_key(r) for r in one_data]
    assert [_key(r) for r in many_out if isinstance(r, Event)] == [_key(r) for r in one_out if isinstance(r, Event)]
    assert [_key(e) for e in many_events] == [_key(e) for e in one_events]
    for a, b in zip(one_data, many_data, strict=True):
        if isinstance(a, FeatureFrame):
            nf = len(one.extractor.names)
            np.testing.assert_array_equal(a.values[:, :nf], b.values[:, :nf])
            np.testing.assert_allclose(a.values[:, nf:], b.values[:, nf:], rtol=1e-6)
    assert one.counts == many.counts and one.alarm_counts == many.alarm_counts
    # The stream exercises what it should: pump2 alarms, and its waveforms are kept while in alarm.
    raised = [e for e in one_events if e.kind is EventKind.ALARM_RAISED]
    assert raised and {e.data["asset"] for e in raised} == {"pump2"}
    assert any(isinstance(r, WaveformBlock) and r.asset == "pump2" for r in many_out)
    assert not any(isinstance(r, WaveformBlock) and r.asset != "pump2" for r in many_out)
