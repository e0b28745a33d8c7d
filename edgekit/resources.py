"""Where edgekit's shipped data lives: device profiles and the model zoo.

In a wheel they are inside the package (``edgekit/_data/…``); in a source checkout they are the
top-level ``connectors/`` and ``models/zoo/`` folders. Both layouts resolve through here.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["models_dir", "profiles_dir", "repo_root"]

_PKG = Path(__file__).resolve().parent


def repo_root() -> Path | None:
    """The source checkout this package runs from, or ``None`` when installed from a wheel."""
    root = _PKG.parent
    return root if (root / "pyproject.toml").exists() and (root / "connectors").is_dir() else None


def profiles_dir() -> Path:
    """Folder of device profiles (``modbus/*.toml``, ``opcua/*.toml``)."""
    installed = _PKG / "_data" / "connectors"
    if installed.is_dir():
        return installed
    root = repo_root()
    return (root / "connectors") if root else installed


def models_dir() -> Path:
    """Folder of the shipped ONNX model zoo."""
    installed = _PKG / "_data" / "models"
    if installed.is_dir():
        return installed
    root = repo_root()
    return (root / "models" / "zoo") if root else installed
