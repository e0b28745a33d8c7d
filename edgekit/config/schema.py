"""The gateway configuration file (``edgekit run CONFIG``): top-level tables and the [gateway] table.

Each subsystem owns its section type (``edgekit/<part>/config.py``); this module only assembles
them. See docs/configuration.md for every key (generated from these types by
``python -m edgekit.config.reference``; a test keeps it current).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..connectors.modbus.config import ModbusConnectionConfig
from ..connectors.opcua.config import OpcUaConnectionConfig
from ..errors import ConfigError
from ..models.config import BaselineConfig, ModelConfig
from ..pipeline.config import PipelineConfig
from ..spool.config import SpoolConfig
from ..uplink.config import UplinkConfig
from .parse import Duration, opt

__all__ = ["GatewayConfig", "GatewaySection", "ReplayConfig"]


@dataclass(frozen=True)
class GatewaySection:
    id: str = opt(doc="Gateway identity reported upstream (the collector trusts its CURVE key, not this)")
    data_dir: str = opt("./edgekit-data", "Folder for the spool, baselines and state")
    log_level: Literal["debug", "info", "warning", "error"] = opt("info", "Lowest level logged")
    log_format: Literal["text", "json"] = opt("text", "Log line format; json gives one object per line")
    metrics_port: int = opt(0, "Serve Prometheus /metrics and /health on 127.0.0.1:PORT; 0 = off")
    metrics_host: str = opt("127.0.0.1", "Address the metrics endpoint binds to")
    queue_blocks: int = opt(64, "Bound of the connector -> pipeline hand-off, in blocks/batches")
    shutdown_timeout: Duration = opt(10.0, "Longest a graceful shutdown may take before tasks are cancelled")
    restart_backoff_initial: Duration = opt(0.5, "First delay before restarting a crashed task")
    restart_backoff_max: Duration = opt(30.0, "Cap of the exponential restart backoff")
    waveforms: Literal["none", "alarms", "all"] = opt(
        "alarms", "Raw waveform blocks spooled upstream: none, only while the asset is in alarm, or all")
    watchdog: Duration = opt(30.0, "A connector that produced nothing for this long is restarted (0 = off)")

    def _validate(self) -> None:
        if not self.id or not self.id.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise ConfigError("id", f"{self.id!r} must be non-empty letters, digits, '-', '_' or '.'")
        if not 0 <= self.metrics_port <= 65535:
            raise ConfigError("metrics_port", f"{self.metrics_port!r} is not a port number 0..65535")
        if self.queue_blocks < 1:
            raise ConfigError("queue_blocks", f"{self.queue_blocks!r} must be >= 1")


@dataclass(frozen=True)
class ReplayConfig:
    name: str = opt(doc="Asset name the replayed blocks carry")
    file: str = opt(doc="Recording (.mat, .npy, .csv, .wav)")
    key: str = opt("", "Variable name inside a .mat file (default: every equal-length *_DE/FE/BA_time channel)")
    fs: float = opt(0.0, "Sample rate in Hz (required unless the file carries it)")
    block: int = opt(8192, "Samples per block")
    rpm: float = opt(0.0, "Shaft speed in r/min (0 = unknown)")
    units: Literal["g", "m/s2"] = opt("g", "Unit of the recorded samples")
    speedup: float = opt(1.0, "Replay rate relative to real time")
    loop: bool = opt(True, "Start again at the end of the file")


@dataclass(frozen=True)
class GatewayConfig:
    gateway: GatewaySection = opt(doc="Identity, storage folder, logging, metrics and runtime limits")
    modbus: list[ModbusConnectionConfig] = opt(doc="Modbus connections (TCP, RTU, RTU over TCP)", factory=list)
    opcua: list[OpcUaConnectionConfig] = opt(doc="OPC UA server connections", factory=list)
    replay: list[ReplayConfig] = opt(doc="Recordings fed through the pipeline as if live", factory=list)
    pipeline: PipelineConfig = opt(doc="Vibration feature pipeline", factory=PipelineConfig)
    models: list[ModelConfig] = opt(doc="ONNX anomaly models", factory=list)
    baseline: BaselineConfig = opt(doc="Per-asset healthy baselines and automatic commissioning",
                                   factory=BaselineConfig)
    spool: SpoolConfig = opt(doc="Durable on-disk spool", factory=SpoolConfig)
    uplinks: list[UplinkConfig] = opt(doc="Destinations upstream (data centre, cloud)", factory=list)

    def _validate(self) -> None:
        for section in ("modbus", "opcua", "replay", "uplinks"):
            seen: set[str] = set()
            for i, item in enumerate(getattr(self, section)):
                name = getattr(item, "name", None)
                if name in seen:
                    raise ConfigError(f"{section}[{i}].name", f"{name!r} is used twice; names must be unique")
                seen.add(str(name))

