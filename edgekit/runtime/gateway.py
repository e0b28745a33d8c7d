"""The gateway: one asyncio loop wiring connectors → pipeline → spool → uplinks.

    connectors (supervised tasks) ──► bounded queue ──► processor ──► worker thread:
                                        (back-pressure)                 framing, features, scoring,
                                                                        alarms, spool.append_many
    uplinks (supervised tasks) ◄── spool (the only queue that may grow, on disk)

* Connectors hand data to :class:`GatewaySink`; ``points``/``waveform`` wait when the queue is
  full (``gateway.queue_blocks``), so a slow pipeline or a spool under the ``block`` policy slows
  the readers instead of filling RAM. Events never block and are never dropped.
* All CPU-bound work (features, ONNX, SQLite writes) runs in one worker thread; the loop only
  moves references.
* Shutdown (SIGTERM/SIGINT or :meth:`Gateway.stop`): stop the connectors (no new reads), drain the
  queue through the pipeline into the spool, give the uplinks the rest of
  ``gateway.shutdown_timeout`` to deliver the backlog, close the spool. Everything admitted to
  the spool stays there for the next start; nothing is lost by stopping.

Streams in the spool are ``<kind>/<asset>`` (``points/m01``, ``features/m01``,
``waveform/m01``) and ``event/<gateway id>``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import signal
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..codec import Record, kind_of, pack
from ..config.schema import GatewayConfig
from ..errors import ConfigError, SpoolError, SpoolFull
from ..pipeline.zones import ZONE_LETTERS
from ..types import Event, EventKind, FeatureFrame, PointBatch, Severity, WaveformBlock
from .metrics import GatewayMetrics, MetricsServer
from .supervisor import Supervisor

__all__ = ["Gateway", "GatewaySink"]

log = logging.getLogger("edgekit.runtime")



class _Unscored(NamedTuple):
    """A frame the detector did not score (no detector, or scoring failed): same shape as ``Scored``."""

    frame: FeatureFrame
    events: list[Event]
    error: Exception | None


_Row = tuple[str, str, bytes, float | None]
"""A record as handed to the spool: (stream, kind, packed blob, ts or None for the commit time)."""


class GatewaySink:
    """What connectors hand their data to (see :class:`~edgekit.runtime.interfaces.Sink`)."""

    def __init__(self, gateway: Gateway, connector: str) -> None:
        self._gw = gateway
        self.connector = connector

    async def points(self, batch: PointBatch) -> None:
        self._gw.metrics.points.labels(self.connector).inc(len(batch))
        self._gw.supervisor.touch(self.connector)
        await self._gw.queue.put(batch)
        self._gw.counts["received"] += 1

    async def waveform(self, block: WaveformBlock) -> None:
        self._gw.supervisor.touch(self.connector)
        await self._gw.queue.put(block)
        self._gw.counts["received"] += 1

    def event(self, event: Event) -> None:
        self._gw.emit(event)


class Gateway:
    """Build with a validated :class:`GatewayConfig`, then ``await gateway.run()``."""

    def __init__(self, cfg: GatewayConfig) -> None:
        self.cfg = cfg
        g = cfg.gateway
        self.data_dir = Path(g.data_dir)
        self.metrics = GatewayMetrics()
        self.supervisor = Supervisor(self.emit, backoff_initial_s=g.restart_backoff_initial,
                                     backoff_max_s=g.restart_backoff_max)
        self.queue: asyncio.Queue[PointBatch | WaveformBlock] = asyncio.Queue(maxsize=g.queue_blocks)
        self._events: deque[Event] = deque()
        # spool submissions not yet settled by _spool (oldest first; worker thread only)
        self._spool_pending: deque[tuple[Any, list[_Row]]] = deque()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edgekit-pipeline")
        self._stop = asyncio.Event()
        self._started = time.time()
        self.connectors: dict[str, Any] = {}
        self.uplinks: dict[str, Any] = {}
        self.spool: Any = None
        self.extractor: Any = None
        self.detector: Any = None
        self._zones: dict[tuple[str, str], int] = {}
        self._alarm_assets: set[str] = set()
        self.alarm_counts: dict[str, int] = {}
        self.counts = {"received": 0, "processed": 0, "blocks": 0, "frames": 0, "points": 0, "records": 0, "events": 0, "lost": 0}
        self.latest: dict[str, dict[str, Any]] = {}  # per asset: last features summary (for views)
        self._metrics_server: MetricsServer | None = None
        self._processor: asyncio.Task[None] | None = None
        self.spool_final_stats: dict[str, Any] = {}
        self.listeners: list[Callable[[Event], None]] = []  # called on the loop thread for every event
        self.final_uplink_health: dict[str, dict[str, Any]] = {}

    def __repr__(self) -> str:
        return (f"<Gateway {self.cfg.gateway.id} connectors={list(self.connectors)} "
                f"uplinks={list(self.uplinks)} queue={self.queue.qsize()}>")

    # ---- building -------------------------------------------------------------------------

    def build(self) -> None:
        """Create spool, pipeline, detector, connectors and uplinks (raises ConfigError early)."""
        cfg = self.cfg
        self.data_dir.mkdir(parents=True, exist_ok=True)
        from ..spool import Spool

        routes = {u.name: tuple(u.kinds()) for u in cfg.uplinks}
        spool_path = Path(cfg.spool.path) if cfg.spool.path else self.data_dir / "spool.sqlite"
        self.spool = Spool(spool_path, cfg.spool, routes)
        if cfg.pipeline.enabled:
            from .. import pipeline

            self.extractor = pipeline.FeatureStream(cfg.pipeline)
            for message in self.extractor.extractor.messages:
                log.warning("pipeline: %s", message)
            if cfg.models:
                from ..models import build_detector

                baseline_dir = Path(cfg.baseline.dir) if cfg.baseline.dir else self.data_dir / "baselines"
                self.detector = build_detector(cfg.models, self.extractor.names, baseline_dir,
                                               baseline=cfg.baseline)
        for mcfg in cfg.modbus:
            from ..connectors import modbus

            self.connectors[mcfg.name] = modbus.build(mcfg)
        for ocfg in cfg.opcua:
            from ..connectors import opcua

            self.connectors[ocfg.name] = opcua.build(ocfg)
        for rcfg in cfg.replay:
            from ..connectors.replay import ReplayConnector

            self.connectors[rcfg.name] = ReplayConnector(rcfg)
        for ucfg in cfg.uplinks:
            from ..uplink import UplinkClient

            self.uplinks[ucfg.name] = UplinkClient(ucfg, self.spool, cfg.gateway.id)
        if not self.connectors:
            log.warning("no connectors configured: the gateway will only deliver its spool backlog")
        if not self.uplinks:
            log.warning("no [[uplinks]] configured: data is computed but not kept "
                        "(the spool stores only the record kinds some uplink routes)")

    # ---- events -----------------------------------------------------------------------------

    def emit(self, event: Event) -> None:
        """Record an event; it reaches the spool with the next processed batch (never dropped)."""
        self._events.append(event)
        self._observe(event)

    def _observe(self, event: Event) -> None:
        """Count, log and pass on an event (loop thread). Pipeline events are spooled by the worker."""
        for listener in self.listeners:
            listener(event)
        self.metrics.events.labels(event.kind.value).inc()
        if event.kind is EventKind.TASK_RESTARTED:
            self.metrics.restarts.labels(event.source).inc()
        level = logging.WARNING if event.severity >= Severity.WARNING else logging.INFO
        log.log(level, "event %s from %s: %s", event.kind.value, event.source, event.message)

    # ---- running ----------------------------------------------------------------------------

    async def run(self, *, install_signals: bool = True) -> None:
        """Run until :meth:`stop` or SIGTERM/SIGINT, then shut down gracefully."""
        if self.spool is None:
            self.build()
        loop = asyncio.get_running_loop()
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
        g = self.cfg.gateway
        if g.metrics_port:
            self._metrics_server = MetricsServer(self.metrics, self.health, g.metrics_host, g.metrics_port)
            await self._metrics_server.start()
        self._processor = asyncio.create_task(self._process_loop(), name="pipeline")
        for name, uplink in self.uplinks.items():
            self.supervisor.add(f"uplink:{name}", uplink.run)
        for name, conn in self.connectors.items():
            sink = GatewaySink(self, name)
            self.supervisor.add(name, _bind_run(conn, sink), watchdog_s=g.watchdog)
        log.info("gateway %s running: %d connectors, %d uplinks", g.id, len(self.connectors), len(self.uplinks))
        try:
            await self._stop.wait()
        finally:
            await self._shutdown()
            if install_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)

    def stop(self) -> None:
        self._stop.set()

    async def _shutdown(self) -> None:
        g = self.cfg.gateway
        deadline = time.monotonic() + g.shutdown_timeout
        log.info("shutting down: stopping connectors")
        await self.supervisor.stop(list(self.connectors), timeout_s=max(0.5, g.shutdown_timeout / 4))
        self.emit(Event(EventKind.SHUTDOWN, g.id, "gateway stopping"))
        await self.queue.put(_DRAIN)  # type: ignore[arg-type]
        if self._processor is not None:
            try:
                await asyncio.wait_for(self._processor, max(0.5, deadline - time.monotonic()))
            except TimeoutError:
                log.error("pipeline did not drain within %.1fs; %d items not spooled",
                          g.shutdown_timeout, self.queue.qsize())
        # give uplinks what is left of the budget to deliver the backlog
        while self.uplinks and time.monotonic() < deadline - 0.5:
            if all(self.spool.backlog(name)[0] == 0 for name in self.uplinks):
                break
            await asyncio.sleep(0.1)
        await self.supervisor.stop(timeout_s=max(0.5, deadline - time.monotonic()))
        if self._metrics_server:
            await self._metrics_server.stop()
        self._executor.shutdown(wait=True)
        self.spool_final_stats = self.spool.stats()
        self.final_uplink_health = {n: _safe_health(u) for n, u in self.uplinks.items()}
        self.spool.close()
        c = self.counts
        log.info("gateway stopped cleanly: %d items received, %d processed, %d records spooled, backlog %s",
                 c["received"], c["processed"], c["records"],
                 {n: h.get("backlog") for n, h in self.final_uplink_health.items()})

    async def _process_loop(self) -> None:
        loop = asyncio.get_running_loop()
        draining = False
        while not draining:
            items: list[Any] = []
            try:
                items.append(await asyncio.wait_for(self.queue.get(), 0.5))
            except TimeoutError:
                pass
            while not self.queue.empty() and len(items) < 64:
                items.append(self.queue.get_nowait())
            if any(i is _DRAIN for i in items):
                draining = True
                items = [i for i in items if i is not _DRAIN]
            events = list(self._events)
            self._events.clear()
            if not items and not events:
                continue
            self.metrics.queue.set(self.queue.qsize())
            t0 = time.perf_counter()
            try:
                new_events = await loop.run_in_executor(self._executor, self._process, items, events)
            except Exception as exc:  # _process isolates items; this is the last guard: count, ERROR, go on
                self.metrics.errors.labels("pipeline").inc()
                self.counts["lost"] += len(items)
                log.error("pipeline batch failed, %d items lost: %r", len(items), exc, exc_info=True)
                continue
            self.metrics.pipeline_s.observe(time.perf_counter() - t0)
            for event in new_events:
                self._observe(event)
            for uplink in self.uplinks.values():
                uplink.notify()
            self._update_backlog_gauges()
        # final flush of events raised while draining
        if self._events:
            events = list(self._events)
            self._events.clear()
            await loop.run_in_executor(self._executor, self._process, [], events)

    # ---- worker thread ------------------------------------------------------------------------

    def _process(self, items: list[PointBatch | WaveformBlock], events: list[Event]) -> list[Event]:
        """Runs in the worker thread: features, scoring, alarms, spool writes. Returns new events.

        Features of every block of the batch first, then ONE ``Detector.score_many`` over all their
        frames (one ``session.run`` per model for the whole batch), then records and events in item
        order: exactly what scoring frame by frame gives (docs/models.md, "Scoring").
        """
        records: list[Record] = list(events)
        new_events: list[Event] = []
        features: list[tuple[list[FeatureFrame], list[Event]] | None] = []
        for item in items:
            if isinstance(item, PointBatch) or self.extractor is None:
                features.append(None)
                continue
            try:
                features.append(self.extractor.push(item))
            except Exception as exc:  # one bad block must not cost the batch: count it, ERROR, go on
                self._item_failed("features", item.asset, exc)
                features.append(None)
        frames = [f for got in features if got is not None for f in got[0]]
        scored = iter(self._score_frames(frames))
        for item, got in zip(items, features, strict=True):
            self.counts["processed"] += 1
            if isinstance(item, PointBatch):
                self.counts["points"] += len(item)
                records.append(item)
                continue
            self.counts["blocks"] += 1
            self.metrics.blocks.labels(item.asset).inc()
            if self.cfg.gateway.waveforms == "all" or (
                self.cfg.gateway.waveforms == "alarms" and item.asset in self._alarm_assets
            ):
                records.append(item)
            if got is None:
                continue
            new_events.extend(got[1])
            for frame in got[0]:
                result = next(scored)
                if result.error is not None:  # keep the unscored frame rather than lose it
                    self._item_failed("scoring", frame.asset, result.error)
                    records.append(frame)
                else:
                    records.append(self._score(result.frame, result.events, new_events))
        records.extend(new_events)
        self.counts["events"] += len(events) + len(new_events)
        self._spool(records)
        return new_events

    def _score_frames(self, frames: list[FeatureFrame]) -> list[Any]:
        """``Detector.score_many`` results of ``frames`` (unscored results without a detector)."""
        if self.detector is None or not frames:
            return [_Unscored(f, [], None) for f in frames]  # unscored frames still get zone events
        try:
            return list(self.detector.score_many(frames))
        except Exception as exc:  # score_many isolates frames; this is the last guard: frames spooled unscored
            return [_Unscored(f, [], exc) for f in frames]

    def _item_failed(self, stage: str, asset: str, exc: Exception) -> None:
        self.metrics.errors.labels(stage).inc()
        if stage == "features":
            self.counts["lost"] += 1
        log.error("%s failed for %s (%s): %r", stage, asset,
                  "block lost" if stage == "features" else "frame spooled without scores", exc, exc_info=True)

    def _score(self, frame: FeatureFrame, alarm_events: list[Event], new_events: list[Event]) -> FeatureFrame:
        """Book one scored frame's alarms and zone changes (worker thread, in item order)."""
        asset = frame.asset
        for ev in alarm_events:
            if ev.kind is EventKind.ALARM_RAISED:
                self._alarm_assets.add(asset)
                self.alarm_counts[asset] = self.alarm_counts.get(asset, 0) + 1
            elif ev.kind is EventKind.ALARM_CLEARED:
                self._alarm_assets.discard(asset)
        new_events.extend(alarm_events)
        new_events.extend(self._zone_events(frame))
        self._remember(frame)
        self.counts["frames"] += 1
        return frame

    def _spool(self, records: list[Record]) -> None:
        """Pack ``records`` and hand them to the spool (worker thread).

        Pipelined (``Spool.submit``, docs/spool.md): while items wait in the queue this thread goes
        on with the next batch as this one commits, and batches submitted during a commit share the
        next transaction (one fsync). With the queue empty it waits until everything submitted is
        committed, so at light load (and at shutdown) a batch is in the spool when this returns,
        as with ``append_many``. A submission that failed is retried here synchronously."""
        inflight = self._spool_pending
        if records:
            gw = self.cfg.gateway.id
            rows: list[_Row] = []
            for r in records:
                kind = kind_of(r)
                asset = gw if kind in ("event", "gap") else getattr(r, "asset", None) or getattr(r, "device", gw)
                rows.append((f"{kind}/{asset}", kind, pack(r), None))  # ts None: the commit time
            try:
                inflight.append((self.spool.submit(rows, self._spool_committed), rows))
            except SpoolError as exc:  # closed: nothing was queued
                log.warning("spool refused a batch (%s); retrying", exc)
                self._append_rows(rows)
            else:
                for _, kind, _, _ in rows:
                    self.metrics.records.labels(kind).inc()
                self.counts["records"] += len(rows)
        wait = self.queue.empty()  # nothing more to do right now: be committed before returning
        while inflight and (wait or inflight[0][0].done()):
            admission, rows = inflight.popleft()
            try:
                admission.result()
            except SpoolError as exc:
                self.metrics.errors.labels(type(exc).__name__).inc()
                self.counts["records"] -= len(rows)
                log.warning("spool refused a batch (%s); retrying", exc)
                self._append_rows(rows)

    def _spool_committed(self, _admission: Any) -> None:
        """Committer thread: a submission is in the spool (or failed): wake the uplinks."""
        for uplink in self.uplinks.values():
            uplink.notify()

    def _append_rows(self, rows: list[_Row]) -> None:
        """Admit ``rows`` synchronously, waiting under back-pressure and retrying failures."""
        now = time.time()
        items = [(stream, kind, blob, now if ts is None else ts) for stream, kind, blob, ts in rows]
        failures = 0
        while True:
            try:
                self.spool.append_many(items)
                break
            except SpoolFull:
                # back-pressure: the worker waits, the queue fills, the connectors slow down
                self.metrics.errors.labels("spool_full").inc()
                self.spool.wait_for_space(1.0)
            except SpoolError as exc:
                # disk full or a corrupt file (already quarantined, new epoch): retry a few times,
                # then give up on this batch loudly — never crash the gateway
                failures += 1
                self.metrics.errors.labels(type(exc).__name__).inc()
                if failures > 3:
                    log.error("spool refused %d records %d times, they are lost: %s", len(rows), failures, exc)
                    self.counts["lost"] += len(rows)
                    return
                log.warning("spool refused a batch (%s); retrying", exc)
                time.sleep(0.5 * failures)
        for _, kind, _, _ in rows:
            self.metrics.records.labels(kind).inc()
        self.counts["records"] += len(rows)

    def _zone_events(self, frame: FeatureFrame) -> list[Event]:
        if "zone" not in frame.names:
            return []
        out = []
        zones = frame.column("zone")
        for ch, z in zip(frame.channels, zones):
            if not np.isfinite(z):
                continue
            key = (frame.asset, ch)
            zi = int(z)
            old = self._zones.get(key)
            self._zones[key] = zi
            if old is not None and old != zi:
                sev = Severity.ALARM if zi >= 2 else Severity.INFO
                out.append(Event(EventKind.ZONE_CHANGED, f"{frame.asset}/{ch}",
                                 f"zone {ZONE_LETTERS[old]} -> {ZONE_LETTERS[zi]}", sev,
                                 data={"from": ZONE_LETTERS[old], "to": ZONE_LETTERS[zi]}))
        return out

    def _remember(self, frame: FeatureFrame) -> None:
        summary: dict[str, Any] = {"t0": frame.t0, "seq": frame.seq}
        for name in ("velocity_rms_mm_s", "zone", "anomaly_score", "rms", "env_peak_hz"):
            if name in frame.names:
                col = frame.column(name)
                summary[name] = float(np.nanmax(col)) if np.isfinite(col).any() else float("nan")
        summary["alarm"] = frame.asset in self._alarm_assets
        prev = self.latest.get(frame.asset, {})
        scores = [x for x in (prev.get("max_anomaly_score"), summary.get("anomaly_score"))
                  if x is not None and np.isfinite(x)]
        summary["max_anomaly_score"] = max(scores) if scores else float("nan")
        summary["alarms_raised"] = self.alarm_counts.get(frame.asset, 0)
        self.latest[frame.asset] = summary

    # ---- health -------------------------------------------------------------------------------

    def _update_backlog_gauges(self) -> None:
        now = time.time()
        for name in self.uplinks:
            rows, _, oldest = self.spool.backlog(name)
            self.metrics.backlog.labels(name).set(rows)
            self.metrics.oldest.labels(name).set(0 if oldest is None else max(0.0, now - oldest))

    def health(self) -> dict[str, Any]:
        tasks = self.supervisor.snapshot()
        return {
            "gateway": self.cfg.gateway.id,
            "uptime_s": round(time.time() - self._started, 1),
            "connectors": {n: {**_safe_health(c), "task": tasks.get(n, {})} for n, c in self.connectors.items()},
            "uplinks": {n: {**_safe_health(u), "task": tasks.get(f"uplink:{n}", {})} for n, u in self.uplinks.items()},
            "pipeline": {**self.counts, "queue_depth": self.queue.qsize()},
            "spool": self.spool.stats() if self.spool is not None else {},
        }


