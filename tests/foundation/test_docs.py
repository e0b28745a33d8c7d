"""The docs cannot drift: the config reference matches the types, every nav page exists, and every
key of the gateway config is documented."""

from __future__ import annotations

from pathlib import Path

from edgekit.config.parse import describe
from edgekit.config.reference import render
from edgekit.config.schema import GatewayConfig

REPO = Path(__file__).resolve().parents[2]


def test_configuration_reference_is_current() -> None:
    current = (REPO / "docs" / "configuration.md").read_text()
    assert current == render(), "docs/configuration.md is stale: python -m edgekit.config.reference > docs/configuration.md"


def test_every_config_key_has_a_meaning() -> None:
    undocumented = [key for key, _, _, doc in describe(GatewayConfig) if not doc.strip()]
    assert not undocumented, f"config keys without documentation: {undocumented}"


def test_every_nav_page_exists() -> None:
    nav = [line.split(":", 1)[1].strip() for line in (REPO / "mkdocs.yml").read_text().splitlines()
           if line.strip().startswith("- ") and line.strip().endswith(".md")]
    assert nav
    missing = [page for page in nav if not (REPO / "docs" / page).exists()]
    assert not missing, f"mkdocs nav pages missing from docs/: {missing}"


def test_readme_first_commands_are_make_demo_and_make_test() -> None:
    readme = (REPO / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci


def test_docs_site_builds_strict(tmp_path: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
