"""`edgekit check` on case folders: each broken config gives exactly its expected message and exit 2.

A case is ``cases/<name>/config.toml`` plus ``error.txt`` (the exact message after
``edgekit: config error: ``) or ``ok.txt`` (a valid config: exit 0).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgekit.cli import main

CASES = sorted(p for p in (Path(__file__).parent / "cases").iterdir() if p.is_dir())


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_case(case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["check", str(case / "config.toml")])
    err = capsys.readouterr().err.strip()
    if (case / "error.txt").exists():
        expected = (case / "error.txt").read_text().strip()
        assert rc == 2
        assert err == f"edgekit: config error: {expected}"
    else:
        assert rc == 0, err


def test_valid_config_exits_zero(tmp_path: Path) -> None:
    cfg = tmp_path / "ok.toml"
    cfg.write_text('[gateway]\nid = "gw-1"\nshutdown_timeout = "250ms"\n')
    proc = subprocess.run([sys.executable, "-m", "edgekit", "check", str(cfg)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "OK" in proc.stdout


def test_missing_file_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "nope.toml")]) == 2
    assert "cannot read config file" in capsys.readouterr().err


@pytest.mark.parametrize("example", sorted((Path(__file__).parents[2] / "examples").glob("gateway-*.toml")),
                         ids=lambda p: p.name)
def test_shipped_example_configs_are_valid(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(example), "--plan"]) == 0, capsys.readouterr().err
    assert "requests per full scan" in capsys.readouterr().out
