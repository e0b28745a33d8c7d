"""The seams between the runtime and its parts: what a connector, a sink and an uplink provide.

* A **connector** (Modbus, OPC UA, replay, …) is built from its config section and runs as one
  supervised asyncio task: ``await connector.run(sink)`` runs until cancelled. It retries its own
  devices with backoff (a dead device never ends ``run``); if ``run`` raises, the supervisor
  restarts it with backoff + jitter and emits an Event. ``health()`` returns a JSON-able snapshot
  (``state``, ``last_good_read``, ``errors``, per-device details).
* A **sink** is what a connector hands data to. ``points`` and ``waveform`` may wait: that is the
  back-pressure from a full pipeline queue. ``event`` never blocks and never drops.
* An **uplink** is built from its config section and the spool and runs as a supervised task too;
  ``health()`` reports ``backlog`` (records not yet acknowledged) and ``oldest_unacked_age_s``.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from ..types import Event, PointBatch, WaveformBlock

__all__ = ["Connector", "Sink", "Uplink"]


@runtime_checkable
class Sink(Protocol):
    async def points(self, batch: PointBatch) -> None: ...

    async def waveform(self, block: WaveformBlock) -> None: ...

    def event(self, event: Event) -> None: ...


@runtime_checkable
class Connector(Protocol):
    name: str

    async def run(self, sink: Sink) -> None: ...

    def health(self) -> dict[str, Any]: ...


@runtime_checkable
class Uplink(Protocol):
    name: str

    async def run(self) -> None: ...

    def health(self) -> dict[str, Any]: ...
