"""edgekit.sim: a plant simulator — OPC UA and Modbus machines with physically meaningful vibration.

Public API (docs/simulator.md):

* physics, importable without any server: :class:`MachineSignal`, :class:`FaultSpec`,
  :class:`BearingGeometry`, :data:`BEARINGS`, :class:`ProcessModel`, :class:`ProcessState`;
* the servers: :class:`PlantSimulator` (``async with PlantSimulator(cfg) as sim``), its config
  :class:`SimConfig` / :func:`load_sim_config` / :class:`SecurityOptions`;
* a child process for kill/restart tests: ``edgekit.sim.spawn.spawn`` and ``.wait_ready`` (module
  ``edgekit.sim.spawn``; not re-exported here, the submodule's name would shadow the function).

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
