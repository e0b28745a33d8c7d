"""The Modbus connector of one connection: scheduling, fault handling, down/up reporting, writes.

One :class:`ModbusConnector` per ``[[modbus]]`` connection runs as one task, so a dead or slow link
never delays devices on other connections. Inside the task a single scheduler serves every
(device, poll class) and waveform job in due order over the connection's one link (one request at a
time — what a serial bus requires and what pymodbus does per socket anyway).

Fault rules:

* a request that times out (after ``retries``), gets an exception response or garbage makes its
  tags' points BAD with the reason; the loop carries on;
* a link that cannot connect, or is lost, is reopened with exponential backoff (``reconnect_min`` →
  ``reconnect_max``, ±20 % jitter); while it is down every due scan yields BAD ``not connected``
  points, so consumers see the outage instead of silence;
* two timeouts in a row on a TCP link with no answer in between close it (half-open sockets never
  recover by themselves) and it is reopened as above;
* a device whose scans failed ``down_after`` times in a row is reported down (Event) and polled
  less often — its interval doubles per failed scan up to ``down_poll_max`` — until it answers
  (Event up), so a dead unit on a shared bus costs little time;
* a watchdog checks that the poll loop keeps to its own schedule; a loop that is late by more than
  the request budget plus ``watchdog`` is cancelled and restarted (Event, ERROR log). Time spent
  waiting for a full sink is back-pressure and does not count.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import random
import struct
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import ConfigError, ConnectorError, DecodeError, DeviceTimeout, EdgekitError
from ...runtime.interfaces import Sink
from ...types import Event, EventKind, PointBatch, Quality, Severity
from .config import BIT_TABLES, ModbusConnectionConfig
from .decode import compile_scan, encode_value
from .device import ResolvedDevice, ResolvedTag, resolve_device
from .planner import ReadPlanner, ReadRequest, split
from .transport import (
    POLL_ERRORS,
    READ_FC,
    ModbusExceptionResponse,
    ModbusLink,
    PollCall,
    check_payload,
    to_array,
)
from .waveform import WaveformReader

__all__ = ["ModbusConnector"]

log = logging.getLogger("edgekit.modbus")

BISECT_CODES = (2, 3)  # illegal data address; some devices answer "illegal data value" to a long read
_time, _monotonic, _ceil = time.time, time.monotonic, math.ceil


# one read's outcome: the request, its response list (or None), its error (or None), its midpoint time
_Result = tuple[ReadRequest, Any, EdgekitError | None, float]


class _Compiled:
    """What a batch layout compiles from its plan, shared by every device and poll class whose plan
    is the same (same requests over the same tags — typically many devices of one profile): tag
    names in plan order (each planned request fills one slice), the index per name, the tag count
    per request, the read calls, the scan decoder, the (scale, offset) columns (None where all 1 /
    all 0), whether strings or deadbands need the slower paths, the columns' packer, and the quality
    column of an all-good batch (read-only, shared by every such batch: a consumer that tried to
    change it would fail loudly). Sharing keeps the poll loop's working set small."""

    __slots__ = ("calls", "columns", "counts", "deadband", "decoder", "good", "index", "names", "strings")

    def __init__(self, reqs: list[ReadRequest]) -> None:
        names = [t.name for r in reqs for t in r.tags]
        self.calls = tuple((READ_FC[r.table], r.start, r.count) for r in reqs)
        self.names = tuple(names)
        self.index = {nm: i for i, nm in enumerate(names)}
        self.counts = tuple(len(r.tags) for r in reqs)
        self.strings = any(r.decoder.strings for r in reqs)
        self.deadband = any(t.deadband > 0 for r in reqs for t in r.tags)
        self.decoder = compile_scan([r.decoder.fast for r in reqs],  # type: ignore[misc]
                                    [(READ_FC[r.table], r.count) for r in reqs])
        tags = [t for r in reqs for t in r.tags]
        bits = [r.table in BIT_TABLES for r in reqs for _ in r.tags]  # bits are never scaled
        scale = np.array([1.0 if b else t.scale for t, b in zip(tags, bits, strict=True)])
        offset = np.array([0.0 if b else t.offset for t, b in zip(tags, bits, strict=True)])
        self.columns = _columns(self.counts, scale if (scale != 1.0).any() else None,
                                offset if (offset != 0.0).any() else None)
        self.good = np.zeros(len(names), dtype=np.uint8)
        self.good.flags.writeable = False


Columns = Callable[[tuple[Any, ...], list[float], float], tuple[np.ndarray, np.ndarray, np.ndarray]]


