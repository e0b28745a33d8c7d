"""Helpers and fixtures for the OPC UA tests: certificates, a secured server subprocess, a collecting sink.

The session server (``opcua_server``) is ``server_app.py`` in a subprocess offering None and every
secure policy × mode, anonymous access and user ``operator`` / ``s3cret``. Tests that need to
control the server's clock (waveform gaps) start an in-process ``SimServer`` themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from portutil import free_port  # re-exported for the OPC UA tests

from edgekit.config.parse import parse
from edgekit.connectors.opcua import OpcUaConnectionConfig, OpcUaConnector, build
from edgekit.connectors.opcua.certgen import generate
from edgekit.types import Event, EventKind, PointBatch, WaveformBlock

HERE = Path(__file__).resolve().parent
SERVER_APP = HERE / "server_app.py"
USER, PASSWORD = "operator", "s3cret"


@dataclass
class Pki:
    server: Path  # cert.der + key.pem of the server
    client: Path  # cert.der + key.pem of the client
    trust: Path  # trust dir holding the server certificate
    client_uri: str = "urn:edgekit:test:client"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    generate(root / "server", "urn:edgekit:test:server", ["localhost", "127.0.0.1"], server=True)
    generate(root / "client", "urn:edgekit:test:client", ["localhost"])
    trust = root / "trusted"
    trust.mkdir()
    shutil.copy(root / "server" / "cert.der", trust / "server.der")
    return Pki(root / "server", root / "client", trust)


class ServerProcess:
    """``server_app.py`` as a child process that can be killed and restarted on the same port."""

    def __init__(self, port: int, pki: Pki | None, user: bool = True) -> None:
        self.port = port
        self.pki = pki
        self.user = user
        self.endpoint = f"opc.tcp://127.0.0.1:{port}/edgekit/sim"
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 30.0) -> None:
        cmd = [sys.executable, str(SERVER_APP), "--port", str(self.port)]
        if self.pki is not None:
            cmd += ["--pki", str(self.pki.server)]
        if self.user:
            cmd += ["--user", USER, "--password", PASSWORD]
        env = dict(os.environ, PYTHONWARNINGS="ignore")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = self.proc.stdout.readline()  # blocks until READY or exit
        if not line.startswith("READY") or time.monotonic() > deadline:
            self.kill()
            raise RuntimeError(f"OPC UA test server did not start: {line!r}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # SIGKILL
            self.proc.wait(10)
        self.proc = None


@pytest.fixture(scope="session")
def opcua_server(pki: Pki) -> Iterator[ServerProcess]:
    srv = ServerProcess(free_port(), pki)
    srv.start()
    yield srv
    srv.kill()


@dataclass
class CollectingSink:
    points_: list[PointBatch] = field(default_factory=list)
    blocks: list[WaveformBlock] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    async def points(self, batch: PointBatch) -> None:
        self.points_.append(batch)

    async def waveform(self, block: WaveformBlock) -> None:
        self.blocks.append(block)

    def event(self, event: Event) -> None:
        self.events.append(event)

    def kinds(self) -> list[EventKind]:
        return [e.kind for e in self.events]

    def latest(self) -> dict[tuple[str, str], tuple[float, str | None, int, str]]:
        """(device, tag) → (value, text, quality, reason) of the newest point."""
        out: dict[tuple[str, str], tuple[float, str | None, int, str]] = {}
        for b in self.points_:
            for i, tag in enumerate(b.tags):
                out[(b.device, tag)] = (
                    float(b.values[i]),
                    b.text[i] if b.text else None,
                    int(b.quality[i]),
                    b.reasons[i] if b.reasons else "",
                )
        return out


def make_config(endpoint: str, **kw: Any) -> OpcUaConnectionConfig:
    data: dict[str, Any] = {
        "name": "t",
        "endpoint": endpoint,
        "publishing_interval": "50ms",
        "keepalive": "500ms",
        "request_timeout": "2s",
        "reconnect_min": "200ms",
        "reconnect_max": "1s",
    }
    data.update(kw)
    if data.get("security_policy", "auto") in ("None", "auto") and "client_cert" not in data:
        data.setdefault("allow_insecure", True)
    return parse(OpcUaConnectionConfig, data, "opcua[0]")


def secure_kw(pki: Pki, **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "client_cert": str(pki.client / "cert.der"),
        "client_key": str(pki.client / "key.pem"),
        "trust_dir": str(pki.trust),
    }
    out.update(kw)
    return out


class Running:
    """A connector task with its sink; ``wait_for`` polls a condition on the sink."""

    def __init__(self, connector: OpcUaConnector) -> None:
        self.connector = connector
        self.sink = CollectingSink()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Running:
        self.task = asyncio.create_task(self.connector.run(self.sink))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass

    async def wait_for(self, cond: Callable[[CollectingSink], bool], timeout: float = 10.0, what: str = "") -> float:
        t0 = time.monotonic()
        while not cond(self.sink):
            assert self.task is not None
            if self.task.done():
                self.task.result()
            if time.monotonic() - t0 > timeout:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {what or cond}; health={self.connector.health()}, "
                    f"events={[(e.kind, e.message) for e in self.sink.events]}"
                )
            await asyncio.sleep(0.02)
        return time.monotonic() - t0


def running(cfg: OpcUaConnectionConfig) -> Running:
    return Running(build(cfg))


class Proxy:
    """A TCP forwarder on loopback whose connections can be cut, or frozen (bytes silently dropped)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.conns = 0
        self.frozen: set[int] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers += [writer, up_w]
        self.conns += 1
        conn = self.conns

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    if conn in self.frozen:
                        continue  # a dead network path: nothing arrives, nothing is closed
                    dst.write(data)
                    await dst.drain()
            dst.close()

        with contextlib.suppress(asyncio.CancelledError):  # the test's loop is closing
            await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))

    def freeze(self) -> None:
        self.frozen.update(range(1, self.conns + 1))

    def cut(self) -> None:
        for w in self.writers:
            w.transport.abort()
        self.writers.clear()

    async def stop(self) -> None:
        self.cut()
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()
