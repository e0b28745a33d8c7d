"""Prometheus metrics and the health snapshot, served on a local port (off by default).

``GET /metrics`` returns the Prometheus text format; ``GET /health`` returns the JSON health
snapshot (per connector: state, last good read, error counts; per uplink: backlog, oldest
unacked age). A tiny asyncio HTTP server — no extra thread, no framework.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["GatewayMetrics", "MetricsServer"]

log = logging.getLogger("edgekit.runtime")


class GatewayMetrics:
    """The gateway's own metrics, in a private registry (several gateways may share a process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.points = Counter("edgekit_points_total", "Scalar values received", ["connector"], registry=r)
        self.blocks = Counter("edgekit_blocks_total", "Waveform blocks processed", ["asset"], registry=r)
        self.records = Counter("edgekit_records_spooled_total", "Records admitted to the spool", ["kind"], registry=r)
        self.events = Counter("edgekit_events_total", "Events emitted", ["kind"], registry=r)
        self.errors = Counter("edgekit_errors_total", "Errors handled without crashing", ["where"], registry=r)
        self.restarts = Counter("edgekit_task_restarts_total", "Supervised task restarts", ["task"], registry=r)
        self.queue = Gauge("edgekit_pipeline_queue_depth", "Items waiting for the pipeline", registry=r)
        self.backlog = Gauge("edgekit_uplink_backlog_records", "Records not yet acknowledged", ["uplink"], registry=r)
        self.oldest = Gauge("edgekit_uplink_oldest_unacked_seconds", "Age of the oldest unacked record",
                            ["uplink"], registry=r)
        self.pipeline_s = Histogram("edgekit_pipeline_seconds", "Pipeline time per batch of items",
                                    buckets=(0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3), registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsServer:
    def __init__(self, metrics: GatewayMetrics, health: Callable[[], dict[str, Any]],
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self._metrics = metrics
        self._health = health
        self.host = host
        self.port = port
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("metrics on http://%s:%d/metrics and /health", self.host, self.port)

    async def stop(self) -> None:
        if self._server:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = request.decode("latin-1").split()
            path = parts[1] if len(parts) > 1 else "/"
            if path.startswith("/metrics"):
                status, ctype, body = "200 OK", "text/plain; version=0.0.4", self._metrics.render()
            elif path.startswith("/health"):
                status, ctype = "200 OK", "application/json"
                body = json.dumps(self._health(), default=str).encode()
            else:
                status, ctype, body = "404 Not Found", "text/plain", b"try /metrics or /health\n"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                f"Connection: close\r\n\r\n".encode() + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
