"""The feature extractor: stages chosen from :class:`PipelineConfig`, one shared FFT per block.

``build(cfg)`` decides the feature set once. Features whose inputs the configuration cannot supply
are left out (a message per omission is logged at WARNING and kept in ``extractor.messages``): the
running-speed harmonics, bearing lines and orders need a speed (``rpm`` or ``block_speed``), bearing
lines need a bearing. ``names`` is then fixed for the life of the extractor, in the order of the
feature contract (docs/features.md).

Per block: the channels' quality is judged from values the features compute anyway — a NaN/inf
sample makes the DC bin non-finite; ``|x| >= clip_level`` marks clipping; ``rms == 0`` a flat
(dead) sensor; a unit that is not an acceleration is refused. Such a channel is BAD with a reason
and its features are NaN; other channels are untouched. A block that lacks the speed the
configuration promised (``block_speed`` without ``rpm``) gets NaN speed features and UNCERTAIN
quality. Plans (bins, windows) are cached per ``(fs, samples)``; ``transform`` may be called from
one worker thread at a time per extractor (plan creation is locked; the stages are read-only).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from ..errors import PipelineError
from ..types import FeatureFrame, Quality, WaveformBlock
from .base import F32, Spectrum, Stage, check_block, clone
from .bearings import BearingGeometry, lookup
from .cepstrum import Cepstrum
from .config import PipelineConfig
from .envelope import BEARING_FEATURES, Envelope
from .harmonics import Harmonics, OrderSpectrum
from .memory import keep_heap
from .time_domain import TimeDomain
from .velocity import UNIT_TO_MS2, Velocity
from .welch import WelchBands
from .zones import ZoneProfile, resolve

__all__ = ["BlockResult", "FeatureExtractor", "build"]

log = logging.getLogger(__name__)

_PLAN_CACHE = 4


@dataclass(frozen=True, slots=True)
class BlockResult:
    values: F32
    quality: np.ndarray
    reasons: tuple[str, ...]


def _pair(v: tuple[float, ...]) -> tuple[float, float]:
    return (float(v[0]), float(v[1]))


class FeatureExtractor:
    """Computes ``names`` for every channel of a block. Build it with :func:`build`."""

    def __init__(
        self,
        stages: list[Stage],
        *,
        units: str = "g",
        clip_level: float = 0.0,
        speed_stages: tuple[int, ...] = (),
        messages: tuple[str, ...] = (),
        zone_profile: ZoneProfile | None = None,
    ) -> None:
        self.stages = stages
        self.units = units
        self.clip_level = clip_level
        self.speed_stages = speed_stages
        self.messages = messages
        self.zone_profile = zone_profile
        raw = [name for st in stages for name in st.feature_names()]
        self.names: tuple[str, ...] = tuple(_contract_order(raw))
        self._order = np.array([raw.index(n) for n in self.names], dtype=np.intp)
        self._speed_cols = np.zeros(len(raw), dtype=bool)
        pos = 0
        for i, st in enumerate(stages):
            k = len(st.feature_names())
            if i in speed_stages:
                self._speed_cols[pos : pos + k] = True
            pos += k
        self._plans: OrderedDict[tuple[float, int], list[Stage]] = OrderedDict()
        self._lock = threading.Lock()
        self._unplannable: set[tuple[float, int]] = set()

    def __repr__(self) -> str:
        return f"FeatureExtractor({len(self.names)} features, stages={[type(s).__name__ for s in self.stages]})"

    def _fitted(self, x: F32, fs: float) -> list[Stage]:
        key = (float(fs), int(x.shape[1]))
        with self._lock:
            plan = self._plans.get(key)
            if plan is None:
                plan = [clone(st).fit(x, fs) for st in self.stages]
                self._plans[key] = plan
                while len(self._plans) > _PLAN_CACHE:
                    self._plans.popitem(last=False)
            else:
                self._plans.move_to_end(key)
            return plan

    def compute(
        self, x: F32, fs: float, *, units: tuple[str, ...] | None = None, speed_hz: float | None = None
    ) -> BlockResult:
        """Features of a ``(channels, samples)`` float32 array (``units`` per channel, default config)."""
        check_block(x)
        c = x.shape[0]
        units = units or (self.units,) * c
        plan = self._fitted(x, fs)
        s = Spectrum.of(x, fs)
        scale = np.array([UNIT_TO_MS2.get(u or self.units, np.nan) for u in units], dtype=np.float32)
        missing_speed = bool(self.speed_stages) and not (speed_hz and speed_hz > 0) and not any(
            getattr(self.stages[i], "rpm", 0) > 0 for i in self.speed_stages
        )
        parts = []
        for i, st in enumerate(plan):
            if missing_speed and i in self.speed_stages and not isinstance(st, Envelope):
                parts.append(np.full((c, len(st.feature_names())), np.nan, dtype=np.float32))
            else:  # the envelope reads NaN bearing lines itself when the speed is missing
                parts.append(st.transform(s, speed_hz=speed_hz, unit_scale=scale))
        values = np.concatenate(parts, axis=1)[:, self._order]
        quality = np.zeros(c, dtype=np.uint8)
        reasons = [""] * c
        bad = self._bad_channels(s, values, scale, units)
        for ch, why in bad.items():
            quality[ch] = Quality.BAD
            reasons[ch] = why
            values[ch] = np.nan
        if missing_speed:
            for ch in range(c):
                if quality[ch] == Quality.GOOD:
                    quality[ch] = Quality.UNCERTAIN
                    reasons[ch] = "no shaft speed for this block: speed features are NaN"
        return BlockResult(values, quality, tuple(reasons))

    def _bad_channels(self, s: Spectrum, values: F32, scale: F32, units: tuple[str, ...]) -> dict[int, str]:
        bad: dict[int, str] = {}
        rms = values[:, self.names.index("rms")] if "rms" in self.names else None
        if (
            self.clip_level <= 0
            and bool(np.isfinite(s.mean).all())
            and not bool(np.isnan(scale).any())
            and (rms is None or bool(rms.all()))
        ):
            return bad  # the common case: every channel good, no per-channel scan
        nonfinite = ~np.isfinite(s.mean)
        for ch in np.flatnonzero(np.isnan(scale)):
            bad[int(ch)] = f"unit {units[ch]!r} is not an acceleration unit (g, m/s2)"
        for ch in np.flatnonzero(nonfinite):
            bad[int(ch)] = "non-finite samples (NaN or inf) in block"
        if self.clip_level > 0:
            with np.errstate(invalid="ignore"):
                peak_raw = np.maximum(s.x.max(axis=1), -s.x.min(axis=1))
            for ch in np.flatnonzero(peak_raw >= self.clip_level):
                bad.setdefault(int(ch), f"clipped: |x| reached {float(peak_raw[ch]):g} >= clip_level {self.clip_level:g}")
        if rms is not None:
            for ch in np.flatnonzero(rms == 0):
                bad.setdefault(int(ch), "flat signal (rms = 0): sensor dead or disconnected")
        return bad

    def transform(self, block: WaveformBlock) -> FeatureFrame:
        """The FeatureFrame of one analysis window.

        Never raises for data reasons: a block marked BAD, or one the configured features cannot be
        planned for (e.g. too short for the envelope band), gives an all-BAD frame with the reason
        (the latter also logged at ERROR once per block shape, since its features are lost).
        """
        if block.quality == Quality.BAD:
            return self._bad_frame(block, block.reason or "block marked bad")
        try:
            r = self.compute(block.data, block.fs, units=block.units, speed_hz=block.speed_hz)
        except PipelineError as exc:
            key = (float(block.fs), int(block.data.shape[1]))
            if key not in self._unplannable:
                self._unplannable.add(key)
                log.error("pipeline: blocks of %d samples at %g Hz from %s get no features: %s",
                          key[1], key[0], block.asset, exc)
            return self._bad_frame(block, f"features not computable for this block: {exc}")
        return FeatureFrame(
            asset=block.asset, values=r.values, names=self.names, channels=block.channels,
            t0=block.t0, seq=block.seq, quality=r.quality, reasons=r.reasons,
        )

    def _bad_frame(self, block: WaveformBlock, reason: str) -> FeatureFrame:
        c = block.data.shape[0]
        return FeatureFrame(
            asset=block.asset, values=np.full((c, len(self.names)), np.nan, dtype=np.float32),
            names=self.names, channels=block.channels, t0=block.t0, seq=block.seq,
            quality=np.full(c, Quality.BAD, dtype=np.uint8), reasons=(reason,) * c,
        )


_CONTRACT_PREFIX = ("sk_", "cep_", "order_")


def _contract_order(raw: list[str]) -> list[str]:
    core = [n for n in raw if not n.startswith(_CONTRACT_PREFIX)]
    full = [n for p in _CONTRACT_PREFIX for n in raw if n.startswith(p)]
    return core + full


def _geometry(cfg: PipelineConfig) -> BearingGeometry | None:
    if cfg.bearing:
        return lookup(cfg.bearing)
    g = cfg.bearing_geometry
    if g is None:
        return None
    return BearingGeometry(g.name, g.n_elements, g.element_diameter, g.pitch_diameter, g.contact_angle_deg)


def build(cfg: PipelineConfig | None = None) -> FeatureExtractor:
    """A :class:`FeatureExtractor` for ``cfg`` (defaults if ``None``); logs what it left out."""
    cfg = cfg or PipelineConfig()
    if cfg.keep_heap:
        keep_heap()
    user = {k: ZoneProfile(k, _triple(t.bounds_mm_s), t.provenance) for k, t in cfg.zone_tables.items()}
    zone = resolve(cfg.zone_profile, user)
    has_speed = cfg.rpm > 0 or cfg.block_speed
    geometry = _geometry(cfg)
    messages: list[str] = []
    stages: list[Stage] = [
        TimeDomain(),
        Velocity(band_hz=_pair(cfg.velocity_band_hz), units=cfg.units, zone_profile=zone),
        WelchBands(bands_hz=tuple(_pair(b) for b in cfg.bands_hz), nperseg=cfg.welch_nperseg,
                   spectral_kurtosis=cfg.spectral_kurtosis),
    ]
    speed_stages: list[int] = []
    if cfg.harmonics > 0:
        if has_speed:
            speed_stages.append(len(stages))
            stages.append(Harmonics(n=cfg.harmonics, search_bins=cfg.harmonic_search_bins, rpm=cfg.rpm))
        else:
            messages.append(f"h1x_amp..h{cfg.harmonics}x_amp disabled: no shaft speed (set pipeline.rpm or pipeline.block_speed)")
    if geometry is not None and not has_speed:
        messages.append(f"{', '.join(BEARING_FEATURES)} disabled: bearing {geometry.name} given but no shaft speed "
                        "(set pipeline.rpm or pipeline.block_speed)")
        geometry = None
    elif geometry is None:
        messages.append(f"{', '.join(BEARING_FEATURES)} disabled: no bearing (set pipeline.bearing or pipeline.bearing_geometry)")
    env = Envelope(
        band_hz=_pair(cfg.envelope_band_hz) if cfg.envelope_band_hz else None,
        squared=cfg.squared_envelope, geometry=geometry, rpm=cfg.rpm, slip_tolerance=cfg.slip_tolerance,
        bearing_harmonics=cfg.bearing_harmonics, peak_range_hz=_pair(cfg.env_peak_range_hz),
        kurtogram_levels=cfg.kurtogram_levels, max_env_hz=_max_env_hz(cfg, geometry),
    )
    if geometry is not None:
        speed_stages.append(len(stages))
    stages.append(env)
    if cfg.cepstrum:
        stages.append(Cepstrum(range_hz=_pair(cfg.cepstrum_range_hz)))
    if cfg.orders > 0:
        if has_speed:
            speed_stages.append(len(stages))
            stages.append(OrderSpectrum(n=cfg.orders, rpm=cfg.rpm))
        else:
            messages.append(f"order_1_amp..order_{cfg.orders}_amp disabled: no shaft speed")
    for m in messages:
        log.warning("pipeline: %s", m)
    return FeatureExtractor(stages, units=cfg.units, clip_level=cfg.clip_level, speed_stages=tuple(speed_stages),
                            messages=tuple(messages), zone_profile=zone)


def _max_env_hz(cfg: PipelineConfig, geometry: BearingGeometry | None) -> float:
    """Envelope spectrum range: 1 kHz, or more if the fixed speed puts bearing harmonics above it."""
    top = 1000.0
    if geometry is not None and cfg.rpm > 0:
        m = geometry.multipliers()
        top = max(top, 1.1 * cfg.bearing_harmonics * max(m.bpfi, m.bpfo, m.bsf) * cfg.rpm / 60)
    return top


def _triple(b: tuple[float, ...]) -> tuple[float, float, float]:
    if len(b) != 3:
        raise PipelineError(f"zone table needs 3 bounds, got {b!r}")
    return (float(b[0]), float(b[1]), float(b[2]))
