"""edgekit.sim: a plant simulator — OPC UA and Modbus machines with physically meaningful vibration.

Public API (docs/simulator.md):

* physics, importable without any server: :class:`MachineSignal`, :class:`FaultSpec`,
  :class:`BearingGeometry`, :data:`BEARINGS`, :class:`ProcessModel`, :class:`ProcessState`;
* the servers: :class:`PlantSimulator` (``async with PlantSimulator(cfg) as sim``), its config
  :class:`SimConfig` / :func:`load_sim_config` / :class:`SecurityOptions`;
* a child process for kill/restart tests: :func:`spawn` and :func:`wait_ready` (also importable from
  the module ``edgekit.sim.spawn``; the package attribute ``edgekit.sim.spawn`` is the function).

The server-side names are imported lazily (asyncua and pymodbus take seconds to import).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .physics import (
    BEARINGS,
    FAULT_KINDS,
    BearingGeometry,
    FaultSpec,
    MachineSignal,
    ProcessModel,
    ProcessState,
)
from .spawn import spawn, wait_ready  # binds the package attribute ``spawn`` to the function

if TYPE_CHECKING:
    from .config import SecurityOptions, SimConfig, load_sim_config
    from .plant import PlantSimulator

__all__ = [
    "BEARINGS",
    "BearingGeometry",
    "FAULT_KINDS",
    "FaultSpec",
    "MachineSignal",
    "PlantSimulator",
    "ProcessModel",
    "ProcessState",
    "SecurityOptions",
    "SimConfig",
    "load_sim_config",
    "spawn",
    "wait_ready",
]

_LAZY = {
    "PlantSimulator": "plant",
    "SecurityOptions": "config",
    "SimConfig": "config",
    "load_sim_config": "config",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
