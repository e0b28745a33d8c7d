"""Shared test fixtures: free loopback ports, the CWRU oracle data, temporary data folders."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CWRU = REPO.parent / "shared" / "data" / "cwru"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def cwru_dir() -> Path:
    if not CWRU.is_dir():
        pytest.skip(f"CWRU oracle data not found at {CWRU}")
    return CWRU
