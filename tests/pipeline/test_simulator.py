"""The simulator's machines through the pipeline: unbalance shows at 1x and in the zone, bearing faults at
their defect lines (the simulator's bearings slip 1 %, inside the pipeline's 2 % tolerance)."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.pipeline import PipelineConfig, build
from edgekit.sim import FaultSpec, MachineSignal
from edgekit.types import WaveformBlock

FS = 25600.0
RPM = 1480.0


def frame(faults: tuple[FaultSpec, ...], seq: int = 3) -> dict[str, np.ndarray]:
    sig = MachineSignal(fs=FS, block_len=32768, channels=2, rpm=RPM, faults=faults, seed=4)
    x = sig.block(seq)
    blk = WaveformBlock("m1", x, FS, sig.t0(seq), seq, ("ch0", "ch1"), ("g", "g"), speed_hz=sig.speed_hz(seq))
    ex = build(PipelineConfig(block_speed=True, bearing="6205"))
    f = ex.transform(blk)
    return {n: f.column(n) for n in f.names}


def test_unbalance_raises_1x_and_zone() -> None:
    healthy = frame(())
    unbalanced = frame((FaultSpec("unbalance", 1.0),))
    assert (unbalanced["h1x_amp"] > 4 * healthy["h1x_amp"]).all()
    assert (healthy["zone"] <= 1).all() and (unbalanced["zone"] == 3).all()
    assert unbalanced["velocity_rms_mm_s"][0] > 4.5


@pytest.mark.parametrize(("kind", "line", "other"), [("outer_race", "env_bpfo_amp", "env_bpfi_amp"),
                                                     ("inner_race", "env_bpfi_amp", "env_bpfo_amp")])
def test_bearing_faults_show_at_their_lines(kind: str, line: str, other: str) -> None:
    healthy = frame(())
    faulty = frame((FaultSpec(kind, 0.6),))
    assert faulty[line][0] > 5 * healthy[line][0]
    assert faulty[line][0] > 2 * faulty[other][0]
    assert faulty["kurtosis"][0] > healthy["kurtosis"][0]
