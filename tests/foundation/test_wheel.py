"""The wheel builds, carries the device profiles and the model zoo, and runs outside the source tree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(REPO)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (whl,) = out.glob("edgekit-*.whl")
    return whl


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A fresh venv holding only the wheel's edgekit; its dependencies come from the test environment.

    deps.pth adds the test environment's site-packages as a plain path entry: the .pth files there
    (the editable install of this checkout) are not processed, so 'edgekit' can only come from the wheel.
    """
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONNOUSERSITE"] = "1"
    return py, env


def test_wheel_contains_profiles_models_and_typing(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "edgekit/py.typed" in names
    profiles = [n for n in names if n.startswith("edgekit/_data/connectors/") and n.endswith(".toml")]
    models = [n for n in names if n.startswith("edgekit/_data/models/") and n.endswith(".onnx")]
    assert profiles, "device profiles missing from the wheel"
    assert models, "model zoo missing from the wheel"
    assert not [n for n in names if n.endswith(".mat")], "test data must never ship in the wheel"


def test_installed_wheel_runs_outside_the_source_tree(installed: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    py, env = installed
    code = ("import edgekit, edgekit.resources as r; print(edgekit.__file__); "
            "print(r.profiles_dir()); print(sorted(p.name for p in r.models_dir().glob('*.onnx')))")
    proc = subprocess.run([str(py), "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert str(REPO) not in proc.stdout.splitlines()[0], proc.stdout
    assert "_data" in proc.stdout.splitlines()[1]
    helptext = subprocess.run([str(py), "-m", "edgekit", "--help"], cwd=tmp_path, capture_output=True,
                              text=True, env=env)
    assert helptext.returncode == 0 and "demo" in helptext.stdout


def test_installed_wheel_runs_the_demo(installed: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    py, env = installed
    summary = tmp_path / "s.json"
    proc = subprocess.run([str(py), "-m", "edgekit", "demo", "--duration", "10", "--no-view",
                           "--summary-json", str(summary)], cwd=tmp_path, capture_output=True, text=True,
                          env=env, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    s = json.loads(summary.read_text())
    assert s["records_delivered"] > 0 and s["records_lost"] == 0 and s["duplicates_in_store"] == 0