class _Drain:
    def __repr__(self) -> str:
        return "<drain>"


_DRAIN = _Drain()


def _bind_run(conn: Any, sink: GatewaySink) -> Any:
    async def run() -> None:
        await conn.run(sink)

    return run


def zone_letter(zone: Any) -> str | None:
    """``"A"``…``"D"`` for a finite zone feature value, else ``None``."""
    if isinstance(zone, float) and math.isfinite(zone):
        return ZONE_LETTERS[int(zone)]
    return None


def _safe_health(part: Any) -> dict[str, Any]:
    try:
        return dict(part.health())
    except Exception as exc:  # health must never take the gateway down; the error is shown instead
        return {"state": "unknown", "health_error": repr(exc)}


def check_config(cfg: GatewayConfig) -> None:
    """Rules that span more than one section (each section validates itself when parsed)."""
    if cfg.models and not cfg.pipeline.enabled:
        raise ConfigError("pipeline.enabled", "false, but [[models]] are configured: models score "
                          "pipeline features, so enable the pipeline or remove the models")
    if cfg.gateway.waveforms != "none" and cfg.uplinks and not any("waveform" in u.routes for u in cfg.uplinks):
        log.info("gateway.waveforms = %r but no uplink routes 'waveform'; snapshots stay local",
                 cfg.gateway.waveforms)