def _columns(counts: tuple[int, ...], scale: np.ndarray | None, offset: np.ndarray | None) -> Columns:
    """``columns(raw, mids, now)``: an all-good batch's values (raw values scaled in place), source
    and receive columns — one precompiled ``struct`` pack of the raw values into a fresh buffer, the
    time columns appended as repeated 8-byte packs (each request's midpoint once per tag it fills,
    then ``now`` once per tag), one numpy array on it and three views. For a few dozen values this
    beats numpy conversions and arithmetic, whose per-call cost dominates in a busy event loop.
    Generated with the plan's constants folded in."""
    n = sum(counts)
    stamps = [f"_d(m[{i}]) * {c}" for i, c in enumerate(counts) if c] + [f"_d(now) * {n}"]
    env: dict[str, Any] = {"_d": struct.Struct("<d").pack, "_pack": struct.Struct(f"<{n}d").pack,
                           "_bytearray": bytearray, "_frombuffer": np.frombuffer, "_F64": np.dtype("<f8"),
                           "_scale": scale, "_offset": offset}
    body = ["    buf = _bytearray(_pack(*raw))", f"    buf += {' + '.join(stamps)}",
            "    col = _frombuffer(buf, _F64)", f"    values = col[:{n}]"]
    body += ["    values *= _scale"] if scale is not None else []  # one in-place ufunc, no Python float per value
    body += ["    values += _offset"] if offset is not None else []
    body += [f"    return values, col[{n}:{2 * n}], col[{2 * n}:]"]
    exec("def columns(raw, m, now):\n" + "\n".join(body) + "\n", env)  # constants of the plan only
    return env["columns"]  # type: ignore[no-any-return]


class _Layout:
    """A device poll class's batch layout: its planned requests (the identity tells a rebuilt plan),
    the slice of each request (by id; the general path's), and the shared :class:`_Compiled` parts."""

    __slots__ = ("calls", "columns", "counts", "deadband", "decoder", "good", "index", "names", "requests", "slices",
                 "strings")

    def __init__(self, reqs: list[ReadRequest], shared: dict[Any, _Compiled]) -> None:
        key = tuple((r.table, r.start, r.count, r.tags) for r in reqs)
        c = shared.get(key)
        if c is None:
            c = shared[key] = _Compiled(reqs)
        self.requests = reqs
        self.slices: dict[int, slice] = {}
        pos = 0
        for r, k in zip(reqs, c.counts, strict=True):
            self.slices[id(r)] = slice(pos, pos + k)
            pos += k
        self.calls, self.counts, self.deadband, self.decoder = c.calls, c.counts, c.deadband, c.decoder
        self.columns, self.good, self.index, self.names, self.strings = c.columns, c.good, c.index, c.names, c.strings


@dataclass(slots=True)
class _DeviceState:
    dev: ResolvedDevice
    planner: ReadPlanner
    waveforms: list[WaveformReader]
    state: str = "unknown"  # unknown | up | down
    failures: int = 0  # consecutive failed scans
    last_good_read: float | None = None
    last_error: str = ""
    errors: Counter[str] = field(default_factory=Counter)
    scans: int = 0
    reported: dict[str, float] = field(default_factory=dict)  # deadband memory
    last_values: dict[str, float] = field(default_factory=dict)
    layouts: dict[str, _Layout] = field(default_factory=dict)
    shared: dict[Any, _Compiled] = field(default_factory=dict)  # the connection's compiled layouts
    tag_map: dict[str, ResolvedTag] = field(default_factory=dict)
    deadband_classes: dict[str, bool] = field(default_factory=dict)

    speed_tags: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self.tag_map = {t.name: t for t in self.dev.tags}
        self.speed_tags = frozenset(w.speed_tag for w in self.dev.waveforms if w.speed_tag)

    def layout(self, cls: str) -> _Layout:
        """The class's batch layout; rebuilt whenever the planner rebuilds its plan (a new request list)."""
        reqs = self.planner.requests(cls)
        hit = self.layouts.get(cls)
        if hit is None or hit.requests is not reqs:
            hit = self.layouts[cls] = _Layout(reqs, self.shared)
        return hit

    def tags_of(self, cls: str) -> tuple[str, ...]:
        return self.layout(cls).names

    def has_deadband(self, cls: str) -> bool:
        if cls not in self.deadband_classes:
            self.deadband_classes[cls] = any(t.deadband > 0 for t in self.dev.tags if t.poll == cls)
        return self.deadband_classes[cls]


