"""Supervised asyncio tasks: a crashed task is restarted with backoff + jitter and reported.

A :class:`Supervisor` owns named long-running coroutines (connectors, uplinks, the pipeline
feeder). Each runs in a loop: when its coroutine raises, the supervisor emits a
``TASK_RESTARTED`` :class:`~edgekit.types.Event` (with the error), logs it at WARNING, counts it,
sleeps ``min(max, initial * 2**n) * uniform(0.5, 1.5)`` and starts it again — a task is never
silently gone. A task that *returns* is restarted too (a connector must run until cancelled),
unless it was registered with ``restart=False``. After a task has run cleanly for ``stable_s``
its backoff resets.

A watchdog (``touch(name)`` marks progress) restarts a task that has produced nothing for
``watchdog_s`` — the guard against a poll loop that stopped without raising.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..types import Event, EventKind, Severity

__all__ = ["Supervisor", "TaskState"]

log = logging.getLogger("edgekit.runtime")


@dataclass
class TaskState:
    name: str
    factory: Callable[[], Awaitable[Any]]
    restart: bool = True
    watchdog_s: float = 0.0
    restarts: int = 0
    last_error: str = ""
    started_at: float = 0.0
    last_progress: float = field(default_factory=time.monotonic)
    task: asyncio.Task[Any] | None = None
    state: str = "new"
    watchdog_fired: bool = False


class Supervisor:
    """Runs and restarts named tasks. ``emit`` receives every Event the supervisor produces."""

    def __init__(
        self,
        emit: Callable[[Event], None],
        *,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        stable_s: float = 60.0,
        rng: random.Random | None = None,
    ) -> None:
        self._emit = emit
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.stable_s = stable_s
        self._rng = rng or random.Random()
        self.tasks: dict[str, TaskState] = {}
        self._runners: dict[str, asyncio.Task[None]] = {}
        self._watchdog: asyncio.Task[None] | None = None
        self._stopping = False

    def __repr__(self) -> str:
        states = ", ".join(f"{t.name}={t.state}/{t.restarts}" for t in self.tasks.values())
        return f"<Supervisor {states}>"

    def add(self, name: str, factory: Callable[[], Awaitable[Any]], *, restart: bool = True,
            watchdog_s: float = 0.0) -> None:
        """Register and start ``factory()`` as a supervised task (call inside the running loop)."""
        if name in self.tasks:
            raise ValueError(f"task {name!r} already supervised")
        st = TaskState(name=name, factory=factory, restart=restart, watchdog_s=watchdog_s)
        self.tasks[name] = st
        self._runners[name] = asyncio.create_task(self._run(st), name=f"supervise:{name}")
        if watchdog_s > 0 and self._watchdog is None:
            self._watchdog = asyncio.create_task(self._watch(), name="supervise:watchdog")

    def touch(self, name: str) -> None:
        """Mark progress for ``name`` (resets its watchdog)."""
        st = self.tasks.get(name)
        if st is not None:
            st.last_progress = time.monotonic()

    def delay_for(self, attempt: int) -> float:
        base = min(self.backoff_max_s, self.backoff_initial_s * (2 ** attempt))
        return base * self._rng.uniform(0.5, 1.5)

    async def _run(self, st: TaskState) -> None:
        attempt = 0
        while not self._stopping:
            st.state = "running"
            st.started_at = time.monotonic()
            st.last_progress = st.started_at
            st.task = asyncio.create_task(_as_coro(st.factory), name=st.name)
            try:
                await st.task
                if not st.restart or self._stopping:
                    st.state = "finished"
                    return
                reason = "returned (a supervised task must run until cancelled)"
            except asyncio.CancelledError:
                if not st.watchdog_fired or self._stopping:
                    st.state = "stopped"  # we are being stopped, not the watchdog
                    return
                reason = f"stalled: nothing produced for {st.watchdog_s:.1f}s, watchdog restarted it"
            except Exception as exc:  # the point of a supervisor: every crash is reported and retried
                reason = f"{type(exc).__name__}: {exc}"
            st.watchdog_fired = False
            if time.monotonic() - st.started_at > self.stable_s:
                attempt = 0
            delay = self.delay_for(attempt)
            attempt += 1
            st.restarts += 1
            st.last_error = reason
            st.state = "backoff"
            log.warning("task %s crashed (%s); restart #%d in %.2fs", st.name, reason, st.restarts, delay)
            self._emit(Event(
                EventKind.TASK_RESTARTED, st.name, f"{st.name} crashed: {reason}; restarting in {delay:.2f}s",
                Severity.WARNING, data={"restarts": st.restarts, "error": reason, "delay_s": round(delay, 3)},
            ))
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:
                st.state = "stopped"
                return

    async def _watch(self) -> None:
        while not self._stopping:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            for st in self.tasks.values():
                if (st.watchdog_s > 0 and st.state == "running" and st.task is not None
                        and now - st.last_progress > st.watchdog_s):
                    log.warning("task %s produced nothing for %.1fs; restarting it", st.name, st.watchdog_s)
                    st.watchdog_fired = True
                    st.last_progress = now
                    st.task.cancel()

    async def stop(self, names: list[str] | None = None, timeout_s: float = 5.0) -> None:
        """Cancel the named tasks (all when ``None``) and wait for them, at most ``timeout_s``."""
        targets = list(self.tasks) if names is None else names
        if names is None:
            self._stopping = True
            if self._watchdog:
                self._watchdog.cancel()
        runners = []
        for name in targets:
            st = self.tasks[name]
            runner = self._runners[name]
            if names is not None:
                st.restart = False
            if st.task is not None and not st.task.done():
                st.task.cancel()
            runner.cancel()
            runners.append(runner)
        if runners:
            await asyncio.wait(runners, timeout=timeout_s)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {
            st.name: {"state": st.state, "restarts": st.restarts, "last_error": st.last_error}
            for st in self.tasks.values()
        }


async def _as_coro(factory: Callable[[], Awaitable[Any]]) -> Any:
    return await factory()
