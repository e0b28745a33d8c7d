"""The wheel builds, carries the device profiles and the model zoo, and runs outside the source tree."""

from __future__ import annotations

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


def test_wheel_contains_profiles_models_and_typing(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "edgekit/py.typed" in names
    profiles = [n for n in names if n.startswith("edgekit/_data/connectors/") and n.endswith(".toml")]
    models = [n for n in names if n.startswith("edgekit/_data/models/") and n.endswith(".onnx")]
    assert profiles, "device profiles missing from the wheel"
    assert models, "model zoo missing from the wheel"
    assert not [n for n in names if n.endswith(".mat")], "test data must never ship in the wheel"


def test_installed_wheel_runs_outside_the_source_tree(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # the dependencies come from the test environment (already pinned); edgekit itself only from the wheel
    deps = sysconfig.get_paths()["purelib"]
    (Path(site) / "deps.pth").write_text(deps + "\n")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env["PYTHONNOUSERSITE"] = "1"
    code = ("import edgekit, edgekit.resources as r; print(edgekit.__file__); "
            "print(r.profiles_dir()); print(sorted(p.name for p in r.models_dir().glob('*.onnx')))")
    # deps.pth adds the test env's site-packages as a plain path entry: its own .pth files (the editable
    # install of this checkout) are not processed, so 'edgekit' can only come from the extracted wheel.
    proc = subprocess.run([str(py), "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert str(REPO) not in proc.stdout.splitlines()[0], proc.stdout
    assert "_data" in proc.stdout.splitlines()[1]
    helptext = subprocess.run([str(py), "-m", "edgekit", "--help"], cwd=tmp_path, capture_output=True,
                              text=True, env=env)
    assert helptext.returncode == 0 and "demo" in helptext.stdout
