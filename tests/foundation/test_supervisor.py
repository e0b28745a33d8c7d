"""Supervised tasks restart with backoff + jitter and emit an Event; a stalled task is restarted."""

from __future__ import annotations

import asyncio
import random

from edgekit.runtime.supervisor import Supervisor
from edgekit.types import Event, EventKind


async def test_crashing_task_restarts_and_reports() -> None:
    events: list[Event] = []
    runs = 0

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise ConnectionResetError("device went away")
        await asyncio.sleep(3600)

    sup = Supervisor(events.append, backoff_initial_s=0.01, backoff_max_s=0.05, rng=random.Random(1))
    sup.add("plc-1", flaky)
    for _ in range(200):
        if runs >= 3:
            break
        await asyncio.sleep(0.01)
    assert runs == 3
    assert [e.kind for e in events] == [EventKind.TASK_RESTARTED] * 2
    assert "ConnectionResetError: device went away" in events[0].message
    assert events[1].data["restarts"] == 2
    assert sup.snapshot()["plc-1"]["state"] == "running"
    await sup.stop()
    assert sup.snapshot()["plc-1"]["state"] == "stopped"


async def test_returning_task_is_restarted_not_lost() -> None:
    events: list[Event] = []
    runs = 0

    async def quits() -> None:
        nonlocal runs
        runs += 1

    sup = Supervisor(events.append, backoff_initial_s=0.01, backoff_max_s=0.01)
    sup.add("reader", quits)
    await asyncio.sleep(0.2)
    await sup.stop()
    assert runs >= 2
    assert "returned" in events[0].message


async def test_watchdog_restarts_a_stalled_task() -> None:
    events: list[Event] = []
    runs = 0

    async def stalls() -> None:
        nonlocal runs
        runs += 1
        await asyncio.Event().wait()  # never produces, never raises

    sup = Supervisor(events.append, backoff_initial_s=0.01, backoff_max_s=0.01)
    sup.add("poller", stalls, watchdog_s=0.3)
    for _ in range(100):
        if runs >= 2:
            break
        await asyncio.sleep(0.05)
    await sup.stop()
    assert runs >= 2
    assert "watchdog" in events[0].message


def test_backoff_is_exponential_capped_and_jittered() -> None:
    sup = Supervisor(lambda e: None, backoff_initial_s=0.5, backoff_max_s=30.0, rng=random.Random(7))
    delays = [sup.delay_for(n) for n in range(10)]
    assert 0.25 <= delays[0] <= 0.75
    assert all(d <= 45.0 for d in delays)
    assert delays[9] >= 15.0
    assert len({round(d, 6) for d in delays}) == len(delays)
