"""edgekit: industrial IoT edge analytics.

Reads equipment over OPC UA and Modbus, computes vibration features on whole
``(channels, samples)`` batches, scores them with ONNX anomaly models and delivers everything
upstream over ZeroMQ through a durable on-disk spool.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import (
    ConfigError,
    ConnectorError,
    DecodeError,
    DeviceRefused,
    DeviceTimeout,
    EdgekitError,
    ModelContractError,
    PipelineError,
    SecurityError,
    SpoolError,
    SpoolFull,
    UplinkError,
)
from .types import Event, EventKind, FeatureFrame, PointBatch, Quality, Severity, WaveformBlock

__all__ = [
    "ConfigError",
    "ConnectorError",
    "DecodeError",
    "DeviceRefused",
    "DeviceTimeout",
    "EdgekitError",
    "Event",
    "EventKind",
    "FeatureFrame",
    "ModelContractError",
    "PipelineError",
    "PointBatch",
    "Quality",
    "SecurityError",
    "Severity",
    "SpoolError",
    "SpoolFull",
    "UplinkError",
    "WaveformBlock",
    "__version__",
]
