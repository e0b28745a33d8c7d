"""The OPC UA connector: one server connection, kept alive, delivering points, waveforms and events.

Life cycle of ``run(sink)`` (never returns on its own; cancel it to stop):

1. connect: read the endpoints over an unsecured discovery channel, pick the policy
   (:mod:`.security`), validate the server certificate, open the secure channel and session;
2. resolve node ids (browse paths in one TranslateBrowsePaths call; ``nsu=`` ids through the
   namespace array), then create ONE subscription and its monitored items in batches of
   ``create_batch`` (or start polling reads), and the waveform readers;
3. watch: the session is declared dead when asyncua's session probe fails (every ``keepalive``),
   when the publish stream is silent for ``3 × keepalive + request_timeout`` (publish watchdog;
   the server owes a keep-alive every ``keepalive``), on a Bad StatusChangeNotification, or when
   any reader task fails;
4. tear down (CloseSession deletes the subscription when the server is still there), emit
   ``connector_down``, sleep ``reconnect_min`` doubling up to ``reconnect_max`` with ±25 % jitter,
   and go to 1. After a reconnect, ``connector_up`` and a ``gap_detected`` Event with the outage
   window (``data = {"from": t_last_good, "to": t_up, "seconds": …}``) are emitted. Subscriptions
   of the old session that the server still holds are taken over with TransferSubscriptions and
   deleted, so the server never keeps duplicates; then everything is created fresh.

Data-change notifications are not handled one by one: the whole PublishResponse is decoded
into one columnar PointBatch per device and handed to ``sink.points`` inside the publish loop,
so a slow sink slows publishing (back-pressure) instead of growing memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from dataclasses import dataclass
from typing import Any

from asyncua import Client, ua

from ...errors import ConfigError, ConnectorError, EdgekitError, SecurityError, translate
from ...runtime.interfaces import Sink
from ...types import Event, EventKind, Severity
from .config import NodeConfig, OpcUaConnectionConfig
from .decode import PointColumns, quality_of
from .profile import expand
from .resolve import parse_node_id, resolve_refs
from .session import open_session
from .waveform import WaveformReader

__all__ = ["OpcUaConnector"]

log = logging.getLogger(__name__)

_WAVE_HANDLE_BASE = 1 << 30  # client handles of waveform seq nodes: base + group index
_TRIGGERS = {
    "status": ua.DataChangeTrigger.Status,
    "status_value": ua.DataChangeTrigger.StatusValue,
    "status_value_timestamp": ua.DataChangeTrigger.StatusValueTimestamp,
}
_DEADBANDS = {"none": ua.DeadbandType.None_, "absolute": ua.DeadbandType.Absolute, "percent": ua.DeadbandType.Percent}


@dataclass
class _Tag:
    device: str
    cfg: NodeConfig
    node_id: ua.NodeId | None = None
    status: str = ""  # why the node is not being read ("" = fine)


class SessionLost(ConnectorError):
    """The session died (probe, publish watchdog, status change, reader failure)."""


class OpcUaConnector:
    """See the module docstring. Build with :func:`edgekit.connectors.opcua.build`."""

    def __init__(self, cfg: OpcUaConnectionConfig) -> None:
        self.name = cfg.name
        self.cfg = cfg
        expanded = expand(cfg)
        self._tags = [_Tag(n.device or cfg.name, n) for n in expanded.nodes]
        self._by_key = {(t.device, t.cfg.tag): t for t in self._tags}
        self._waves = [WaveformReader(cfg.name, w) for w in expanded.waveforms]
        self._client: Client | None = None
        self._sub_id: int | None = None
        self._old_sub_ids: list[int] = []
        self._lost: asyncio.Event | None = None
        self._lost_reason = ""
        self._last_publish = 0.0
        self._in_sink = False
        self._state = "init"
        self._last_good: float | None = None
        self._errors = 0
        self._last_error = ""
        self._reconnects = 0
        self._notifications = 0
        self._security = ""
        self._sink: Sink | None = None
        self._pending_bad: list[Any] = []
        self._down_since: float | None = None  # start of the current outage (after data had flowed)
        self._item_plan: list[tuple[Any, str]] = []  # monitored items of the current subscription
        self._last_seq_no = 0  # last NotificationMessage sequence number processed
        self._transfers = 0

    def __repr__(self) -> str:
        return f"<OpcUaConnector {self.name!r} {self.cfg.endpoint} state={self._state} tags={len(self._tags)}>"

    # ------------------------------------------------------------------ public API

    def health(self) -> dict[str, Any]:
        return {
            "state": self._state,
            "last_good_read": self._last_good,
            "errors": self._errors,
            "last_error": self._last_error,
            "subscriptions": 1 if self._sub_id is not None else 0,
            "subscription_id": self._sub_id,
            "monitored_items": sum(1 for t in self._tags if t.node_id is not None and not t.status),
            "bad_nodes": {f"{t.device}/{t.cfg.tag}": t.status for t in self._tags if t.status},
            "reconnects": self._reconnects,
            "subscription_transfers": self._transfers,
            "notifications": self._notifications,
            "security": self._security,
            "waveforms": {
                w.cfg.asset: {"blocks": w.blocks, "last_seq": w.last_seq, "torn_reads": w.torn, "errors": w.errors}
                for w in self._waves
            },
        }

    async def run(self, sink: Sink) -> None:
        """Connect, deliver, recover; runs until cancelled."""
        self._sink = sink
        delay = self.cfg.reconnect_min
        while True:
            client: Client | None = None
            tasks: list[asyncio.Task[None]] = []
            try:
                self._state = "connecting"
                client = await self._connect()
                tasks = await self._start(client, sink)
                now = time.time()
                self._state = "up"
                sink.event(Event(EventKind.CONNECTOR_UP, self.name, f"connected to {self.cfg.endpoint} ({self._security})"))
                down_since = self._down_since
                if down_since is not None:
                    sink.event(Event(
                        EventKind.GAP_DETECTED, self.name,
                        f"no data from {self.cfg.endpoint} for {now - down_since:.1f} s",
                        Severity.WARNING, data={"from": down_since, "to": now, "seconds": now - down_since},
                    ))
                    self._down_since = None
                delay = self.cfg.reconnect_min
                await self._watch(tasks)
            except asyncio.CancelledError:
                await self._stop(client, tasks, graceful=True)
                self._state = "stopped"
                raise
            except Exception as exc:
                err = exc if isinstance(exc, EdgekitError) else translate(exc, self.cfg.endpoint)
                self._errors += 1
                self._last_error = str(err)
                was_up = self._state == "up"
                await self._stop(client, tasks, graceful=not isinstance(exc, SessionLost))
                if was_up:
                    self._down_since = self._last_good or time.time()
                    sink.event(Event(EventKind.CONNECTOR_DOWN, self.name, f"connection lost: {err}", Severity.ALARM))
                    log.warning("%s: connection lost: %s", self.name, err)
                elif isinstance(err, (SecurityError, ConfigError)):
                    log.error("%s: cannot connect: %s", self.name, err)
                elif type(err) is EdgekitError:  # not a known protocol/network error: show the trace
                    log.error("%s: unexpected error, retrying: %s", self.name, err, exc_info=exc)
                else:
                    log.info("%s: connect failed: %s", self.name, err)
                if self._down_since is None and self._last_good is not None:
                    self._down_since = self._last_good  # kept across run() restarts by a supervisor
                self._state = "down"
                self._reconnects += 1
                await asyncio.sleep(delay * random.uniform(0.75, 1.25))
                delay = min(delay * 2, self.cfg.reconnect_max)

    async def write(self, tag: str, value: Any, device: str | None = None) -> None:
        """Write one value; only for tags marked ``writable`` on a ``writable`` connection."""
        t = self._by_key.get((device or self._default_device(tag), tag))
        if t is None:
            raise ConfigError("tag", f"{tag!r} is not a configured tag of {self.name!r}")
        if not (self.cfg.writable and t.cfg.writable):
            raise ConfigError("writable", f"{tag!r}: writes need writable = true on the connection and the node")
        client = self._require_client()
        if t.node_id is None:
            raise ConnectorError(f"{tag!r} is not resolved on the server: {t.status}")
        node = client.get_node(t.node_id)
        try:
            vtype = await node.read_data_type_as_variant_type()
            await node.write_value(ua.DataValue(ua.Variant(value, vtype)))
        except Exception as exc:
            raise translate(exc, f"writing {tag}") from exc

    async def call(self, object_id: str, method_id: str, *args: Any) -> Any:
        """Call a method (node ids as in the config, ``nsu=`` allowed); only on a ``writable`` connection."""
        if not self.cfg.writable:
            raise ConfigError("writable", "method calls need writable = true on the connection")
        client = self._require_client()
        ns_array = await client.get_namespace_array()
        obj, method = parse_node_id(object_id, ns_array), parse_node_id(method_id, ns_array)
        try:
            return await client.get_node(obj).call_method(method, *args)
        except Exception as exc:
            raise translate(exc, f"calling {method_id}") from exc

    # ------------------------------------------------------------------ connection

    def _default_device(self, tag: str) -> str:
        matches = [d for (d, t) in self._by_key if t == tag]
        return matches[0] if len(matches) == 1 else self.name

    def _require_client(self) -> Client:
        if self._client is None:  # set once the session is activated, cleared at teardown
            raise ConnectorError(f"{self.name}: not connected ({self._state})")
        return self._client

    async def _connect(self) -> Client:
        self._lost = asyncio.Event()

        async def on_lost(exc: Exception) -> None:
            self._mark_lost(f"session probe failed: {exc!r}")

        client, self._security = await open_session(self.cfg, on_lost)
        self._client = client
        return client

    def _mark_lost(self, reason: str) -> None:
        if self._lost is not None and not self._lost.is_set():
            self._lost_reason = reason
            self._lost.set()

    async def _stop(self, client: Client | None, tasks: list[asyncio.Task[None]], graceful: bool) -> None:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t
        self._client = None
        if self._sub_id is not None:
            self._old_sub_ids.append(self._sub_id)
            self._sub_id = None
        if client is None:
            return
        protocol = getattr(client.uaclient, "protocol", None)
        if protocol is not None and not protocol.is_closed:
            # a lost session still gets a short try, so a live server drops our subscription
            timeout = self.cfg.request_timeout if graceful else min(1.0, self.cfg.request_timeout)
            try:
                await asyncio.wait_for(client.close_session(), timeout)
                if not protocol.is_closed:
                    self._old_sub_ids.clear()  # CloseSession(deleteSubscriptions=True) went through
            except Exception as exc:
                log.debug("%s: CloseSession failed: %r", self.name, exc)
        with contextlib.suppress(Exception):
            client.uaclient.request_disconnect()
            for task in (client._supervisor_task, client._stale_watchdog_task, client._renew_channel_task):
                if task is not None:
                    task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close_secure_channel(), 0.5)
            client.disconnect_socket()

    # ------------------------------------------------------------------ reading

    async def _start(self, client: Client, sink: Sink) -> list[asyncio.Task[None]]:
        cfg = self.cfg
        ns_array = await client.get_namespace_array()
        refs: list[Any] = [t.cfg for t in self._tags]
        for w in self._waves:
            refs += [w.cfg.seq, w.cfg.fs_node, w.cfg.speed_node, *w.cfg.channels]
        present = [r for r in refs if r is not None]
        resolved = iter(await resolve_refs(client, present, cfg.namespace, ns_array))
        ids = [next(resolved) if r is not None else None for r in refs]
        for t, nid in zip(self._tags, ids, strict=False):
            t.node_id, t.status = (nid, "") if isinstance(nid, ua.NodeId) else (None, quality_of(nid)[1])
        pos = len(self._tags)
        wave_seq: list[ua.NodeId | None] = []
        for w in self._waves:
            n = 3 + len(w.cfg.channels)
            chunk = ids[pos : pos + n]
            pos += n
            bad = [c for c, r in zip(chunk, [w.cfg.seq, w.cfg.fs_node, w.cfg.speed_node, *w.cfg.channels], strict=True)
                   if r is not None and not isinstance(c, ua.NodeId)]
            if bad:
                raise ConnectorError(f"waveform {w.cfg.asset}: node not found ({quality_of(bad[0])[1]})")
            seq, fs, speed, *chans = chunk
            w.bind(seq, fs, speed, chans)  # type: ignore[arg-type]
            wave_seq.append(seq)  # type: ignore[arg-type]
        subscribed = [t for t in self._tags if t.node_id is not None and self._mode(t) == "subscribe"]
        polled = [t for t in self._tags if t.node_id is not None and self._mode(t) == "poll"]
        tasks: list[asyncio.Task[None]] = []
        self._report_unresolved(sink)
        wave_sub = [(i, s) for i, s in enumerate(wave_seq) if s is not None and cfg.mode == "subscribe"]
        plan = [(t.node_id, t.cfg.tag) for t in subscribed] + [(nid, str(i)) for i, nid in wave_sub]
        if subscribed or wave_sub:
            if not await self._take_over(client, sink, subscribed, wave_sub, plan):
                await self._drop_old_subscriptions(client)
                await self._subscribe(client, sink, subscribed, wave_sub)
            # a later session may take this subscription over only if every item was created
            self._item_plan = [] if any(t.status for t in subscribed) else plan
        else:
            await self._drop_old_subscriptions(client)
        if polled:
            tasks.append(asyncio.create_task(self._poll_loop(client, sink, polled), name=f"{self.name}-poll"))
        for i, w in enumerate(self._waves):
            run = w.run_subscribed if (wave_seq[i] is not None and cfg.mode == "subscribe") else w.run_polled
            tasks.append(asyncio.create_task(run(client, sink), name=f"{self.name}-wave-{w.cfg.asset}"))
        self._last_publish = time.monotonic()
        return tasks

    def _mode(self, t: _Tag) -> str:
        return self.cfg.mode if t.cfg.mode == "inherit" else t.cfg.mode

    def _report_unresolved(self, sink: Sink) -> None:
        bad = [t for t in self._tags if t.status]
        if not bad:
            return
        now = time.time()
        by_dev: dict[str, PointColumns] = {}
        for t in bad:
            by_dev.setdefault(t.device, PointColumns(t.device, self.cfg.timestamps)).add_bad([t.cfg.tag], t.status, now)
        for dev, cols in by_dev.items():
            log.warning("%s: %d node(s) of %s not usable, first: %s", self.name, len(cols), dev, bad[0].status)
        self._pending_bad = [c.flush(now) for c in by_dev.values()]

    async def _drop_old_subscriptions(self, client: Client) -> None:
        """Take over subscriptions a previous session left on the server, then delete them."""
        if not self._old_sub_ids:
            return
        ids, self._old_sub_ids = self._old_sub_ids, []
        try:
            params = ua.TransferSubscriptionsParameters(SubscriptionIds=ids, SendInitialValues=False)
            results = await client.uaclient.transfer_subscriptions(params)
            mine = [sid for sid, r in zip(ids, results, strict=False) if r.StatusCode.is_good()]
            if mine:
                await client.uaclient.delete_subscriptions(mine)
                log.info("%s: removed %d subscription(s) left from the previous session", self.name, len(mine))
        except Exception as exc:
            log.debug("%s: transfer of old subscriptions failed: %r", self.name, exc)

    def _publish_handler(
        self, sink: Sink, tags: list[_Tag], wave_seq: list[tuple[int, ua.NodeId]]
    ) -> tuple[Any, dict[int, _Tag]]:
        """The PublishResponse callback (one PointBatch per device) and its client-handle map."""
        cfg = self.cfg
        handle_map: dict[int, _Tag] = {i + 1: t for i, t in enumerate(tags)}
        waves = {_WAVE_HANDLE_BASE + i: self._waves[i] for i, _ in wave_seq}
        acc = {d: PointColumns(d, cfg.timestamps) for d in {t.device for t in tags}}

        async def on_publish(result: ua.PublishResult) -> None:
            self._last_publish = time.monotonic()
            msg = result.NotificationMessage
            data = msg.NotificationData
            if not data:
                return
            if msg.SequenceNumber:
                self._last_seq_no = max(self._last_seq_no, int(msg.SequenceNumber))
            recv = time.time()
            touched: set[str] = set()
            for notif in data:
                if isinstance(notif, ua.DataChangeNotification):
                    for item in notif.MonitoredItems:
                        t = handle_map.get(item.ClientHandle)
                        if t is not None:
                            acc[t.device].add(t.cfg.tag, item.Value, recv)
                            touched.add(t.device)
                        elif (w := waves.get(item.ClientHandle)) is not None:
                            w.notify()
                elif isinstance(notif, ua.StatusChangeNotification):
                    q, reason = quality_of(notif.Status)
                    if q:
                        self._mark_lost(f"subscription status {reason}")
            self._in_sink = True
            try:
                for dev in touched:
                    batch = acc[dev].flush(recv)
                    self._notifications += len(batch)
                    await sink.points(batch)
                if touched:
                    self._last_good = recv
            except Exception as exc:  # the publish loop would only log it: make it a session loss
                self._mark_lost(f"sink failed: {exc!r}")
            finally:
                self._in_sink = False
                self._last_publish = time.monotonic()

        return on_publish, handle_map

    def _subscription_params(self) -> ua.CreateSubscriptionParameters:
        cfg = self.cfg
        params = ua.CreateSubscriptionParameters()
        params.RequestedPublishingInterval = cfg.publishing_interval * 1000
        keepalive_count = max(1, math.ceil(cfg.keepalive / cfg.publishing_interval))
        params.RequestedMaxKeepAliveCount = keepalive_count
        params.RequestedLifetimeCount = keepalive_count * 3
        params.MaxNotificationsPerPublish = 0
        params.PublishingEnabled = True
        params.Priority = 0
        return params

    async def _take_over(
        self, client: Client, sink: Sink, tags: list[_Tag], wave_seq: list[tuple[int, ua.NodeId]],
        plan: list[tuple[Any, str]],
    ) -> bool:
        """Transfer the previous session's subscription to this one when it still exists on the server.

        Only when exactly one old subscription is known and the monitored items would be the same
        (same node ids, same order, none failed before). Notifications the server still holds
        beyond the last one processed are fetched with Republish, so a short cut loses nothing.
        """
        if len(self._old_sub_ids) != 1 or not self._item_plan or plan != self._item_plan:
            return False
        sid = self._old_sub_ids[0]
        try:
            params = ua.TransferSubscriptionsParameters(SubscriptionIds=[sid], SendInitialValues=True)
            results = await client.uaclient.transfer_subscriptions(params)
        except Exception as exc:
            log.debug("%s: TransferSubscriptions failed: %r", self.name, exc)
            return False
        if not results or not results[0].StatusCode.is_good():
            return False
        on_publish, _ = self._publish_handler(sink, tags, wave_seq)
        client.uaclient._subscription_callbacks[sid] = on_publish
        self._old_sub_ids = []
        self._sub_id = sid
        republished = 0
        for seq_no in sorted(results[0].AvailableSequenceNumbers or []):
            if seq_no <= self._last_seq_no:
                continue
            try:
                msg = await client.uaclient.session.republish(sid, seq_no)
            except Exception as exc:
                log.debug("%s: Republish %d failed: %r", self.name, seq_no, exc)
                continue
            await on_publish(ua.PublishResult(SubscriptionId=sid, NotificationMessage=msg))
            republished += 1
        t_mark = time.monotonic()
        client.uaclient.ensure_publish_loop()
        # Some servers accept the transfer but keep publishing to the old channel (asyncua 2.1
        # does): trust the transfer only once a publish response (data or keep-alive) arrives.
        deadline = t_mark + min(self.cfg.keepalive * 1.5, 3.0) + 0.5
        while self._last_publish <= t_mark and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if self._last_publish <= t_mark:
            log.info("%s: transferred subscription %d stays silent; recreating it", self.name, sid)
            client.uaclient._subscription_callbacks.pop(sid, None)
            with contextlib.suppress(Exception):
                await client.uaclient.delete_subscriptions([sid])
            self._sub_id = None
            return False
        for batch in self._pending_bad:
            await sink.points(batch)
        self._pending_bad = []
        self._transfers += 1
        log.info("%s: subscription %d taken over from the previous session (%d republished)",
                 self.name, sid, republished)
        return True

    async def _subscribe(
        self, client: Client, sink: Sink, tags: list[_Tag], wave_seq: list[tuple[int, ua.NodeId]]
    ) -> None:
        cfg = self.cfg
        params = self._subscription_params()
        on_publish, handle_map = self._publish_handler(sink, tags, wave_seq)
        self._last_seq_no = 0
        result = await client.uaclient.create_subscription(params, on_publish)
        self._sub_id = result.SubscriptionId
        items: list[tuple[int, ua.NodeId, NodeConfig | None]] = [(h, t.node_id, t.cfg) for h, t in handle_map.items()]  # type: ignore[misc]
        items += [(_WAVE_HANDLE_BASE + i, nid, None) for i, nid in wave_seq]
        for start in range(0, len(items), cfg.create_batch):
            chunk = items[start : start + cfg.create_batch]
            req = ua.CreateMonitoredItemsParameters()
            req.SubscriptionId = self._sub_id
            req.TimestampsToReturn = ua.TimestampsToReturn.Both
            req.ItemsToCreate = [self._item_request(h, nid, nc) for h, nid, nc in chunk]
            results = await client.uaclient.create_monitored_items(req)
            for (h, _, _), r in zip(chunk, results, strict=True):
                if not r.StatusCode.is_good():
                    reason = quality_of(r.StatusCode)[1]
                    if h in handle_map:
                        handle_map[h].status = reason
                    else:
                        raise ConnectorError(f"waveform seq node refused by the server: {reason}")
        if any(t.status for t in tags):
            self._report_unresolved(sink)
        for batch in self._pending_bad:
            await sink.points(batch)
        self._pending_bad = []

    def _item_request(self, handle: int, nid: ua.NodeId, nc: NodeConfig | None) -> ua.MonitoredItemCreateRequest:
        mp = ua.MonitoringParameters()
        mp.ClientHandle = handle
        interval = nc.sampling_interval if nc is not None and nc.sampling_interval is not None else -1.0
        mp.SamplingInterval = interval * 1000 if interval >= 0 else -1.0
        mp.QueueSize = nc.queue_size if nc is not None else 1
        mp.DiscardOldest = nc.discard_oldest if nc is not None else True
        if nc is not None and (nc.deadband_type != "none" or nc.trigger != "status_value"):
            mp.Filter = ua.DataChangeFilter(
                Trigger=_TRIGGERS[nc.trigger], DeadbandType=_DEADBANDS[nc.deadband_type], DeadbandValue=nc.deadband
            )
        req = ua.MonitoredItemCreateRequest()
        req.ItemToMonitor = ua.ReadValueId(NodeId=nid, AttributeId=ua.AttributeIds.Value)
        req.MonitoringMode = ua.MonitoringMode.Reporting
        req.RequestedParameters = mp
        return req

    async def _poll_loop(self, client: Client, sink: Sink, tags: list[_Tag]) -> None:
        cfg = self.cfg
        groups = [tags[i : i + cfg.poll_group_size] for i in range(0, len(tags), cfg.poll_group_size)]
        for batch in self._pending_bad:
            await sink.points(batch)
        self._pending_bad = []
        next_t = time.monotonic()
        while True:
            acc: dict[str, PointColumns] = {}
            for group in groups:
                params = ua.ReadParameters()
                params.TimestampsToReturn = ua.TimestampsToReturn.Both
                params.NodesToRead = [ua.ReadValueId(NodeId=t.node_id, AttributeId=ua.AttributeIds.Value) for t in group]
                t_req = time.time()
                values = await client.uaclient.read(params)
                recv = (t_req + time.time()) / 2  # request midpoint when the server gives no time
                for t, dv in zip(group, values, strict=True):
                    acc.setdefault(t.device, PointColumns(t.device, cfg.timestamps)).add(t.cfg.tag, dv, recv)
            now = time.time()
            for cols in acc.values():
                batch = cols.flush(now)
                self._notifications += len(batch)
                await sink.points(batch)
            self._last_good = now
            self._last_publish = time.monotonic()
            next_t += cfg.poll_interval
            await asyncio.sleep(max(0.0, next_t - time.monotonic()))
            if time.monotonic() - next_t > cfg.poll_interval:
                next_t = time.monotonic()  # overrun: do not try to catch up

    async def _watch(self, tasks: list[asyncio.Task[None]]) -> None:
        """Return never; raise SessionLost when the session is dead."""
        assert self._lost is not None
        cfg = self.cfg
        silent_limit = 3 * cfg.keepalive + cfg.request_timeout
        subscribed = self._sub_id is not None
        tick = min(cfg.keepalive, 1.0)
        while True:
            done = [t for t in tasks if t.done()]
            for t in done:
                exc = t.exception()
                raise SessionLost(f"reader {t.get_name()} failed: {exc!r}") from exc
            if self._lost.is_set():
                raise SessionLost(self._lost_reason)
            if subscribed and not self._in_sink and time.monotonic() - self._last_publish > silent_limit:
                raise SessionLost(f"no publish response or keep-alive for {silent_limit:.1f} s")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._lost.wait(), tick)
