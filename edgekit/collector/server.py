"""The collector: a ROUTER that authenticates gateways, stores their records durably, then ACKs.

Loop (one thread; ``Collector.serve(stop)``): wait for messages; drain what is queued (up to
``batch_messages`` messages or ``batch_bytes``; a batch with DATA but fewer than ``group_messages``
messages and below ``GROUP_LINGER_MAX_BYTES`` (256 KiB) waits up to ``group_linger_s`` (2 ms) for
more — group commit; a batch already that large gains little from waiting, its fsync is shared by
enough records); decode and validate each;
write all DATA of the batch into the store in one transaction; COMMIT (one fsync under ``synchronous=FULL``); only then
send the NACKs and cumulative ACKs (protocol: :mod:`edgekit.uplink.frames`).

Security: with a server secret key every bind uses CURVE and a ZAP handler admits only the keys in
the allow-list folder (:mod:`edgekit.collector.auth`); the gateway id is the allow-listed key's name
(ZMQ ``User-Id``) — a HELLO or DATA header naming another id is rejected (``bad_gateway_id``) and
counted. Without a key only ``ipc://``/``inproc://`` binds are allowed, unless ``insecure`` (then
the header's id is trusted, with a WARNING at every start). Messages above ``max_message_bytes`` are
refused by the decoder; messages far above it (> limit + 1 MiB) make libzmq drop the connection
(``ZMQ_MAXMSGSIZE``). Every rejection is counted by reason in :attr:`Collector.rejects` and in the
Prometheus registry :attr:`Collector.registry`.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ..errors import DecodeError, UplinkError
from ..uplink import frames as F
from ..uplink.security import check_libzmq, is_secure_transport
from .auth import AllowList, ZapAuthenticator
from .store import LAYOUTS, Store

__all__ = ["Collector", "CollectorThread", "run_in_thread"]

GROUP_LINGER_MAX_BYTES = 256 << 10
"""A batch holding this many bytes commits without lingering for more messages."""

log = logging.getLogger("edgekit.collector")


@dataclass
class _Session:
    gateway: str
    epoch: str
    last_seen: float
    acks: dict[tuple[str, str], int] = field(default_factory=dict)  # (epoch, stream) -> seq
    nacks: list[tuple[str, str, int, str, int]] = field(default_factory=list)  # (epoch, stream, seq, why, count)
    stored: int = 0  # in the open (uncommitted) batch
    duplicates: int = 0
    first_rx: float | None = None


class _Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.records = Counter("edgekit_collector_records", "Records stored", ["gateway"], registry=r)
        self.duplicates = Counter("edgekit_collector_duplicates", "Duplicate records rejected", registry=r)
        self.rejects = Counter("edgekit_collector_rejects", "Messages/records/handshakes rejected",
                               ["reason"], registry=r)
        self.bytes = Counter("edgekit_collector_received_bytes", "Bytes of DATA received", registry=r)
        self.ack_latency = Histogram("edgekit_collector_ack_latency_seconds", "Receive to ACK sent",
                                     registry=r, buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5))
        self.commit = Histogram("edgekit_collector_commit_seconds", "Store commit (fsync) time", registry=r,
                                buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25))
        self.sessions = Gauge("edgekit_collector_sessions", "Open gateway sessions", registry=r)


class Collector:
    """Receives from gateways; see module docstring. ``serve(stop)`` blocks until ``stop`` is set."""

    def __init__(
        self,
        bind: Sequence[str],
        store_path: str | Path,
        *,
        allow_dir: str | Path | None = None,
        secret_key: bytes | None = None,
        insecure: bool = False,
        credit: int = 256,
        max_message_bytes: int = 16 << 20,
        synchronous: str = "FULL",
        features_layout: str = "wide",
        reload_interval_s: float = 5.0,
        heartbeat_s: float = 2.0,
        batch_messages: int = 512,
        batch_bytes: int = 32 << 20,
        group_messages: int = 8,
        group_linger_s: float = 0.002,
    ) -> None:
        if not bind:
            raise UplinkError("collector needs at least one bind endpoint")
        check_libzmq()
        self.bind = list(bind)
        self.store_path = Path(store_path)
        self.insecure = insecure
        self.credit = credit
        self.max_message_bytes = max_message_bytes
        self.synchronous = synchronous
        if features_layout not in LAYOUTS:
            raise UplinkError(f"features_layout {features_layout!r} is not one of {', '.join(LAYOUTS)}")
        self.features_layout = features_layout
        self.reload_interval_s = reload_interval_s
        self.heartbeat_s = heartbeat_s
        self.batch_messages = batch_messages
        self.batch_bytes = batch_bytes
        self.group_messages = group_messages
        self.group_linger_s = group_linger_s
        self.secret_key = secret_key
        self.secure = secret_key is not None
        if self.secure and allow_dir is None:
            raise UplinkError("a collector with a secret key needs an allow-list folder (--allow DIR)")
        if not self.secure:
            plain_tcp = [b for b in self.bind if not is_secure_transport(b)]
            if plain_tcp and not insecure:
                raise UplinkError(f"refusing plain NULL on {', '.join(plain_tcp)}: give a server secret key "
                                  "(--keys) or set insecure")
        self.allow = AllowList(allow_dir) if self.secure and allow_dir is not None else None
        self._metrics = _Metrics()
        self.registry = self._metrics.registry
        self.rejects: dict[str, int] = {}
        self.stored = 0
        self.duplicates = 0
        self._sessions: dict[bytes, _Session] = {}
        self._reload_requested = threading.Event()
        self.ready = threading.Event()
        self.endpoints: list[str] = []  # actual bound endpoints (resolved wildcard ports)

    def __repr__(self) -> str:
        return f"<Collector {self.bind} store={self.store_path} sessions={len(self._sessions)} stored={self.stored}>"

    # ------------------------------------------------------------ public

    def request_reload(self) -> None:
        """Re-read the allow-list at the next loop turn (SIGHUP handler; any thread)."""
        self._reload_requested.set()

    def counters(self) -> dict[str, Any]:
        return {"stored": self.stored, "duplicates": self.duplicates, "rejects": dict(self.rejects),
                "sessions": len(self._sessions), "denied_handshakes": self.allow.denied if self.allow else 0}

    def _reject(self, reason: str, n: int = 1) -> None:
        self.rejects[reason] = self.rejects.get(reason, 0) + n
        self._metrics.rejects.labels(reason).inc(n)

    def serve(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set: bind, receive, store, acknowledge. Closes everything on exit."""
        ctx: zmq.Context[Any] = zmq.Context()
        auth: ZapAuthenticator | None = None
        store = Store(self.store_path, synchronous=self.synchronous, features_layout=self.features_layout)
        sock = ctx.socket(zmq.ROUTER)
        monitor = None
        try:
            if self.insecure:
                log.warning("collector: insecure — accepting unauthenticated, unencrypted gateways on %s "
                            "and trusting the gateway id they claim", ", ".join(self.bind))
            if self.allow is not None:
                auth = ZapAuthenticator(ctx, self.allow)
                auth.start()
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.MAXMSGSIZE, self.max_message_bytes + (1 << 20))
            sock.setsockopt(zmq.RCVHWM, 10000)
            if self.heartbeat_s:
                sock.setsockopt(zmq.HEARTBEAT_IVL, int(self.heartbeat_s * 1000))
                sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, int(self.heartbeat_s * 3000))
            if self.secure:
                sock.curve_server = True
                sock.curve_secretkey = self.secret_key
                sock.curve_publickey = zmq.curve_public(self.secret_key)  # type: ignore[arg-type]
            monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
                                              | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                                              | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
            for ep in self.bind:
                sock.bind(ep)
                self.endpoints.append(sock.getsockopt_string(zmq.LAST_ENDPOINT))
            log.info("collector listening on %s, store %s", ", ".join(self.endpoints), self.store_path)
            self.ready.set()
            self._loop(sock, monitor, store, stop)
        finally:
            self.ready.set()
            store.close()
            if monitor is not None:
                sock.disable_monitor()
                monitor.close(linger=0)
            sock.close(linger=0)
            if auth is not None:
                auth.stop()
            ctx.term()

    # ------------------------------------------------------------ loop

    def _loop(self, sock: zmq.Socket[Any], monitor: zmq.Socket[Any], store: Store, stop: threading.Event) -> None:
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(monitor, zmq.POLLIN)
        limits = F.Limits(max_message_bytes=self.max_message_bytes)
        next_reload = time.monotonic() + self.reload_interval_s
        while not stop.is_set():
            ready = dict(poller.poll(100))
            if monitor in ready:
                self._drain_monitor(monitor)
            if sock in ready:
                self._batch(sock, store, limits)
            now = time.monotonic()
            if self.allow is not None and (self._reload_requested.is_set() or now >= next_reload):
                self._reload_requested.clear()
                next_reload = now + self.reload_interval_s
                _added, removed = self.allow.reload()
                if removed:
                    for ident, s in list(self._sessions.items()):
                        if s.gateway in removed:
                            del self._sessions[ident]
                            self._send(sock, ident, F.Error("revoked", "gateway key was removed"))
            self._expire(now)

    def _drain_monitor(self, monitor: zmq.Socket[Any]) -> None:
        from zmq.utils.monitor import recv_monitor_message

        while True:
            try:
                evt = recv_monitor_message(monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            names = {int(zmq.EVENT_HANDSHAKE_FAILED_AUTH): "handshake_auth",
                     int(zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL): "handshake_protocol"}
            name = names.get(int(evt["event"]), "handshake_failed")
            self._reject(name)

    def _expire(self, now: float) -> None:
        if not self._sessions:
            return
        idle = max(60.0, 10 * self.heartbeat_s)
        for ident, s in list(self._sessions.items()):
            if now - s.last_seen > idle:
                del self._sessions[ident]
        self._metrics.sessions.set(len(self._sessions))

    def _send(self, sock: zmq.Socket[Any], ident: bytes, msg: F.Message) -> None:
        try:
            sock.send_multipart([ident, *F.encode(msg)], zmq.NOBLOCK)
        except zmq.Again:
            self._reject("reply_dropped")

    def _batch(self, sock: zmq.Socket[Any], store: Store, limits: F.Limits) -> None:
        touched: dict[bytes, _Session] = {}
        nbytes = messages = 0
        deadline: float | None = None
        while messages < self.batch_messages and nbytes < self.batch_bytes:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                # group commit: a batch of fewer than group_messages DATA waits up to group_linger_s
                # for more (one fsync and one ACK for several messages instead of one each)
                if (not touched or messages >= self.group_messages or nbytes >= GROUP_LINGER_MAX_BYTES
                        or self.group_linger_s <= 0):
                    break
                now = time.monotonic()
                deadline = now + self.group_linger_s if deadline is None else deadline
                if now >= deadline or not sock.poll(max(1, int(1000 * (deadline - now))), zmq.POLLIN):
                    break
                continue
            messages += 1
            nbytes += sum(len(f) for f in frames)
            try:
                self._one(sock, store, frames, limits, touched)
            except sqlite3.Error as exc:
                self._store_failed(store, exc)
                return
        if not touched:
            return
        t0 = time.perf_counter()
        try:
            store.commit()
        except sqlite3.Error as exc:
            self._store_failed(store, exc)
            return
        self._metrics.commit.observe(time.perf_counter() - t0)
        now = time.monotonic()
        for ident, s in touched.items():
            self.stored += s.stored
            self.duplicates += s.duplicates
            if s.stored:
                self._metrics.records.labels(s.gateway).inc(s.stored)
            if s.duplicates:
                self._metrics.duplicates.inc(s.duplicates)
            if s.nacks:
                self._reject("nack", len(s.nacks))
            s.stored = s.duplicates = 0
            for epoch, stream, seq, why, count in s.nacks:
                self._send(sock, ident, F.Nack(epoch, stream, seq, why, count))
            by_epoch: dict[str, dict[str, int]] = {}
            for (epoch, stream), seq in s.acks.items():
                by_epoch.setdefault(epoch, {})[stream] = seq
            for epoch, acks in by_epoch.items():
                self._send(sock, ident, F.Ack(epoch, acks))
            if s.first_rx is not None:
                self._metrics.ack_latency.observe(now - s.first_rx)
            s.acks.clear()
            s.nacks.clear()
            s.first_rx = None

    def _store_failed(self, store: Store, exc: sqlite3.Error) -> None:
        """The store could not take this batch (disk full, I/O error): nothing of it is acknowledged.

        Every session is dropped, because a later cumulative ACK in the same session would cover
        the lost records; the gateways get ``no_session``, say HELLO again and resend.
        """
        try:
            store.rollback()
        except sqlite3.Error:
            pass  # the transaction is gone either way
        self._reject("store_error")
        log.error("store write failed, batch not acknowledged (gateways will resend): %s", exc)
        self._sessions.clear()
        self._metrics.sessions.set(0)
        time.sleep(0.5)  # do not spin on a full disk

    def _one(self, sock: zmq.Socket[Any], store: Store, frames: list[zmq.Frame], limits: F.Limits,
             touched: dict[bytes, _Session]) -> None:
        ident = frames[0].bytes
        body = frames[1:]
        try:
            msg = F.decode(body, limits)
        except DecodeError as exc:
            total = sum(len(f) for f in body)
            reason = "oversized" if total > limits.max_message_bytes else "malformed"
            self._reject(reason)
            log.warning("rejected %s message (%d bytes): %s", reason, total, exc)
            self._send(sock, ident, F.Error("malformed", str(exc)[:200]))
            return
        user = self._authenticated_id(body[0]) if self.secure else None
        if self.secure and not user:
            self._reject("revoked")
            self._send(sock, ident, F.Error("revoked", "gateway key is not (or no longer) allowed"))
            return
        now = time.monotonic()
        if isinstance(msg, F.Hello):
            if user is not None and msg.gateway != user:
                self._bad_id(sock, ident, msg.gateway, user)
                return
            self._sessions[ident] = _Session(msg.gateway, msg.epoch, now)
            self._metrics.sessions.set(len(self._sessions))
            self._send(sock, ident, F.Welcome(self.credit, self.max_message_bytes))
            return
        session = self._sessions.get(ident)
        if isinstance(msg, F.Data):
            if session is None:
                self._reject("no_session")
                self._send(sock, ident, F.Error("no_session", "send HELLO first"))
                return
            if msg.gateway != session.gateway:
                self._bad_id(sock, ident, msg.gateway, session.gateway)
                return
            session.last_seen = now
            if session.first_rx is None:
                session.first_rx = now
            self._metrics.bytes.inc(sum(len(f) for f in body))
            res = store.write(session.gateway, msg.epoch, msg.records)
            session.stored += res.stored  # counted once the batch is committed
            session.duplicates += res.duplicates
            for stream, seq in res.acks.items():
                key = (msg.epoch, stream)
                session.acks[key] = max(session.acks.get(key, -1), seq)
            session.nacks.extend((msg.epoch, s, q, why, n) for s, q, why, n in res.nacks)
            touched[ident] = session
        elif isinstance(msg, F.Ping):
            if session is not None:
                session.last_seen = now
            self._send(sock, ident, F.Pong(msg.ts))
        elif isinstance(msg, F.Pong):
            if session is not None:
                session.last_seen = now
        else:
            self._reject("unexpected_type")
            self._send(sock, ident, F.Error("malformed", f"{type(msg).__name__} is not sent by gateways"))

    def _authenticated_id(self, frame: zmq.Frame) -> str | None:
        try:
            user = frame.get("User-Id")
        except (zmq.ZMQError, KeyError):
            return None
        if not isinstance(user, str) or not user or self.allow is None or not self.allow.has_id(user):
            return None
        return str(user)

    def _bad_id(self, sock: zmq.Socket[Any], ident: bytes, claimed: str, actual: str) -> None:
        self._reject("bad_gateway_id")
        log.warning("gateway %r claimed to be %r; rejected", actual, claimed)
        self._sessions.pop(ident, None)
        self._send(sock, ident, F.Error("bad_gateway_id", f"authenticated as {actual!r}, header says {claimed!r}"))


class CollectorThread:
    """A collector serving in a background thread (demo, tests): ``stop()`` ends it cleanly."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="edgekit-collector", daemon=True)

    def _run(self) -> None:
        try:
            self.collector.serve(self.stop_event)
        except BaseException as exc:  # reported to the owner through .error and stop()
            self.error = exc
            log.error("collector thread failed: %s", exc)
            self.collector.ready.set()

    def start(self, timeout: float = 10.0) -> CollectorThread:
        self._thread.start()
        if not self.collector.ready.wait(timeout) or self.error is not None:
            raise UplinkError(f"collector did not start: {self.error!r}")
        return self

    @property
    def endpoints(self) -> list[str]:
        return self.collector.endpoints

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        self._thread.join(timeout)
        if self.error is not None:
            raise UplinkError(f"collector thread failed: {self.error!r}") from self.error

    def __enter__(self) -> CollectorThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_in_thread(bind: Sequence[str], store_path: str | Path, **kwargs: Any) -> CollectorThread:
    """Start a :class:`Collector` in a thread and wait until it is bound; ``.stop()`` to end it."""
    return CollectorThread(Collector(bind, store_path, **kwargs)).start()
