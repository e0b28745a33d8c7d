"""``edgekit demo``: plant simulator + gateway + data-centre collector on loopback, in one command.

Everything is real: the simulator is a child process serving OPC UA (asyncua) and Modbus TCP
(pymodbus) on free ports; the collector is a child process binding a ZeroMQ ROUTER with CURVE;
the gateway runs here, reads waveforms over OPC UA and process values over Modbus, computes
features, scores them with a zoo model against baselines it commissions from each machine's
first blocks, spools to SQLite and delivers upstream. One machine (``m02``) develops an
outer-race bearing fault during the run.

The gateway config it runs is written to ``<data dir>/gateway.toml`` so it can be read and
re-run with ``edgekit run``. At the end the gateway shuts down gracefully (drain + deliver),
then the summary compares what the gateway spooled with what the collector stored.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import loads
from ..resources import models_dir
from .gateway import Gateway, check_config, zone_letter
from .view import render, run_view

__all__ = ["DemoOptions", "run_demo"]

log = logging.getLogger("edgekit.demo")


@dataclass(frozen=True)
class DemoOptions:
    duration_s: float = 60.0
    machines: int = 3
    seed: int = 7
    data_dir: str = ""
    summary_json: str = ""
    model: str = "mahalanobis"
    view: bool = True
    commission_blocks: int = 30


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _gateway_toml(o: DemoOptions, data: Path, opcua_endpoint: str, modbus_port: int,
                  collector_endpoint: str, keys: Path) -> str:
    machines = [f"Machine{i:02d}" for i in range(1, o.machines + 1)]
    devices = "\n".join(
        f'  {{ name = "m{i:02d}", unit_id = {i}, profile = "edgekit-sim", poll = {{ wave = "100ms" }} }},' for i in range(1, o.machines + 1)
    )
    model = models_dir() / f"{o.model}.onnx"
    return f"""# Written by `edgekit demo`: a complete gateway config for the simulated plant.
[gateway]
id = "demo-gw"
data_dir = "{data / 'gateway'}"
shutdown_timeout = "20s"
waveforms = "alarms"          # raw waveform snapshots go upstream only while a machine is in alarm

# Vibration waveforms (and the process values) over OPC UA. Loopback demo: no OPC UA security,
# which must be asked for explicitly and is warned about at start.
[[opcua]]
name = "plant-opcua"
endpoint = "{opcua_endpoint}"
security_policy = "None"
allow_insecure = true
profile = "edgekit-sim"
machines = {json.dumps(machines)}

# The same machines over Modbus TCP, one unit id per machine: process values, and the vibration
# block decimated to 3.2 kHz (the register block is checked every 100 ms; a block lasts 320 ms).
[[modbus]]
name = "plant-modbus"
host = "127.0.0.1"
port = {modbus_port}
devices = [
{devices}
]

[pipeline]
bearing = "6205"              # SKF 6205 on every simulated machine
block_speed = true            # blocks carry the shaft speed (OPC UA SpeedHz node)

[[models]]
path = "{model}"

[baseline]
commission_blocks = {o.commission_blocks}   # learn each machine's healthy baseline from its first blocks
min_blocks = {min(o.commission_blocks, 20)}

[spool]
synchronous = "full"

