"""Run the simulator as a child process (for tests that SIGKILL or restart the server).

``spawn(args)`` starts ``python -m edgekit simulate <args>``; the child prints ``KEY=VALUE`` lines
(``OPCUA_ENDPOINT``, ``OPCUA_CERT``, ``MODBUS``, ``MACHINES``), comment lines starting with ``#``,
and finally ``READY``. :func:`wait_ready` reads up to ``READY`` and returns the ``KEY=VALUE`` pairs.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence

from ..errors import EdgekitError

__all__ = ["spawn", "wait_ready"]


def spawn(args: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None) -> subprocess.Popen[bytes]:
    """Start ``python -m edgekit simulate *args``; stdout is an unbuffered byte pipe, stderr is inherited."""
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    return subprocess.Popen(
        [sys.executable, "-m", "edgekit", "simulate", *args],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, bufsize=0, env=child_env, cwd=cwd,
    )


def wait_ready(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> dict[str, str]:
    """Read the child's start-up lines until ``READY``; returns ``{"OPCUA_ENDPOINT": …, "MODBUS": …}``.

    Reads the raw pipe (no Python-level buffering, so ``select`` never misses a buffered line).
    Raises :class:`EdgekitError` if the child exits or ``timeout`` passes first.
    """
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    info: dict[str, str] = {}
    pending = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise EdgekitError(f"simulator did not print READY within {timeout} s (got {info})")
            if not sel.select(left):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                raise EdgekitError(f"simulator exited with code {proc.wait()} before READY (got {info})")
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                line = raw.decode("utf-8", "replace").strip()
                if line == "READY":
                    return info
                if line and not line.startswith("#") and "=" in line:
                    key, _, value = line.partition("=")
                    info[key] = value
