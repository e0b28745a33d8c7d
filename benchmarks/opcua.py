"""OPC UA: data-change notifications per second through the connector vs a bare asyncua handler.

One asyncua server runs in a subprocess (so its CPU is not counted) and rewrites ``N`` Double
variables every 20 ms. In this process, first a bare asyncua ``Client`` with a
``datachange_notification`` handler (the usual asyncua pattern) and then the edgekit connector
(columnar PointBatches into a counting sink) subscribe to the same nodes for the same time. For
each we report notifications delivered per wall second and per client CPU second (the second is
the client's capacity: it does not depend on how fast the server produces). Ratios are edgekit
over bare; the target is >= 0.9.

    .venv/bin/python benchmarks/opcua.py [--quick] [--json]
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _harness as harness

PERIOD_S = 0.02
QUEUE = 10  # monitored-item queue size, the same for both clients (asyncua's default 0 means "server's choice")


async def _serve(port: int, n: int) -> None:
    import logging

    from asyncua import Server, ua

    logging.basicConfig(level=logging.ERROR)
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/bench")
    ns = await server.register_namespace("urn:edgekit:bench")
    folder = await server.nodes.objects.add_folder(ua.NodeId("Bench", ns), "Bench")
    ids = [(await folder.add_variable(ua.NodeId(f"V{i}", ns), f"V{i}", 0.0)).nodeid for i in range(n)]
    await server.start()
    print("READY", flush=True)
    k = 0
    while True:
        k += 1
        for i, nid in enumerate(ids):
            await server.write_attribute_value(nid, ua.DataValue(ua.Variant(float(k * 1000 + i), ua.VariantType.Double)))
        await asyncio.sleep(PERIOD_S)


async def _bare(endpoint: str, n: int, seconds: float) -> tuple[int, float, float]:
    from asyncua import Client

    count = 0

    class Handler:
        def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
            nonlocal count
            count += 1

    async with Client(endpoint) as client:
        sub = await client.create_subscription(50, Handler())
        nodes = [client.get_node(f"ns=2;s=V{i}") for i in range(n)]
        await sub.subscribe_data_change(nodes, queuesize=QUEUE)
        await asyncio.sleep(0.7)  # initial values and warm-up
        c0, t0, p0 = count, time.perf_counter(), time.process_time()
        await asyncio.sleep(seconds)
        c1, t1, p1 = count, time.perf_counter(), time.process_time()
        await sub.delete()
    return c1 - c0, t1 - t0, p1 - p0


async def _edgekit(endpoint: str, n: int, seconds: float) -> tuple[int, float, float]:
    from edgekit.config.parse import parse
    from edgekit.connectors.opcua import OpcUaConnectionConfig, build
    from edgekit.types import Event, PointBatch, WaveformBlock

    class CountingSink:
        count = 0

        async def points(self, batch: PointBatch) -> None:
            self.count += len(batch)

        async def waveform(self, block: WaveformBlock) -> None:
            pass

        def event(self, event: Event) -> None:
            pass

    cfg = parse(OpcUaConnectionConfig, {
        "name": "bench", "endpoint": endpoint, "security_policy": "None", "allow_insecure": True,
        "publishing_interval": "50ms",
        # the same monitored-item parameters as the bare client: sampling interval 0 (the server's
        # fastest) and a queue deep enough to keep every change between two publishes
        "nodes": [{"tag": f"v{i}", "node_id": f"ns=2;s=V{i}", "sampling_interval": 0, "queue_size": QUEUE}
                  for i in range(n)],
    })
    sink = CountingSink()
    connector = build(cfg)
    task = asyncio.create_task(connector.run(sink))
    await asyncio.sleep(0.7)
    c0, t0, p0 = sink.count, time.perf_counter(), time.process_time()
    await asyncio.sleep(seconds)
    c1, t1, p1 = sink.count, time.perf_counter(), time.process_time()
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    return c1 - c0, t1 - t0, p1 - p0


def measure(quick: bool) -> dict[str, Any]:
    import logging

    logging.getLogger("edgekit").setLevel(logging.ERROR)
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    n = 200
    seconds = 2.0 if quick else 10.0
    rounds = 1 if quick else 2
    port = harness.free_port()
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.Popen([sys.executable, __file__, "_serve", str(port), str(n)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        assert proc.stdout is not None
        if not proc.stdout.readline().startswith("READY"):
            raise RuntimeError("benchmark server did not start")
        endpoint = f"opc.tcp://127.0.0.1:{port}/bench"
        totals = {"bare": [0, 0.0, 0.0], "edgekit": [0, 0.0, 0.0]}
        for _ in range(rounds):
            for name, fn in (("bare", _bare), ("edgekit", _edgekit)):
                c, wall, cpu = asyncio.run(fn(endpoint, n, seconds))
                totals[name][0] += c
                totals[name][1] += wall
                totals[name][2] += cpu
    finally:
        proc.kill()
        proc.wait()
    out: dict[str, Any] = {"nodes": n, "offered_per_s": round(n / PERIOD_S), "seconds_per_run": seconds}
    for name, (c, wall, cpu) in totals.items():
        out[f"{name}_notifications_per_s"] = c / wall
        out[f"{name}_notifications_per_cpu_s"] = c / cpu if cpu > 0 else float("nan")
    out["delivered_ratio"] = out["edgekit_notifications_per_s"] / out["bare_notifications_per_s"]
    out["capacity_ratio"] = out["edgekit_notifications_per_cpu_s"] / out["bare_notifications_per_cpu_s"]
    return out


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_serve":
        asyncio.run(_serve(int(sys.argv[2]), int(sys.argv[3])))
    else:
        harness.main("opcua", measure)