@dataclass(slots=True)
class _Job:
    due: float
    ds: _DeviceState
    poll_class: str
    interval: float
    reader: WaveformReader | None = None
    # a scan job's layout for the planner's plan ``version``, and the link's reads for it at ``epoch``
    lay: _Layout | None = None
    version: int = -1
    bound: tuple[PollCall, ...] = ()
    epoch: int = -1


def _indices(pos: slice | np.ndarray, n: int) -> list[int]:
    return list(range(n)[pos]) if isinstance(pos, slice) else pos.tolist()


class _Backoff:
    def __init__(self, lo: float, hi: float) -> None:
        self.lo, self.hi, self.current = lo, hi, lo

    def next(self) -> float:
        delay = self.current * random.uniform(0.8, 1.2)
        self.current = min(self.hi, self.current * 2)
        return min(delay, self.hi)

    def reset(self) -> None:
        self.current = self.lo


class ModbusConnector:
    """Polls every device of one connection into a :class:`~edgekit.runtime.interfaces.Sink`."""

    def __init__(self, cfg: ModbusConnectionConfig) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.link = ModbusLink(cfg)
        self.devices: dict[str, _DeviceState] = {}
        shared: dict[Any, _Compiled] = {}
        for dcfg in cfg.devices:
            dev = resolve_device(dcfg, max_registers=cfg.max_registers, max_bits=cfg.max_bits)
            planner = ReadPlanner(dev, max_registers=cfg.max_registers, max_bits=cfg.max_bits,
                                  max_gap=cfg.max_gap, max_gap_bits=cfg.max_gap_bits)
            readers = [WaveformReader(dev.name, dev.unit_id, w, max_registers=cfg.max_registers, max_gap=cfg.max_gap)
                       for w in dev.waveforms]
            self.devices[dev.name] = _DeviceState(dev, planner, readers, shared=shared)
        self.errors: Counter[str] = Counter()
        self.scans = 0
        self.loop_restarts = 0
        self.connected_once = False
        self.last_good_read: float | None = None
        self._sink: Sink | None = None
        self._deadline = math.inf
        self._in_sink = False
        self._link_silent = 0
        self._link_down_reported = False
        self._backoff = _Backoff(cfg.reconnect_min, cfg.reconnect_max)
        self._request_budget = (cfg.retries + 1) * (cfg.timeout + 0.5) + self.link.inter_frame_s
        self._grace = cfg.watchdog or 5.0

    def __repr__(self) -> str:
        return f"ModbusConnector({self.name!r}, {self.link!r}, {len(self.devices)} devices)"

    # ------------------------------------------------------------------ public API

    async def run(self, sink: Sink) -> None:
        """Poll until cancelled. Device and link faults are retried, never raised."""
        self._sink = sink
        restart = _Backoff(0.1, 5.0)
        try:
            while True:
                self._progress(time.monotonic() + self.cfg.timeout + 1.0 + self._request_budget)
                task = asyncio.create_task(self._poll_loop(), name=f"modbus-{self.name}-poll")
                reason = await self._watch(task)
                self.loop_restarts += 1
                log.error("modbus %s: poll loop restarted: %s", self.name, reason)
                sink.event(Event(EventKind.TASK_RESTARTED, self.name, f"modbus poll loop restarted: {reason}",
                                 Severity.WARNING, data={"connection": self.name}))
                self.link.close()
                await asyncio.sleep(restart.next())
        finally:
            self.link.close()

    def health(self) -> dict[str, Any]:
        devs = {}
        for name, ds in self.devices.items():
            devs[name] = {
                "unit_id": ds.dev.unit_id, "state": ds.state, "last_good_read": ds.last_good_read,
                "consecutive_failures": ds.failures, "last_error": ds.last_error, "errors": dict(ds.errors),
                "scans": ds.scans, "requests_per_scan": ds.planner.total_requests(),
                "refused": {k: [list(r) for r in v] for k, v in ds.planner.refused_ranges().items()},
                "waveforms": {r.w.name: {"blocks": r.blocks, "torn": r.torn, "gaps": r.gaps, "last_seq": r.last_seq}
                              for r in ds.waveforms},
            }
        states = [d["state"] for d in devs.values()]
        if not self.link.connected:
            state = "connecting" if not self.connected_once else "down"
        elif states and all(s == "down" for s in states):
            state = "down"
        elif any(s == "down" for s in states):
            state = "degraded"
        else:
            state = "up"
        return {
            "state": state, "connected": self.link.connected, "transport": self.cfg.transport,
            "endpoint": self.link.where, "last_good_read": self.last_good_read, "errors": dict(self.errors),
            "requests": self.link.requests, "scans": self.scans, "loop_restarts": self.loop_restarts,
            "devices": devs,
        }

    async def write(self, device: str, tag: str, value: object) -> None:
        """Write ``value`` (engineering units) to a writable tag: FC5/FC6, or FC15/FC16 for multi-register
        values and devices with ``write_multiple``. Raises ConfigError for an unknown/read-only tag or a
        value that does not fit, and the link's errors (DeviceTimeout, DeviceRefused, ConnectorError)."""
        ds = self.devices.get(device)
        if ds is None:
            raise ConfigError(device, f"no such device on connection {self.name!r} ({', '.join(self.devices)})")
        try:
            t = ds.dev.tag(tag)
        except KeyError:
            raise ConfigError(f"{device}.{tag}", "no such tag") from None
        if not t.writable:
            raise ConfigError(f"{device}.{tag}", "is not writable (set writable = true on the tag)")
        try:
            payload = encode_value(t, value)
        except (ValueError, UnicodeEncodeError) as exc:
            raise ConfigError(f"{device}.{tag}", str(exc)) from None
        await self.link.write(t.table, t.address, payload, ds.dev.unit_id, multiple=ds.dev.write_multiple)
        log.info("modbus %s: wrote %s.%s = %r", self.name, device, tag, value)

    # ------------------------------------------------------------------ watchdog

    def _progress(self, deadline: float) -> None:
        self._deadline = deadline

    async def _watch(self, task: asyncio.Task[None]) -> str:
        period = max(0.05, min(1.0, self._grace / 4))
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=period)
                if done:
                    exc = task.exception()
                    return f"poll loop ended: {type(exc).__name__}: {exc}" if exc else "poll loop ended"
                late = time.monotonic() - self._deadline
                if not self._in_sink and late > self._grace:
                    return f"no progress for {late + self._grace:.1f}s (watchdog)"
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    # ------------------------------------------------------------------ poll loop

    def _jobs(self) -> list[_Job]:
        now = time.monotonic()
        jobs = []
        for ds in self.devices.values():
            for cls in ds.planner.poll_classes:
                if ds.planner.requests(cls):
                    jobs.append(_Job(now, ds, cls, ds.dev.poll[cls]))
            for r in ds.waveforms:
                jobs.append(_Job(now, ds, r.w.poll, ds.dev.poll[r.w.poll], r))
        return jobs

    def _interval(self, job: _Job) -> float:
        ds = job.ds
        if ds.state != "down":
            return job.interval
        extra = ds.failures - self.cfg.down_after + 1
        slow = job.interval * 2 ** min(extra, 30) * random.uniform(0.9, 1.1)
        return max(job.interval, min(self.cfg.down_poll_max, slow))

    def _reschedule(self, job: _Job, now: float) -> None:
        interval = self._interval(job)
        nxt = job.due + interval
        if nxt <= now:  # overran: keep the phase, skip the missed slots
            nxt += math.ceil((now - nxt) / interval) * interval if interval > 0 else 0
            if nxt <= now:
                nxt = now + interval
        job.due = nxt

    async def _poll_loop(self) -> None:
        jobs = self._jobs()
        if not jobs:
            self._progress(math.inf)
            await asyncio.Event().wait()
        me = asyncio.current_task()
        assert me is not None
        link = self.link
        budget = self._request_budget
        replace = heapq.heapreplace
        heap: list[tuple[float, int, _Job]] = []
        while True:
            if me.cancelling():
                # pymodbus awaits with asyncio.wait_for, which on 3.11 can swallow a cancellation
                # that races with a response: honour it here so the loop always stops when asked
                raise asyncio.CancelledError
            if not link.connected:
                self._progress(_monotonic() + self.cfg.timeout + 1.5 + self._grace)
                try:
                    await link.connect()
                except ConnectorError as exc:
                    await self._link_failed(jobs, str(exc))
                    heap = []  # it rescheduled the due jobs: rebuild the heap
                    delay = self._backoff.next()
                    self._progress(_monotonic() + delay)
                    await asyncio.sleep(delay)
                    continue
                self._link_up()
            if not heap:  # first round, or dues changed outside the heap
                heap = [(j.due, i, j) for i, j in enumerate(jobs)]
                heapq.heapify(heap)
            _, i, job = heap[0]
            now = _monotonic()
            wait = job.due - now
            if wait > 0:
                self._progress(job.due)
                await asyncio.sleep(wait)
                if not link.connected:
                    continue
                now = _monotonic()
            self._deadline = now + budget  # _progress, inline
            try:
                if job.reader is None:
                    await self._scan(job, me)
                else:
                    await self._wave(job.ds, job.reader)
                self.scans += 1
            finally:
                # the job stays on top of the heap while it runs; one replace puts it at its next due
                now = _monotonic()
                if job.ds.state != "down":  # _reschedule, inline for a device that answers
                    interval = job.interval
                    nxt = job.due + interval
                    if nxt <= now:  # overran: keep the phase, skip the missed slots
                        nxt += _ceil((now - nxt) / interval) * interval if interval > 0 else 0
                        if nxt <= now:
                            nxt = now + interval
                    job.due = nxt
                else:
                    self._reschedule(job, now)
                replace(heap, (job.due, i, job))

    def _link_up(self) -> None:
        self.connected_once = True
        self._backoff.reset()
        self._link_silent = 0
        if self._link_down_reported:
            self._link_down_reported = False
            assert self._sink is not None
            self._sink.event(Event(EventKind.CONNECTOR_UP, self.name, f"modbus {self.link.where} connected",
                                   data={"connection": self.name}))
        log.info("modbus %s: connected to %s", self.name, self.link.where)

    async def _link_failed(self, jobs: list[_Job], reason: str) -> None:
        self.errors["connection"] += 1
        assert self._sink is not None
        if not self._link_down_reported:
            self._link_down_reported = True
            log.warning("modbus %s: %s", self.name, reason)
            self._sink.event(Event(EventKind.CONNECTOR_DOWN, self.name, f"modbus link down: {reason}",
                                   Severity.WARNING, data={"connection": self.name, "reason": reason}))
        now = time.monotonic()
        for job in jobs:
            if job.due <= now:
                if job.reader is None:
                    names = job.ds.tags_of(job.poll_class)
                    await self._emit(job.ds, job.poll_class, names, np.full(len(names), np.nan),
                                     np.full(len(names), time.time()), np.full(len(names), Quality.BAD, np.uint8),
                                     [f"not connected: {reason}"] * len(names), None)
                self._account(job.ds, answered=False, error=f"not connected: {reason}", kind="connection")
                self._reschedule(job, now)

    def _account(self, ds: _DeviceState, *, answered: bool, error: str = "", kind: str = "") -> None:
        assert self._sink is not None
        ds.scans += 1
        if error:
            ds.last_error = error
            ds.errors[kind] += 1
            self.errors[kind] += 1
        if answered:
            ds.failures = 0
            if ds.state != "up":
                if ds.state == "down":
                    log.info("modbus %s: device %s answers again", self.name, ds.dev.name)
                    self._sink.event(Event(EventKind.CONNECTOR_UP, ds.dev.name, f"device {ds.dev.name} answers again",
                                           data={"connection": self.name, "unit_id": ds.dev.unit_id}))
                ds.state = "up"
            return
        ds.failures += 1
        if ds.state != "down" and ds.failures >= self.cfg.down_after:
            ds.state = "down"
            log.warning("modbus %s: device %s down after %d failed scans: %s", self.name, ds.dev.name,
                        ds.failures, error)
            self._sink.event(Event(EventKind.CONNECTOR_DOWN, ds.dev.name,
                                   f"device {ds.dev.name} down after {ds.failures} failed scans: {error}",
                                   Severity.WARNING, data={"connection": self.name, "unit_id": ds.dev.unit_id,
                                                           "reason": error}))

    def _link_result(self, exc: BaseException | None) -> None:
        """Track answers vs. timeouts on the link; close a TCP link that went silent (half-open)."""
        if exc is None or isinstance(exc, (ModbusExceptionResponse, DecodeError)):
            self._link_silent = 0
            return
        if isinstance(exc, DeviceTimeout):
            self._link_silent += 1
            if self._link_silent >= 2 and self.cfg.transport != "rtu":
                log.warning("modbus %s: link silent for %d requests; reconnecting", self.name, self._link_silent)
                self.link.close()
                self._link_silent = 0

    async def _read(self, ds: _DeviceState, req: ReadRequest,
                    out: list[_Result]) -> bool:
        """Read ``req``; on a refused merged request, bisect and learn barriers. Appends results to out.

        Returns True only when ``req`` itself was accepted: a gap is learned only between two halves
        that were both accepted as they are (a half that needed splitting found its own refusal; any
        other refused gap is found when the rebuilt plan meets it)."""
        t0 = time.time()
        try:
            raw = await self.link.read_payload(req.table, req.start, req.count, ds.dev.unit_id)
        except (ConnectorError, DecodeError) as exc:
            return await self._read_failed(ds, req, exc, t0, out)
        self._deadline = time.monotonic() + self._request_budget  # _progress, inline: every request
        self._link_silent = 0  # _link_result(None), inline
        out.append((req, raw, None, (t0 + time.time()) / 2))
        return True

    async def _read_failed(self, ds: _DeviceState, req: ReadRequest, exc: ConnectorError | DecodeError, t0: float,
                           out: list[_Result]) -> bool:
        """The outcome of a failed read of ``req`` (sent at ``t0``): a refused merged request is
        bisected (see :meth:`_read`); always False."""
        self._deadline = time.monotonic() + self._request_budget
        self._link_result(exc)
        if isinstance(exc, ModbusExceptionResponse) and exc.code in BISECT_CODES:
            halves = split(req)
            if halves is None:
                if exc.code == 2:
                    ds.planner.refuse(req.table, req.start, req.end)
            else:
                left, right = halves
                ok_left = await self._read(ds, left, out)
                ok_right = await self._read(ds, right, out)
                if ok_left and ok_right:
                    # both halves fine, the whole refused: the gap holds refused addresses (or, with
                    # no gap, the device limits the request size: never merge these two again)
                    lo, hi = (left.end, right.start) if left.end < right.start else (left.end - 1, right.start + 1)
                    if ds.planner.refuse(req.table, lo, hi):
                        log.info("modbus %s: %s refuses %s %d..%d; never merging across it again",
                                 self.name, ds.dev.name, req.table, lo, hi - 1)
                self._deadline = time.monotonic() + self._request_budget
                return False
        out.append((req, None, exc, (t0 + time.time()) / 2))
        return False

    async def _scan(self, job: _Job, me: asyncio.Task[Any]) -> None:
        """One scan of a device's poll class: the planned requests in order, then one batch.

        The loop below is the hot path (every request answers): it has pymodbus execute the plan's
        prebuilt read requests (:meth:`ModbusLink.bound`) and keeps each response and the request's
        midpoint time; a response with another function code (an exception response) goes through
        :func:`check_payload` at once, the item lists of the rest are checked by the same rules
        where the scan decodes them (:attr:`ScanDecoder.responses`). At the first failed read it
        hands what it has to the general path (:meth:`_scan_general`), which reads the rest request
        by request and marks failures; a response that fails its check or decoding is marked BAD
        there, the others keep their values."""
        ds, cls, lay, link = job.ds, job.poll_class, job.lay, self.link
        if lay is None or job.version != ds.planner.version:  # a new plan (a refusal was learned)
            lay = job.lay = ds.layout(cls)
            job.version, job.epoch = ds.planner.version, -1
        unit = ds.dev.unit_id
        budget = self._request_budget
        payloads: list[Any] = []
        mids: list[float] = []
        recovered = 0
        bound = job.bound
        if job.epoch != link.epoch:  # a new client (reconnected), or a new plan
            try:
                bound = job.bound = link.bound(lay.calls, unit)
            except ConnectorError as exc:
                await self._scan_failed(ds, cls, lay, payloads, mids, exc, time.time())
                return
            job.epoch = link.epoch
        for execute, request, fc in bound:
            if me.cancelling():
                # pymodbus awaits with asyncio.wait_for, which on 3.11 can swallow a cancellation
                # that races with a response: honour it here so the loop always stops when asked
                raise asyncio.CancelledError
            t0 = _time()
            try:
                pdu = await execute(False, request)
                # ``is``: an int of this exact value (CPython keeps one object per small int), as
                # check_payload demands; an exception response or anything else is judged by it now,
                # the item list of a matching response where the scan decodes it
                if pdu.function_code is not fc:
                    check_payload(fc, request.count, pdu)
            except POLL_ERRORS as exc:
                try:
                    pdu = await link.recover(exc, fc, request.address, request.count, unit)  # a retry answered
                except (ConnectorError, DecodeError) as err:  # a link that is down raises here too
                    link.requests += len(payloads) - recovered
                    await self._scan_failed(ds, cls, lay, payloads, mids, err, t0)
                    return
                recovered += 1  # its attempts are counted by the link
            mids.append((t0 + _time()) * 0.5)
            self._deadline = _monotonic() + budget  # _progress, inline: every request
            payloads.append(pdu)
        link.requests += len(payloads) - recovered
        self._link_silent = 0  # _link_result(None), inline
        try:  # every planned request answered: the whole scan is checked and decoded at once, in batch order
            raw = lay.decoder.responses(payloads)  # type: ignore[misc]
        except DecodeError:  # the general path marks the request that failed, and only it
            await self._scan_general(ds, cls, lay, self._checked(lay, payloads, mids), len(lay.requests))
            return
        batch = self._good_batch(ds, lay, payloads, mids, raw)
        if lay.deadband:  # filtered by _emit
            await self._emit(ds, cls, batch.tags, batch.values, batch.source_ts, batch.quality, None,
                             None if batch.text is None else list(batch.text), batch.recv_ts)
            return
        self._in_sink = True  # _emit, inline for the common case (no deadband)
        try:
            await self._sink.points(batch)  # type: ignore[union-attr]
        finally:
            self._in_sink = False
            self._deadline = _monotonic() + budget

    async def _scan_failed(self, ds: _DeviceState, cls: str, lay: _Layout, payloads: list[Any], mids: list[float],
                           exc: ConnectorError | DecodeError, t0: float) -> None:
        """The hot loop of :meth:`_scan` met a failed read (request ``len(payloads)``, sent at
        ``t0``): the requests before it answered (payloads, midpoints); the general path takes over."""
        if payloads:
            self._link_silent = 0  # they answered: _link_result(None)
        planned = lay.requests
        results = self._checked(lay, payloads, mids)
        await self._read_failed(ds, planned[len(payloads)], exc, t0, results)
        await self._scan_general(ds, cls, lay, results, len(payloads) + 1)

    @staticmethod
    def _checked(lay: _Layout, pdus: list[Any], mids: list[float]) -> list[_Result]:
        """The results of the planned requests that answered (``pdus``, in plan order), each through
        :func:`check_payload`: its item list, or the error that refuses it."""
        results: list[_Result] = []
        for req, (fc, _, count), pdu, mid in zip(lay.requests, lay.calls, pdus, mids, strict=False):
            try:
                results.append((req, check_payload(fc, count, pdu), None, mid))
            except (ConnectorError, DecodeError) as exc:
                results.append((req, None, exc, mid))
        return results

    async def _scan_general(self, ds: _DeviceState, cls: str, lay: _Layout,
                            results: list[_Result], first: int) -> None:
        """A scan with a failure: read the planned requests from index ``first`` one by one (each
        failure bisected or marked), decode request by request, BAD points with the reason where a
        request failed."""
        names = lay.names
        n = len(names)
        me = asyncio.current_task()
        planned = lay.requests
        for req in planned[first:]:
            if me is not None and me.cancelling():
                raise asyncio.CancelledError
            if not self.link.connected:
                results.append((req, None, ConnectorError("not connected"), time.time()))
                continue
            await self._read(ds, req, results)
        values = np.empty(n)
        values.fill(np.nan)
        quality = np.empty(n, dtype=np.uint8)
        quality.fill(Quality.BAD)
        src = np.empty(n)
        reasons: list[str] | None = None
        texts: list[str | None] | None = None
        answered = False
        first_error: EdgekitError | None = None
        if ds.planner.requests(cls) is planned:
            slices, index = lay.slices, lay.index
        else:  # a refusal was learned during this scan: the batch keeps the order it started with
            slices, index = {}, {nm: i for i, nm in enumerate(names)}
        for req, raw, exc, mid in results:
            pos: slice | np.ndarray | None = slices.get(id(req))
            if pos is None:  # a bisected part of a planned request
                pos = np.array([index[t.name] for t in req.tags], dtype=np.intp)
            src[pos] = mid
            if exc is None:
                try:
                    vals, txt = req.decoder.decode(to_array(READ_FC[req.table], req.count, raw))
                except DecodeError as dexc:
                    exc = dexc
                else:
                    answered = True
                    values[pos] = vals
                    quality[pos] = Quality.GOOD
                    if txt is not None:
                        texts = texts or [None] * n
                        for p, text in zip(_indices(pos, n), txt, strict=True):
                            if text is not None:
                                texts[p] = text
                    continue
            if isinstance(exc, ModbusExceptionResponse):
                answered = True
            first_error = first_error or exc
            reasons = reasons or [""] * n
            reason = f"{type(exc).__name__}: {exc}"
            for p in _indices(pos, n):
                reasons[p] = reason
        if answered:
            now = time.time()
            ds.last_good_read = now
            self.last_good_read = now
        kind = ""
        if first_error is not None:
            kind = {"DeviceTimeout": "timeout", "ModbusExceptionResponse": "exception",
                    "DecodeError": "decode"}.get(type(first_error).__name__, "connection")
        self._account(ds, answered=answered, error="" if first_error is None else str(first_error), kind=kind)
        if ds.speed_tags:
            for i in np.flatnonzero(quality == Quality.GOOD).tolist():
                if names[i] in ds.speed_tags:
                    ds.last_values[names[i]] = float(values[i])
        await self._emit(ds, cls, names, values, src, quality, reasons, texts)

    def _good_batch(self, ds: _DeviceState, lay: _Layout, payloads: list[Any], mids: list[float],
                    raw: tuple[Any, ...]) -> PointBatch:
        """The common case of :meth:`_scan` (``payloads`` are the response PDUs): every planned
        request answered and decoded. The raw values, the requests' midpoint times and the receive
        time become the batch's three float64 columns (the layout's generated ``columns``); the
        quality column is the layout's shared, read-only all-good one. Counts the scan."""
        names = lay.names
        texts: list[str | None] | None = None
        if lay.strings:
            for req, payload, pos in zip(lay.requests, payloads, lay.slices.values(), strict=True):
                if req.decoder.strings:
                    fc = READ_FC[req.table]
                    _, txt = req.decoder.decode(to_array(fc, req.count, check_payload(fc, req.count, payload)))
                    if txt is not None:
                        texts = texts or [None] * len(names)
                        texts[pos] = txt
        now = _time()
        values, src, recv = lay.columns(raw, mids, now)
        ds.last_good_read = self.last_good_read = now
        if ds.state == "up":  # _account(answered=True), inline for the common case
            ds.scans += 1
            ds.failures = 0
        else:
            self._account(ds, answered=True)
        if ds.speed_tags:
            for i, name in enumerate(names):
                if name in ds.speed_tags:
                    ds.last_values[name] = float(values[i])
        return PointBatch.trusted(ds.dev.name, names, values, src, recv, lay.good, (), None if texts is None else tuple(texts))

    async def _emit(self, ds: _DeviceState, cls: str | None, names: tuple[str, ...], values: np.ndarray,
                    src: np.ndarray, quality: np.ndarray, reasons: list[str] | None,
                    texts: list[str | None] | None, recv: np.ndarray | None = None) -> None:
        if cls is not None and ds.has_deadband(cls):
            keep = np.ones(len(names), dtype=bool)
            for i, name in enumerate(names):
                t = ds.tag_map[name]
                if t.deadband <= 0:
                    continue
                if quality[i] == Quality.GOOD:
                    last = ds.reported.get(name)
                    if last is not None and abs(values[i] - last) < t.deadband:
                        keep[i] = False
                    else:
                        ds.reported[name] = float(values[i])
                else:
                    ds.reported.pop(name, None)  # report the next good value whatever it is
            if not keep.any():
                return
            if not keep.all():
                idx = np.flatnonzero(keep)
                names = tuple(names[i] for i in idx)
                values, src, quality = values[idx], src[idx], quality[idx]
                recv = None if recv is None else recv[idx]
                reasons = None if reasons is None else [reasons[i] for i in idx]
                texts = None if texts is None else [texts[i] for i in idx]
        if recv is None:
            recv = np.full(len(names), time.time())
        batch = PointBatch(device=ds.dev.name, tags=names, values=values, source_ts=src, recv_ts=recv, quality=quality,
                           reasons=tuple(reasons) if reasons else (),
                           text=None if texts is None else tuple(texts))
        assert self._sink is not None
        self._in_sink = True
        try:
            await self._sink.points(batch)
        finally:
            self._in_sink = False
            self._progress(time.monotonic() + self._request_budget)

    async def _wave(self, ds: _DeviceState, reader: WaveformReader) -> None:
        speed = None
        if reader.w.speed_tag and reader.w.speed_tag in ds.last_values:
            v = ds.last_values[reader.w.speed_tag]
            speed = v / 60.0 if reader.w.speed_unit == "rpm" else v
        try:
            result = await reader.poll(self.link, speed)
        except (ConnectorError, DecodeError) as exc:
            self._link_result(exc)
            kind = {"DeviceTimeout": "timeout", "ModbusExceptionResponse": "exception",
                    "DecodeError": "decode"}.get(type(exc).__name__, "connection")
            self._account(ds, answered=isinstance(exc, ModbusExceptionResponse), error=f"waveform {reader.w.name}: {exc}",
                          kind=kind)
            return
        finally:
            self._progress(time.monotonic() + self._request_budget)
        self._link_result(None)
        ds.last_good_read = self.last_good_read = time.time()
        self._account(ds, answered=True)
        assert self._sink is not None
        if result.gap_event is not None:
            self._sink.event(result.gap_event)
        if result.block is not None:
            self._in_sink = True
            try:
                await self._sink.waveform(result.block)
            finally:
                self._in_sink = False
                self._progress(time.monotonic() + self._request_budget)
