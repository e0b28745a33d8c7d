"""`edgekit models check|score` and `edgekit baseline learn|show` on real files and a real replay connector."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from model_helpers import write_model

from edgekit.cli import main
from edgekit.sim.physics import FaultSpec, MachineSignal

REPO = Path(__file__).resolve().parents[2]
ZOO = REPO / "models" / "zoo"


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("rec")
    healthy = MachineSignal(seed=2300, channels=2)
    faulty = MachineSignal(seed=2300, channels=2, faults=[FaultSpec("outer_race", 1.0)])
    h = np.concatenate([healthy.block(s) for s in range(40)], axis=1)
    f = np.concatenate([faulty.block(s) for s in range(40, 50)], axis=1)
    np.save(d / "healthy.npy", h)
    np.save(d / "degrading.npy", np.concatenate([h, f], axis=1))
    return d


def config(tmp: Path, rec: Path) -> Path:
    path = tmp / "gw.toml"
    path.write_text(f"""
[gateway]
id = "gw1"
data_dir = "{tmp / 'data'}"

[[replay]]
name = "m1"
file = "{rec / 'healthy.npy'}"
fs = 25600
block = 8192
speedup = 40

[[models]]
path = "{ZOO / 'mahalanobis.onnx'}"

[baseline]
min_blocks = 20
""")
    return path


def test_models_check_ok_and_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "check", str(ZOO / "isolation_forest.onnx"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["ok"] and info["normalise"] == "baseline" and "kurtosis" in info["inputs"]
    bad = write_model(tmp_path / "bad.onnx", ["rms", "env_bpfo_amp"])
    assert main(["models", "check", str(bad)]) == 2
    assert "does not produce: ['env_bpfo_amp']" in capsys.readouterr().err


def test_models_score_a_recording_raises_the_alarm_on_the_fault(recordings: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["models", "score", str(ZOO / "mahalanobis.onnx"), str(recordings / "degrading.npy"),
               "--fs", "25600", "--learn", "30", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    scores = np.array(out["scores"], dtype=float)
    assert scores.shape == (50, 2) and out["threshold_source"].startswith(("baseline", "model (floor"))
    assert (scores[30:40] < out["threshold"]).mean() > 0.9  # held-out healthy blocks
    assert (scores[40:] >= out["threshold"]).all()
    raised = [e for e in out["events"] if e["kind"] == "alarm_raised"]
    assert {e["channel"] for e in raised} == {"ch0", "ch1"} and all(e["seq"] == 42 for e in raised)


def test_baseline_learn_from_file_and_from_a_live_replay_connector(
    recordings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = str(config(tmp_path, recordings))
    assert main(["baseline", "learn", "--config", cfg, "--file", str(recordings / "healthy.npy"),
                 "--fs", "25600", "--asset", "pump7"]) == 0
    out = capsys.readouterr().out
    assert "pump7: baseline from 40 blocks x 2 channels" in out and "model mahalanobis: threshold" in out
    # Live: the configured replay connector runs for 2 s (x40 real time) and nothing is spooled.
    assert main(["baseline", "learn", "--config", cfg, "--duration", "2s"]) == 0
    assert "m1: baseline from" in capsys.readouterr().out
    assert main(["baseline", "show", "m1", "--config", cfg, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["asset"] == "m1" and data["channels"] == ["ch0", "ch1"] and data["n_blocks"] >= 20
    assert sorted(p.name for p in (tmp_path / "data" / "baselines").iterdir()) == ["m1.json", "pump7.json"]
    assert main(["baseline", "show", "nobody", "--config", cfg]) == 1
