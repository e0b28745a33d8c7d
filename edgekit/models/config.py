"""Configuration of anomaly detection: ``[[models]]`` entries, their alarms, and the ``[baseline]`` table.

``ModelConfig`` is one ONNX model scored on a group of channels; ``AlarmConfig`` (nested as
``[models.alarm]``) turns its scores into raised/cleared events; ``BaselineConfig`` says where per-asset
healthy baselines live and how the first blocks of a new asset commission one automatically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config.parse import Duration, opt
from ..errors import ConfigError

__all__ = ["AlarmConfig", "BaselineConfig", "ModelConfig"]


@dataclass(frozen=True)
class AlarmConfig:
    k: int = opt(3, "Raise only when k of the last n blocks are at or above the threshold")
    n: int = opt(5, "Window of the k-of-n confirmation, in blocks")
    clear_blocks: int = opt(3, "Clear after this many consecutive blocks below the clear level")
    hysteresis: float = opt(
        0.2,
        "Clear level = threshold - hysteresis x (threshold - healthy median score); 0 clears at the threshold",
    )
    clear_threshold: float | None = opt(None, "Explicit clear level (score units); overrides hysteresis")
    alarm_factor: float = opt(2.0, "Severity ALARM when the exceedance (score - median)/(threshold - median) reaches this")
    critical_factor: float = opt(4.0, "Severity CRITICAL when the exceedance reaches this")
    zone_escalation: bool = opt(True, "Velocity zone C raises the severity to at least ALARM, zone D to CRITICAL")
    top_features: int = opt(3, "How many contributing features an alarm event names as evidence")

    def _validate(self) -> None:
        if self.n < 1:
            raise ConfigError("n", f"{self.n!r} must be >= 1")
        if not 1 <= self.k <= self.n:
            raise ConfigError("k", f"{self.k!r} must be between 1 and n ({self.n})")
        if self.clear_blocks < 1:
            raise ConfigError("clear_blocks", f"{self.clear_blocks!r} must be >= 1")
        if not 0.0 <= self.hysteresis < 1.0:
            raise ConfigError("hysteresis", f"{self.hysteresis!r} must be in [0, 1)")
        if not 1.0 <= self.alarm_factor <= self.critical_factor:
            raise ConfigError(
                "alarm_factor", f"{self.alarm_factor!r} must be >= 1 and <= critical_factor ({self.critical_factor})"
            )
        if self.top_features < 0:
            raise ConfigError("top_features", f"{self.top_features!r} must be >= 0")


@dataclass(frozen=True)
class ModelConfig:
    path: str = opt(doc="ONNX model file (annotated with edgekit metadata; see docs/models.md)")
    name: str = opt("", "Name used in score columns and events (default: the file name without .onnx)")
    channels: list[str] = opt(doc="Channel ids this model scores (empty = every channel)", factory=list)
    assets: list[str] = opt(doc="Assets this model scores (empty = every asset)", factory=list)
    threshold: float | None = opt(None, "Alarm threshold in score units; overrides calibration and the model's own")
    calibrate: bool = opt(True, "Calibrate the threshold on the asset's baseline to target_false_alarm_rate")
    target_false_alarm_rate: float = opt(0.001, "Fraction of healthy blocks allowed above the calibrated threshold")
    threshold_margin: float = opt(
        0.5, "Calibrated threshold = q + margin x (q - median), q the (1 - rate) quantile of baseline scores"
    )
    model_threshold_floor: bool = opt(
        True,
        "A calibrated threshold is never below the model's own edgekit.threshold (measured out-of-sample by "
        "its author; a short commissioning underestimates the healthy tail)",
    )
    intra_op_threads: int = opt(1, "onnxruntime intra-op threads (keep 1 on a gateway: cores are shared)")
    reload: bool = opt(True, "Replace the model when its file changes (validated first; no data dropped)")
    reload_interval: Duration = opt(5.0, "How often the file's modification time is checked")
    alarm: AlarmConfig = opt(doc="Hysteresis, k-of-n confirmation and severity", factory=AlarmConfig)

    @property
    def model_name(self) -> str:
        return self.name or Path(self.path).stem

    def _validate(self) -> None:
        if not self.path:
            raise ConfigError("path", "is empty; give the ONNX model file")
        name = self.model_name
        if not name.replace("_", "").replace("-", "").replace(".", "").isalnum():
            raise ConfigError("name", f"{name!r} must be letters, digits, '-', '_' or '.'")
        if not 0.0 < self.target_false_alarm_rate < 0.5:
            raise ConfigError(
                "target_false_alarm_rate", f"{self.target_false_alarm_rate!r} must be in (0, 0.5)"
            )
        if self.threshold_margin < 0:
            raise ConfigError("threshold_margin", f"{self.threshold_margin!r} must be >= 0")
        if self.intra_op_threads < 1:
            raise ConfigError("intra_op_threads", f"{self.intra_op_threads!r} must be >= 1")


@dataclass(frozen=True)
class BaselineConfig:
    dir: str = opt("", "Folder of per-asset baseline files (default: <gateway.data_dir>/baselines)")
    commission_blocks: int = opt(
        600, "Learn a baseline automatically from an asset's first N good blocks when it has none (0 = off)"
    )
    min_blocks: int = opt(50, "Fewest healthy blocks a baseline may be learned from")
    scale_floor: float = opt(
        0.05, "Smallest robust scale, as a fraction of |median| (keeps near-constant features from exploding)"
    )
    scale_floor_abs: float = opt(1e-6, "Smallest robust scale in the feature's own units")
    sample_rows: int = opt(2048, "Healthy feature rows kept in the baseline file to calibrate thresholds")

    def _validate(self) -> None:
        if self.commission_blocks < 0:
            raise ConfigError("commission_blocks", f"{self.commission_blocks!r} must be >= 0")
        if self.min_blocks < 2:
            raise ConfigError("min_blocks", f"{self.min_blocks!r} must be >= 2")
        if 0 < self.commission_blocks < self.min_blocks:
            raise ConfigError(
                "commission_blocks", f"{self.commission_blocks!r} is below min_blocks ({self.min_blocks})"
            )
        if self.scale_floor < 0 or self.scale_floor_abs <= 0:
            raise ConfigError("scale_floor", "scale_floor must be >= 0 and scale_floor_abs > 0")
        if self.sample_rows < 10:
            raise ConfigError("sample_rows", f"{self.sample_rows!r} must be >= 10")
