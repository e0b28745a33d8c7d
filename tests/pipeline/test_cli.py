"""``edgekit features``: the CWRU oracle from the command line, and every file format."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io.wavfile

from edgekit.cli import main
from edgekit.pipeline import lookup

MULT = lookup("6205").multipliers()


@pytest.mark.parametrize(
    ("name", "key", "line"),
    [("inner_race_007_0hp_12k.mat", "X105_DE_time", MULT.bpfi), ("outer_race_007_at6_0hp_12k.mat", "X130_DE_time", MULT.bpfo)],
)
def test_cli_reproduces_cwru_oracle(cwru_dir: Path, name: str, key: str, line: float) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "edgekit", "features", str(cwru_dir / name), "--key", key, "--fs", "12000",
         "--bearing", "6205", "--units", "g", "--band", "2000-5500", "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [r["channel"] for r in rows] == [key]
    f = rows[0]["features"]
    rpm = 1797 if "inner" in name else 1796  # read from the file's RPM variable
    assert abs(f["env_peak_hz"] / (line * rpm / 60) - 1) < 0.02
    assert f["env_bpfi_amp"] is not None and f["velocity_rms_mm_s"] > 0


def test_cli_table_and_notes(cwru_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["features", str(cwru_dir / "ball_007_0hp_12k.mat"), "--fs", "12000", "--rpm", "0"]) == 0
    out, err = capsys.readouterr()
    assert "X118_DE_time" in out and "X118_BA_time" in out and "env_peak_hz" in out
    assert "no shaft speed" in err and "h1x_amp" not in out


def _signal(n: int = 8000) -> np.ndarray:
    t = np.arange(n) / 8000.0
    return np.vstack([np.sin(2 * np.pi * 100 * t), 0.5 * np.sin(2 * np.pi * 50 * t)]).astype(np.float32)


def _features(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> list[dict]:
    assert main(["features", str(path), "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_formats_agree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x = _signal()
    np.save(tmp_path / "rec.npy", x)
    np.save(tmp_path / "rec_t.npy", x.T)
    np.savetxt(tmp_path / "rec.csv", x.T, delimiter=",", header="left,right", comments="")
    scipy.io.wavfile.write(tmp_path / "rec.wav", 8000, x.T)
    scipy.io.savemat(tmp_path / "rec.mat", {"acc": x, "fs": 8000.0})
    ref = _features(tmp_path / "rec.npy", capsys, "--fs", "8000")
    assert [r["channel"] for r in ref] == ["ch0", "ch1"]
    assert ref[0]["features"]["rms"] == pytest.approx(1 / np.sqrt(2), rel=1e-4)
    assert ref[1]["features"]["peak"] == pytest.approx(0.5, rel=1e-3)
    for name, extra in [("rec_t.npy", ("--fs", "8000")), ("rec.csv", ("--fs", "8000")), ("rec.wav", ()), ("rec.mat", ("--key", "acc"))]:
        got = _features(tmp_path / name, capsys, *extra)
        for a, b in zip(got, ref, strict=True):
            for k, v in b["features"].items():
                assert a["features"][k] == pytest.approx(v, rel=1e-4, abs=1e-9), (name, k)
    assert [r["channel"] for r in _features(tmp_path / "rec.csv", capsys, "--fs", "8000")] == ["left", "right"]


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "rec.npy", _signal())
    assert main(["features", str(tmp_path / "rec.npy")]) == 2
    assert "sample rate" in capsys.readouterr().err
    assert main(["features", str(tmp_path / "rec.npy"), "--fs", "8000", "--bearing", "9999"]) == 2
    assert "9999" in capsys.readouterr().err
    (tmp_path / "x.txt").write_text("1,2")
    assert main(["features", str(tmp_path / "x.txt"), "--fs", "1"]) == 2
    assert "unsupported extension" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["features", str(tmp_path / "rec.npy"), "--band", "5-1"])