[[uplinks]]
name = "datacentre"
endpoints = ["{collector_endpoint}"]
server_public_key = "{keys / 'collector.key'}"
secret_key = {{ file = "{keys / 'demo-gw.key_secret'}" }}
routes = ["points", "features", "event", "waveform", "gap"]
"""


async def _wait_line(proc: subprocess.Popen[bytes], timeout: float) -> dict[str, str]:
    from ..sim import wait_ready

    return await asyncio.to_thread(wait_ready, proc, timeout)


def _stop(proc: subprocess.Popen[Any] | None, timeout: float = 10.0) -> int | None:
    if proc is None or proc.poll() is not None:
        return None if proc is None else proc.returncode
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


async def run_demo(o: DemoOptions) -> dict[str, Any]:
    from ..sim import spawn
    from ..uplink.security import generate_keypair

    tmp = None
    if o.data_dir:
        data = Path(o.data_dir)
        if data.exists():
            shutil.rmtree(data)
    else:
        tmp = tempfile.mkdtemp(prefix="edgekit-demo-")
        data = Path(tmp)
    data.mkdir(parents=True, exist_ok=True)
    keys, allow = data / "keys", data / "allowed"
    allow.mkdir(parents=True)
    generate_keypair(keys, "collector")
    gw_public, _ = generate_keypair(keys, "demo-gw")
    shutil.copy(gw_public, allow / "demo-gw.key")

    onset = max(10.0, 0.3 * o.duration_s)
    ramp = max(5.0, 0.5 * o.duration_s)
    sim = spawn(["--machines", str(o.machines), "--seed", str(o.seed), "--opcua-port", "0",
                 "--modbus-port", "0", "--fault", f"m02:outer_race:1.0:onset={onset:.0f}:ramp={ramp:.0f}"])
    collector: subprocess.Popen[Any] | None = None
    summary: dict[str, Any] = {}
    try:
        info = await _wait_line(sim, 60.0)
        modbus_port = int(info["MODBUS"].rsplit(":", 1)[1])
        cport = _free_port()
        endpoint = f"tcp://127.0.0.1:{cport}"
        store = data / "collector" / "store.sqlite"
        store.parent.mkdir()
        collector = subprocess.Popen(
            [sys.executable, "-m", "edgekit", "collect", "--bind", endpoint, "--store", str(store),
             "--keys", str(keys / "collector.key_secret"), "--allow", str(allow), "--log-level", "warning"],
            stdin=subprocess.DEVNULL, text=True,
        )
        toml = _gateway_toml(o, data, info["OPCUA_ENDPOINT"], modbus_port, endpoint, keys)
        (data / "gateway.toml").write_text(toml)
        cfg = loads(toml)
        check_config(cfg)
        gateway = Gateway(cfg)
        gateway.build()
        print(f"edgekit demo: simulator {info['OPCUA_ENDPOINT']} + modbus {info['MODBUS']}, "
              f"collector {endpoint}, data in {data}", flush=True)
        print(f"edgekit demo: m02 develops an outer-race fault from t={onset:.0f}s over {ramp:.0f}s; "
              f"running {o.duration_s:.0f}s", flush=True)
        runner = asyncio.create_task(gateway.run(install_signals=False))
        view = asyncio.create_task(run_view(gateway)) if o.view else None
        loop = asyncio.get_running_loop()
        stop_requested = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop_requested.set)
        t0 = time.monotonic()
        try:
            await asyncio.wait_for(stop_requested.wait(), o.duration_s)
        except TimeoutError:
            pass
        elapsed = time.monotonic() - t0
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if view:
            view.cancel()
        gateway.stop()
        await runner
        print(render(gateway, elapsed), flush=True)
        await asyncio.sleep(0.5)
        _stop(collector)
        collector = None
        summary = _summary(gateway, store, o, elapsed)
    finally:
        _stop(collector)
        _stop(sim)
        if tmp and not o.summary_json:
            shutil.rmtree(tmp, ignore_errors=True)
    if o.summary_json:
        Path(o.summary_json).write_text(json.dumps(summary, indent=2, default=float) + "\n")
    return summary


def _summary(gateway: Gateway, store: Path, o: DemoOptions, elapsed: float) -> dict[str, Any]:
    from ..collector.store import store_summary

    stored = store_summary(store)
    spool_stats = gateway.spool_final_stats
    # what was left unacknowledged when the gateway closed its spool (nothing, after a clean drain);
    # an unknown backlog counts as 0, so anything undelivered shows up as lost rather than pending
    pending = {name: int(h.get("backlog", 0)) for name, h in gateway.final_uplink_health.items()}
    spooled = int(spool_stats.get("appended", 0))
    delivered = int(stored["records"])
    still_pending = max(pending.values()) if pending else 0
    per_machine = {}
    for asset, s in sorted(gateway.latest.items()):
        per_machine[asset] = {
            "final_zone": zone_letter(s.get("zone")),
            "final_velocity_rms_mm_s": s.get("velocity_rms_mm_s"),
            "max_anomaly_score": s.get("max_anomaly_score"),
            "alarms_raised": s.get("alarms_raised", 0),
        }
    return {
        "duration_s": round(elapsed, 1),
        "machines": o.machines,
        "blocks_processed": gateway.counts["blocks"],
        "points_received": gateway.counts["points"],
        "records_spooled": spooled,
        "records_delivered": delivered,
        "records_pending_in_spool": still_pending,
        "records_lost": max(0, spooled - delivered - still_pending),
        "records_dropped_by_quota": int(spool_stats.get("dropped_total", 0)),
        "duplicates_in_store": _duplicate_rows(store),
        "duplicates_rejected_by_collector": int(stored["duplicates"]),
        "missing_seqs_in_store": int(stored["missing"]),
        "per_machine": per_machine,
    }


def _duplicate_rows(store: Path) -> int:
    """Rows present more than once in the store's data tables (must be 0: exactly-once delivery)."""
    import sqlite3

    keys = {"points": "gateway, stream, seq, tag", "features": "gateway, stream, seq, channel",
            "events": "gateway, stream, seq", "waveforms": "gateway, stream, seq", "gaps": "gateway, stream, seq"}
    con = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        total = 0
        for table, key in keys.items():
            total += con.execute(
                f"SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM {table} GROUP BY {key})"
            ).fetchone()[0]
        return int(total)
    finally:
        con.close()
