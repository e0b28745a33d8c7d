"""The gateway side of the uplink: delivers the spool's records to a collector, exactly once in its store.

``UplinkClient(cfg, spool, gateway_id)`` is the runtime's :class:`~edgekit.runtime.interfaces.Uplink`.
``await client.run()`` runs until cancelled; ``client.notify()`` (any thread) wakes the sender after
new rows were appended; ``client.health()`` is a JSON-able snapshot.

How it works (protocol: :mod:`edgekit.uplink.frames`)
-----------------------------------------------------
* One *session* = one fresh DEALER socket connected to one endpoint: HELLO (gateway id, spool
  epoch, first unacked seq per stream) → WELCOME (credit). The socket has ZMTP heartbeats on and
  ``ZMQ_IMMEDIATE``; the gateway never binds.
* Sending: ``spool.pending_segments(uplink, after=cursor)`` oldest first — each stored segment (a
  run of consecutive records of one stream) goes out as it is stored, one frame, no re-encoding —
  at most ``credit`` records and ``window_bytes`` in flight, about ``batch_records`` records per DATA
  message (at least one segment; split at ``max_message_bytes``). Each stream goes out in seq
  order, which is what makes the collector's cumulative ACK sound. A segment too large for the
  collector's ``max_message_bytes`` is sent record by record (a record that alone is too large is
  dead-lettered). A spool without ``pending_segments`` is read record by record with ``pending``.
* ACK(stream, seq) → ``spool.submit_ack(uplink, stream, seq)`` (cumulative; applied by the spool's
  committer thread, so the event loop never waits behind a commit's fsync; ``spool.ack`` for a spool
  without it; the spool may then delete).
  ACKs already queued when the loop gets to them are merged into one spool ack per stream.
  NACK(seq, n) → those records go to the dead-letter table (:mod:`edgekit.uplink.deadletter`), one
  row per record, committed before the ACK that covers them is applied.
* A session ends on: ack timeout (records in flight, no progress for ``ack_timeout``), peer silence
  for ``heartbeat_timeout`` (application PING/PONG), an ``ERROR`` from the collector (``no_session``
  after libzmq silently reconnected underneath), or WELCOME not arriving within ``hello_timeout``
  (unreachable, or the pinned server key does not match). The next session starts from the spool's
  first unacked seq, so *everything unacked is resent*, oldest first; the collector deduplicates.
* Failover: endpoints are tried in order; a failed connect moves to the next one (round robin),
  with exponential backoff plus jitter (``reconnect_initial`` … ``reconnect_max``); a session that
  reached WELCOME resets the backoff.
* Live data and backlog: order *within* a stream is strict (cumulative acks need it), so new rows
  of a stream wait behind that stream's own backlog; the drain runs at wire speed (≥ 5× a typical
  live rate, see docs/uplink.md), so the delay is bounded by backlog / (drain − live). Streams that
  carry alarms and losses (kinds ``event`` and ``gap``: streams named ``event/…`` and ``gap/…``, or
  any stream in which such a record was seen) are served first on every fill, by a ``pending`` query
  that excludes every other known stream — an alarm raised during a drain goes out at once instead
  of behind minutes of waveform/feature backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from pathlib import Path
from typing import Any, cast

import zmq
import zmq.asyncio

from ..codec import segment_blobs
from ..errors import ConfigError, DecodeError, UplinkError
from ..spool.base import SpoolRow
from . import frames as F
from .config import UplinkConfig
from .deadletter import DeadLetters
from .security import (
    check_libzmq,
    check_secret_file_mode,
    load_public_key,
    parse_secret_key,
    public_from_secret,
)

__all__ = ["UplinkClient"]

log = logging.getLogger("edgekit.uplink")

_PRIORITY_KINDS = frozenset({"event", "gap"})
_PRIORITY_PREFIXES = ("event/", "gap/")  # the runtime's and the spool's stream names for those kinds
_AFTER_ALL = 2**63 - 1  # an `after` cursor that excludes a stream from a pending() call
_UNSENT = -1.0  # send time of a row that was dead-lettered locally instead of sent


class _SessionEnd(Exception):
    """A session is over; ``established`` says whether it got as far as WELCOME."""

    def __init__(self, reason: str, established: bool) -> None:
        super().__init__(reason)
        self.established = established


class _InFlight:
    """Rows sent in this session and not yet acknowledged, per stream in seq order."""

    def __init__(self) -> None:
        self.by_stream: dict[str, deque[tuple[Any, float]]] = {}
        self.count = 0
        self.nbytes = 0

    def add(self, row: Any, now: float) -> None:
        self.by_stream.setdefault(row.stream, deque()).append((row, now))
        self.count += _count(row)
        self.nbytes += len(row.blob)

    def pop_through(self, stream: str, seq: int) -> list[tuple[Any, float]]:
        """Remove the rows (segments) of ``stream`` whose last seq is <= ``seq``."""
        dq = self.by_stream.get(stream)
        out = []
        while dq and _last(dq[0][0]) <= seq:
            row, t = dq.popleft()
            self.count -= _count(row)
            self.nbytes -= len(row.blob)
            out.append((row, t))
        return out

    def find(self, stream: str, seq: int) -> Any | None:
        """The row (segment) of ``stream`` in flight that holds ``seq``."""
        for row, _ in self.by_stream.get(stream, ()):
            if row.seq <= seq <= _last(row):
                return row
        return None


def _count(row: Any) -> int:
    return int(getattr(row, "count", 1))


def _last(row: Any) -> int:
    return int(row.seq) + _count(row) - 1


def _split(row: Any, first: int | None = None, n: int | None = None) -> list[SpoolRow]:
    """The records ``first`` … ``first + n - 1`` (default: all) of a segment row as 1-record rows."""
    count = _count(row)
    blobs = [bytes(row.blob)] if count == 1 else segment_blobs(row.blob, count)
    lo = row.seq if first is None else max(first, row.seq)
    hi = _last(row) if n is None else min(_last(row), lo + n - 1)
    return [SpoolRow(row.stream, q, row.kind, blobs[q - row.seq], row.ts, row.epoch) for q in range(lo, hi + 1)]


class UplinkClient:
    """Delivers one uplink's routed spool records to a collector (see module docstring)."""

    def __init__(
        self,
        cfg: UplinkConfig,
        spool: Any,
        gateway_id: str,
        *,
        context: zmq.asyncio.Context | None = None,
        dead_letters: DeadLetters | str | Path | None = None,
    ) -> None:
        self.name = cfg.name
        self.cfg = cfg
        self.spool = spool
        self.gateway_id = gateway_id
        self._ctx = context
        self._dead_letters_arg = dead_letters
        self._dead: DeadLetters | None = dead_letters if isinstance(dead_letters, DeadLetters) else None
        self._keys = self._load_keys(cfg)
        self._compressor = F.Compressor(cfg.compression)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._priority_streams: set[str] = set()
        # True from just before the sender reads the spool with nothing in flight until it found
        # something to send: only then does notify() need to wake it (set before the read, so a row
        # committed meanwhile is either seen by that read or followed by a wake-up). With records in
        # flight, the next ACK makes the sender read the spool again: no wake-up (each one costs a
        # GIL hand-over between the pipeline's worker thread and the event loop).
        self._starving = True
        self._max_sent: dict[tuple[str, str], int] = {}
        self.state = "idle"
        self.endpoint: str | None = None
        self.delivered = 0
        self.resent = 0
        self.dead_lettered = 0
        self.sessions = 0
        self.failovers = 0
        self.last_error = ""
        self.rtt_s: float | None = None
        self.ack_latency_s: float | None = None

    def __repr__(self) -> str:
        return f"<UplinkClient {self.name!r} {self.state} endpoint={self.endpoint} delivered={self.delivered}>"

    # ------------------------------------------------------------ setup

    @staticmethod
    def _load_keys(cfg: UplinkConfig) -> tuple[bytes, bytes, bytes] | None:
        """(server public, own public, own secret), or None when no endpoint uses CURVE."""
        if cfg.insecure or (cfg.secret_key is None and not any(e.startswith("tcp://") for e in cfg.endpoints)):
            return None
        where = f"uplinks.{cfg.name}"
        try:
            server = load_public_key(cfg.server_public_key)
        except UplinkError as exc:
            raise ConfigError(f"{where}.server_public_key", str(exc)) from None
        if cfg.secret_key is None:
            raise ConfigError(f"{where}.secret_key", "required for CURVE")
        try:
            secret = parse_secret_key(cfg.secret_key.value(), f"secret key ({cfg.secret_key.source})")
        except UplinkError as exc:
            raise ConfigError(f"{where}.secret_key", str(exc)) from None
        if cfg.secret_key.source.startswith("file "):
            check_secret_file_mode(cfg.secret_key.source[5:])
        public = public_from_secret(secret)
        if cfg.public_key:
            try:
                listed = load_public_key(cfg.public_key)
            except UplinkError as exc:
                raise ConfigError(f"{where}.public_key", str(exc)) from None
            if listed != public:
                raise ConfigError(f"{where}.public_key", "does not belong to the configured secret key")
        return server, public, secret

    def _dead_letter_store(self) -> DeadLetters:
        if self._dead is None:
            arg = self._dead_letters_arg
            if arg is None:
                base = getattr(self.spool, "path", None)
                arg = f"{base}.deadletter.sqlite" if base else "edgekit-deadletter.sqlite"
            self._dead = DeadLetters(arg)  # type: ignore[arg-type]
        return self._dead

    # ------------------------------------------------------------ public API

    def notify(self) -> None:
        """Wake the sender: new rows were appended. Safe from any thread; a no-op before ``run``."""
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or not self._starving or wake.is_set():
            # the sender is busy (it reads the spool again after every ACK) or already woken: a
            # wake-up would only cost a GIL hand-over between the worker and the loop thread
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            wake.set()
        else:
            with contextlib.suppress(RuntimeError):  # loop already closed: nobody to wake
                loop.call_soon_threadsafe(wake.set)

    def health(self) -> dict[str, Any]:
        rows, nbytes, oldest = self.spool.backlog(self.name)
        return {
            "state": self.state,
            "endpoint": self.endpoint,
            "backlog": rows,
            "backlog_bytes": nbytes,
            "oldest_unacked_age_s": round(max(0.0, time.time() - oldest), 3) if oldest else 0.0,
            "delivered": self.delivered,
            "resent": self.resent,
            "dead_lettered": self.dead_lettered,
            "sessions": self.sessions,
            "failovers": self.failovers,
            "rtt_s": self.rtt_s,
            "ack_latency_s": self.ack_latency_s,
            "compression_ratio": round(self._compressor.wire_bytes / self._compressor.raw_bytes, 4)
            if self._compressor.raw_bytes else None,
            "last_error": self.last_error,
        }

    async def run(self) -> None:
        """Deliver until cancelled; never returns on its own."""
        check_libzmq()
        if self.cfg.insecure:
            log.warning("uplink %s: insecure = true — data goes unauthenticated and unencrypted to %s",
                        self.name, ", ".join(self.cfg.endpoints))
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        own_ctx = self._ctx is None
        ctx = self._ctx or zmq.asyncio.Context()
        delay = self.cfg.reconnect_initial
        idx = 0
        try:
            while True:
                ep = self.cfg.endpoints[idx]
                try:
                    await self._session(ctx, ep)
                except _SessionEnd as end:
                    self.last_error = str(end)
                    if end.established:
                        log.info("uplink %s: session with %s ended: %s", self.name, ep, end)
                        delay = self.cfg.reconnect_initial
                    else:
                        log.warning("uplink %s: cannot open a session with %s: %s", self.name, ep, end)
                        if len(self.cfg.endpoints) > 1:
                            idx = (idx + 1) % len(self.cfg.endpoints)
                            self.failovers += 1
                finally:
                    self.state, self.endpoint = "reconnecting", None
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, self.cfg.reconnect_max)
        finally:
            self.state = "stopped"
            if own_ctx:
                ctx.destroy(linger=0)
            if self._dead is not None and not isinstance(self._dead_letters_arg, DeadLetters):
                self._dead.close()
                self._dead = None

    # ------------------------------------------------------------ one session

    def _socket(self, ctx: zmq.asyncio.Context, endpoint: str) -> zmq.asyncio.Socket:
        cfg = self.cfg
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.IMMEDIATE, 1)
        sock.setsockopt(zmq.MAXMSGSIZE, cfg.max_message_bytes)
        sock.setsockopt(zmq.RECONNECT_IVL, int(cfg.reconnect_initial * 1000))
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, int(cfg.reconnect_max * 1000))
        if cfg.heartbeat:
            sock.setsockopt(zmq.HEARTBEAT_IVL, int(cfg.heartbeat * 1000))
            sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, int(cfg.heartbeat_timeout * 1000))
            sock.setsockopt(zmq.HEARTBEAT_TTL, int(cfg.heartbeat_timeout * 1000))
        if self._keys is not None:
            server, public, secret = self._keys
            sock.curve_serverkey = server
            sock.curve_publickey = public
            sock.curve_secretkey = secret
        elif endpoint.startswith("tcp://") and not cfg.insecure:  # guarded by config validation
            sock.close(linger=0)
            raise UplinkError(f"uplink {self.name}: refusing plain NULL on {endpoint}")
        sock.connect(endpoint)
        return sock

    async def _send(self, sock: zmq.asyncio.Socket, frames: list[bytes], established: bool) -> None:
        timeout = self.cfg.heartbeat_timeout if self.cfg.heartbeat else self.cfg.ack_timeout
        fut = cast("asyncio.Future[Any]", sock.send_multipart(frames))  # zmq.asyncio returns a Future
        if fut.done():  # pyzmq tried a non-blocking send at once: no wait_for (one loop turn less per message)
            fut.result()
            return
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise _SessionEnd("send blocked (peer unreachable)", established) from None

    async def _session(self, ctx: zmq.asyncio.Context, endpoint: str) -> None:
        cfg = self.cfg
        assert self._wake is not None
        sock = self._socket(ctx, endpoint)
        self.state, self.endpoint = "connecting", endpoint
        rx: asyncio.Future[list[bytes]] | None = None
        wk: asyncio.Future[Any] | None = None
        limits = F.Limits(max_message_bytes=cfg.max_message_bytes)
        try:
            epoch = self.spool.epoch
            first = dict(self.spool.first_unacked(self.name))
            hello = F.Hello(self.gateway_id, epoch, first, cfg.credit)
            try:
                await asyncio.wait_for(sock.send_multipart(F.encode(hello)), cfg.hello_timeout)
                welcome = F.decode(await asyncio.wait_for(sock.recv_multipart(), cfg.hello_timeout), limits)
            except TimeoutError:
                raise _SessionEnd(f"no WELCOME within {cfg.hello_timeout:g}s (unreachable or "
                                  "server key mismatch)", False) from None
            except DecodeError as exc:
                raise _SessionEnd(f"bad answer to HELLO: {exc}", False) from None
            if isinstance(welcome, F.Error):
                raise _SessionEnd(f"collector refused HELLO: {welcome.code}: {welcome.reason}", False)
            if not isinstance(welcome, F.Welcome):
                raise _SessionEnd(f"expected WELCOME, got {type(welcome).__name__}", False)
            credit = max(1, min(cfg.credit, welcome.credit))
            max_bytes = min(cfg.max_message_bytes, welcome.max_message_bytes)
            self.sessions += 1
            self.state = "connected"
            log.info("uplink %s: session %d with %s (credit %d)", self.name, self.sessions, endpoint, credit)

            inflight = _InFlight()
            cursor: dict[str, int] = {}
            now = time.monotonic()
            last_rx = last_tx = last_progress = now
            while True:
                sent = await self._fill(sock, inflight, cursor, first, credit, max_bytes)
                now = time.monotonic()
                if sent:
                    last_tx = now
                    if inflight.count == sent:  # window was empty: the ack clock starts now
                        last_progress = now
                if rx is None:
                    rx = asyncio.ensure_future(sock.recv_multipart())
                if wk is None:
                    wk = asyncio.ensure_future(self._wake.wait())
                timeout = 0.25 if not inflight.count else min(0.25, cfg.ack_timeout)
                done, _ = await asyncio.wait({rx, wk}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                now = time.monotonic()
                if wk in done:
                    self._wake.clear()
                    wk = None
                if rx in done:
                    raw, rx = rx.result(), None
                    last_rx = now
                    if await self._handle_queued(sock, raw, inflight, limits):
                        last_progress = now
                if inflight.count and now - last_progress > cfg.ack_timeout:
                    raise _SessionEnd(f"no ACK for {cfg.ack_timeout:g}s with {inflight.count} records "
                                      "in flight; resending", True)
                if cfg.heartbeat:
                    if now - last_rx > cfg.heartbeat_timeout:
                        raise _SessionEnd(f"collector silent for {cfg.heartbeat_timeout:g}s", True)
                    if now - max(last_tx, last_rx) > cfg.heartbeat:
                        await self._send(sock, F.encode(F.Ping(time.time())), True)
                        last_tx = now
        finally:
            for fut in (rx, wk):
                if fut is not None and not fut.done():
                    fut.cancel()
            sock.close(linger=0)

    async def _handle_queued(self, sock: zmq.asyncio.Socket, raw: list[bytes], inflight: _InFlight,
                             limits: F.Limits) -> bool:
        """Handle ``raw`` and whatever else the collector has queued (up to 64 messages).

        Consecutive ACKs are merged (highest seq per stream), so a lagging loop applies one spool
        ack per stream instead of one per ACK; merged ACKs are applied before any other message and
        at the end, so the order the protocol relies on (a NACK before the ACK covering it) holds."""
        progressed = False
        merged: dict[str, dict[str, int]] = {}

        async def flush() -> None:
            nonlocal progressed
            for epoch, acks in merged.items():
                progressed = await self._handle(sock, F.Ack(epoch, acks), inflight) or progressed
            merged.clear()

        for _ in range(64):
            try:
                msg = F.decode(raw, limits)
            except DecodeError as exc:
                raise _SessionEnd(f"undecodable message from collector: {exc}", True) from None
            if isinstance(msg, F.Ack):
                into = merged.setdefault(msg.epoch, {})
                for stream, seq in msg.acks.items():
                    into[stream] = max(seq, into.get(stream, seq))
            else:
                await flush()
                progressed = await self._handle(sock, msg, inflight) or progressed
            try:
                raw = await sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
        await flush()
        return progressed

    async def _handle(self, sock: zmq.asyncio.Socket, msg: F.Message, inflight: _InFlight) -> bool:
        """Apply one collector message; True when it acknowledged something."""
        if isinstance(msg, F.Ack):
            progressed = False
            now = time.monotonic()
            for stream, seq in msg.acks.items():
                done = inflight.pop_through(stream, seq)
                if done and msg.epoch == self.spool.epoch:  # rows of an older epoch are gone already
                    self._ack(self.name, stream, seq)
                    self.delivered += sum(_count(r) for r, _ in done)
                    lat = now - done[0][1]
                    self.ack_latency_s = lat if self.ack_latency_s is None else 0.9 * self.ack_latency_s + 0.1 * lat
                    progressed = True
            self._settle_unsent(inflight)
            return progressed
        if isinstance(msg, F.Nack):
            row = inflight.find(msg.stream, msg.seq)
            if row is not None:
                store = self._dead_letter_store()
                for rec in _split(row, msg.seq, msg.count):
                    store.add(self.name, rec, msg.reason)
                    self.dead_lettered += 1
                log.error("uplink %s: collector rejected %s seq %d..%d for good (%s); moved to dead letters",
                          self.name, msg.stream, msg.seq, msg.seq + msg.count - 1, msg.reason)
            return False
        if isinstance(msg, F.Ping):
            await self._send(sock, F.encode(F.Pong(msg.ts)), True)
            return False
        if isinstance(msg, F.Pong):
            self.rtt_s = max(0.0, time.time() - msg.ts)
            return False
        if isinstance(msg, F.Error):
            # refusals of who we are are not transient: back off (and fail over) as for a failed connect
            refused = msg.code in ("bad_gateway_id", "revoked")
            if refused:
                log.error("uplink %s: collector refused this gateway: %s: %s", self.name, msg.code, msg.reason)
            raise _SessionEnd(f"collector error {msg.code}: {msg.reason}", not refused)
        raise _SessionEnd(f"unexpected {type(msg).__name__} from collector", True)

    async def _fill(self, sock: zmq.asyncio.Socket, inflight: _InFlight, cursor: dict[str, int],
                    first: dict[str, int], credit: int, max_bytes: int) -> int:
        """Send pending rows within the credit window; return how many were sent."""
        cfg = self.cfg
        sent = 0
        while inflight.count < credit and inflight.nbytes < cfg.window_bytes:
            # with records in flight an ACK (or the ack timeout) brings the sender back here anyway
            self._starving = inflight.count == 0
            room = min(credit - inflight.count, 4 * cfg.batch_records)
            budget = max(1, cfg.window_bytes - inflight.nbytes)
            rows: list[Any] = []
            known = set(cursor) | set(first)
            if known:
                # alarms first: every known non-alarm stream is excluded from this query
                after = {s: _AFTER_ALL for s in known if not self._is_priority(s)}
                after.update({s: cursor[s] for s in known if self._is_priority(s) and s in cursor})
                rows = [r for r in self._pending(limit=room, max_bytes=budget, after=after)
                        if self._is_priority(r.stream) or r.kind in _PRIORITY_KINDS]
            if not rows:
                rows = self._pending(limit=room, max_bytes=budget, after=cursor)
            if not rows:
                break
            self._starving = False
            await self._send_rows(sock, rows, inflight, cursor, max_bytes)
            sent += sum(_count(r) for r in rows)
        return sent

    def _pending(self, limit: int, max_bytes: int, after: dict[str, int]) -> list[Any]:
        fetch = getattr(self.spool, "pending_segments", None) or self.spool.pending
        return list(fetch(self.name, limit=limit, max_bytes=max_bytes, after=after))

    def _is_priority(self, stream: str) -> bool:
        return stream in self._priority_streams or stream.startswith(_PRIORITY_PREFIXES)

    async def _send_rows(self, sock: zmq.asyncio.Socket, rows: list[Any], inflight: _InFlight,
                         cursor: dict[str, int], max_bytes: int) -> None:
        batch: list[Any] = []
        size = records = 0
        queue = deque(rows)
        while queue:
            row = queue.popleft()
            if row.kind in _PRIORITY_KINDS:
                self._priority_streams.add(row.stream)
            n = len(row.blob) + 64 + len(row.stream)
            if n > max_bytes - 4096 and _count(row) > 1:  # too big as one frame: its records one by one
                queue.extendleft(reversed(_split(row)))
                continue
            cursor[row.stream] = max(cursor.get(row.stream, -1), _last(row))
            if n > max_bytes - 4096:
                # can never be sent: dead-letter it here; it is acknowledged once everything
                # before it in its stream is (cumulative acks must not skip earlier rows)
                if batch:
                    await self._send_batch(sock, batch, inflight)
                    batch, size, records = [], 0, 0
                reason = f"record of {len(row.blob)} bytes exceeds max_message_bytes {max_bytes}"
                self._dead_letter_store().add(self.name, row, reason)
                self.dead_lettered += 1
                log.error("uplink %s: %s seq %d: %s; moved to dead letters", self.name, row.stream, row.seq, reason)
                inflight.add(row, _UNSENT)
                continue
            if batch and (records + _count(row) > self.cfg.batch_records or size + n > max_bytes - 4096
                          or row.epoch != batch[0].epoch):
                await self._send_batch(sock, batch, inflight)
                batch, size, records = [], 0, 0
            batch.append(row)
            size += n
            records += _count(row)
        if batch:
            await self._send_batch(sock, batch, inflight)
        self._settle_unsent(inflight)

    def _ack(self, uplink: str, stream: str, seq: int) -> None:
        """Pipelined ack (applied by the spool's committer thread): the loop never waits for a commit."""
        submit_ack = getattr(self.spool, "submit_ack", None)
        (submit_ack or self.spool.ack)(uplink, stream, seq)

    def _settle_unsent(self, inflight: _InFlight) -> None:
        """Acknowledge dead-lettered, never-sent rows that now head their stream's window."""
        for stream, dq in inflight.by_stream.items():
            last = None
            while dq and dq[0][1] == _UNSENT:
                last = _last(dq[0][0])
                inflight.pop_through(stream, last)
            if last is not None:
                self._ack(self.name, stream, last)

    async def _send_batch(self, sock: zmq.asyncio.Socket, rows: list[Any], inflight: _InFlight) -> None:
        epoch = rows[0].epoch
        recs = [F.DataRecord(r.stream, r.seq, r.kind, r.ts, bytes(r.blob), _count(r)) for r in rows]
        frames = F.encode(F.Data(self.gateway_id, epoch, recs), self._compressor)
        now = time.monotonic()
        for r in rows:
            key = (r.epoch, r.stream)
            sent_before = self._max_sent.get(key, -1)
            if r.seq <= sent_before:
                self.resent += min(_last(r), sent_before) - r.seq + 1
            self._max_sent[key] = max(sent_before, _last(r))
            inflight.add(r, now)
        await self._send(sock, frames, True)
