"""edgekit.sim: a plant simulator — OPC UA and Modbus machines with physically meaningful vibration.

Public API (see docs/simulator.md): :class:`MachineSignal`, :class:`FaultSpec`,
:class:`BearingGeometry` and :class:`ProcessModel` (pure physics, importable without any server).
"""

from __future__ import annotations

from .physics import (
    BEARINGS,
    FAULT_KINDS,
    BearingGeometry,
    FaultSpec,
    MachineSignal,
    ProcessModel,
    ProcessState,
)

__all__ = [
    "BEARINGS",
    "FAULT_KINDS",
    "BearingGeometry",
    "FaultSpec",
    "MachineSignal",
    "ProcessModel",
    "ProcessState",
]
