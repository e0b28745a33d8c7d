"""Shared test fixtures: free loopback ports, the CWRU oracle data, temporary data folders."""

from __future__ import annotations

from pathlib import Path

import pytest
from portutil import free_port

__all__ = ["free_port"]

REPO = Path(__file__).resolve().parents[1]
CWRU = REPO.parent / "shared" / "data" / "cwru"


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def cwru_dir() -> Path:
    if not CWRU.is_dir():
        pytest.skip(f"CWRU oracle data not found at {CWRU}")
    return CWRU
