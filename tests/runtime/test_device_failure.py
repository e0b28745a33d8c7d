"""A device dies mid-run: its data turns bad, an Event is emitted, and the gateway recovers.

Two real failures: (1) the simulator serving a Modbus device is SIGKILLed and later restarted on
the same port — the connector reports the device down and up again, and good values resume;
(2) a connector whose task really crashes when its device drops the connection is restarted by
the supervisor with backoff, and the restart is emitted as a `task_restarted` Event.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Any

import numpy as np
from portutil import free_port

from edgekit.config import loads
from edgekit.runtime.gateway import Gateway
from edgekit.sim import spawn, wait_ready
from edgekit.types import Event, EventKind, PointBatch, Quality


async def _until(pred: Any, timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.1)


def _start_sim(port: int) -> Any:
    proc = spawn(["--machines", "1", "--no-opcua", "--modbus-port", str(port), "--seed", "1"])
    wait_ready(proc, 60)
    return proc


async def test_killed_modbus_device_goes_down_and_comes_back(tmp_path: Path) -> None:
    port = free_port()
    sim = _start_sim(port)
    cfg = loads(f"""
[gateway]
id = "gw-kill"
data_dir = "{tmp_path}"
shutdown_timeout = "3s"

[[modbus]]
name = "plant"
port = {port}
timeout = "300ms"
reconnect_max = "1s"
devices = [{{ name = "m01", unit_id = 1, profile = "edgekit-sim", poll = {{ default = "200ms", wave = "200ms" }} }}]

[pipeline]
enabled = false
""")
    gw = Gateway(cfg)
    events: list[Event] = []
    gw.listeners.append(events.append)
    seen: list[PointBatch] = []
    orig_put = gw.queue.put

    async def spy(item: Any) -> None:  # observe what the connector hands over, then pass it on
        if isinstance(item, PointBatch):
            seen.append(item)
        await orig_put(item)

    gw.queue.put = spy  # type: ignore[method-assign]
    runner = asyncio.create_task(gw.run(install_signals=False))
    try:
        await _until(lambda: any((b.quality == Quality.GOOD).all() for b in seen), 30, "good values")
        sim.send_signal(signal.SIGKILL)
        sim.wait()
        n_before = len(seen)
        await _until(lambda: any(e.kind is EventKind.CONNECTOR_DOWN for e in events), 30, "device down event")
        bad = [b for b in seen[n_before:] if (b.quality == Quality.BAD).any()]
        assert bad, "values were not marked bad while the device was dead"
        assert all(r for b in bad for r, q in zip(b.reasons, b.quality) if q == Quality.BAD)
        down_at = next(i for i, e in enumerate(events) if e.kind is EventKind.CONNECTOR_DOWN)
        sim = _start_sim(port)
        n_dead = len(seen)
        await _until(lambda: any(e.kind is EventKind.CONNECTOR_UP for e in events[down_at:]), 30,
                     "device up event after the restart")
        await _until(lambda: any((b.quality == Quality.GOOD).all() for b in seen[n_dead:]), 30,
                     "good values after restart")
    finally:
        gw.stop()
        await asyncio.wait_for(runner, 30)
        with contextlib.suppress(ProcessLookupError):
            sim.kill()
        sim.wait()
    assert gw.supervisor.snapshot()["plant"]["state"] == "stopped"


class LineDevice:
    """A connector for a toy line protocol ("<value>\\n" per reading) that crashes when the device
    drops the connection — so the *supervisor* has to bring it back."""

    def __init__(self, name: str, port: int) -> None:
        self.name = name
        self.port = port
        self.connects = 0

    async def run(self, sink: Any) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.connects += 1
        try:
            while True:
                line = await reader.readline()
                if not line:
                    raise ConnectionResetError("device closed the connection")
                await sink.points(PointBatch.build(self.name, ["level"], [float(line)]))
        finally:
            writer.close()

    def health(self) -> dict[str, Any]:
        return {"state": "running", "connects": self.connects}


async def test_crashing_connector_task_is_restarted_with_an_event(tmp_path: Path) -> None:
    clients: list[asyncio.StreamWriter] = []

    async def device(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        clients.append(writer)
        with contextlib.suppress(ConnectionError):
            for i in range(1_000_000):
                writer.write(f"{np.sin(i / 10):.4f}\n".encode())
                await writer.drain()
                await asyncio.sleep(0.02)

    server = await asyncio.start_server(device, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    cfg = loads(f'[gateway]\nid = "gw-crash"\ndata_dir = "{tmp_path}"\nrestart_backoff_initial = "100ms"\n'
                '[pipeline]\nenabled = false\n')
    gw = Gateway(cfg)
    gw.build()
    conn = LineDevice("tank", port)
    gw.connectors["tank"] = conn
    events: list[Event] = []
    gw.listeners.append(events.append)
    runner = asyncio.create_task(gw.run(install_signals=False))
    try:
        await _until(lambda: gw.counts["points"] > 5, 20, "first readings")
        clients[0].transport.abort()  # the device drops the link: the connector task crashes
        await _until(lambda: any(e.kind is EventKind.TASK_RESTARTED for e in events), 20, "restart event")
        await _until(lambda: conn.connects >= 2, 20, "reconnect by the restarted task")
        before = gw.counts["points"]
        await _until(lambda: gw.counts["points"] > before + 5, 20, "readings after the restart")
    finally:
        gw.stop()
        await asyncio.wait_for(runner, 30)
        server.close()
    restart = next(e for e in events if e.kind is EventKind.TASK_RESTARTED)
    assert restart.source == "tank"
    assert "ConnectionResetError: device closed the connection" in restart.message
    assert gw.supervisor.snapshot()["tank"]["restarts"] >= 1
