"""/metrics (Prometheus text) and /health (JSON snapshot) on the configured local port."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path

import numpy as np
from portutil import free_port

from edgekit.config import loads
from edgekit.runtime.gateway import Gateway


def _get(url: str) -> tuple[str, bytes]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.headers["Content-Type"], resp.read()


async def test_metrics_and_health_endpoints(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.save(tmp_path / "rec.npy", rng.standard_normal((2, 40_000)).astype(np.float32) * 0.1)
    port = free_port()
    cfg = loads(f"""
[gateway]
id = "gw-metrics"
data_dir = "{tmp_path / 'data'}"
metrics_port = {port}
[[replay]]
name = "rec"
file = "{tmp_path / 'rec.npy'}"
fs = 12800
block = 4096
speedup = 20
""")
    gw = Gateway(cfg)
    runner = asyncio.create_task(gw.run(install_signals=False))
    try:
        for _ in range(100):
            if gw.counts["frames"] >= 3:
                break
            await asyncio.sleep(0.1)
        ctype, body = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/metrics")
        assert ctype.startswith("text/plain")
        text = body.decode()
        assert 'edgekit_blocks_total{asset="rec"}' in text
        assert "edgekit_records_spooled_total" in text
        ctype, body = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/health")
        health = json.loads(body)
        assert health["gateway"] == "gw-metrics"
        assert health["connectors"]["rec"]["task"]["state"] == "running"
        assert health["pipeline"]["frames"] >= 3
        assert "rows" in health["spool"]
    finally:
        gw.stop()
        await asyncio.wait_for(runner, 30)
