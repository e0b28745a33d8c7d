"""Alarm logic on anomaly scores: k-of-n confirmation, hysteresis, severity, velocity-zone escalation.

One :class:`AlarmBank` holds the state of every channel of one asset for one model, as arrays:

* **raise** when at least ``k`` of the last ``n`` blocks scored at or above the threshold;
* **clear** after ``clear_blocks`` consecutive blocks below the clear level
  (``threshold - hysteresis x (threshold - healthy median)``, or an explicit ``clear_threshold``);
  a NaN score (channel not scored) neither confirms nor clears;
* **severity** from the exceedance ``(score - median) / (threshold - median)``: WARNING at 1,
  ALARM from ``alarm_factor``, CRITICAL from ``critical_factor``; the velocity zone escalates it
  (zone C -> at least ALARM, zone D -> CRITICAL). A rise in severity during an active alarm emits another
  ``alarm_raised`` event with ``data["escalated"] = True``.

Events carry the evidence: score, threshold, clear level, exceedance, zone, and the top contributing
features (largest |z| of the model's normalised inputs) supplied by the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ..types import Event, EventKind, Severity
from .config import AlarmConfig

__all__ = ["AlarmBank", "severity_of"]

F32 = npt.NDArray[np.float32]
Evidence = Callable[[int], list[dict[str, Any]]]
_ZONE_LETTER = "ABCD"


def severity_of(exceedance: float, zone: float, cfg: AlarmConfig) -> Severity:
    """Severity of an active alarm from its exceedance and the channel's velocity zone (0..3 = A..D)."""
    sev = Severity.WARNING
    if exceedance >= cfg.critical_factor:
        sev = Severity.CRITICAL
    elif exceedance >= cfg.alarm_factor:
        sev = Severity.ALARM
    if cfg.zone_escalation and np.isfinite(zone):
        if zone >= 3:
            sev = Severity.CRITICAL
        elif zone >= 2:
            sev = max(sev, Severity.ALARM)
    return sev


class AlarmBank:
    """Alarm state of every channel of one asset for one model."""

    def __init__(self, cfg: AlarmConfig, *, asset: str, model: str, channels: Sequence[str]) -> None:
        self.cfg = cfg
        self.asset = asset
        self.model = model
        self.channels = tuple(channels)
        c = len(self.channels)
        self._hist = np.zeros((c, cfg.n), dtype=bool)
        self._pos = 0
        self._below = np.zeros(c, dtype=np.int32)
        self.active = np.zeros(c, dtype=bool)
        self._any_active = False  # == self.active.any(), kept so the healthy path skips that reduction
        self._quiet = 0  # consecutive blocks with no channel at or above the threshold
        self.severity = np.zeros(c, dtype=np.int8)

    def __repr__(self) -> str:
        on = [ch for ch, a in zip(self.channels, self.active, strict=True) if a]
        return f"AlarmBank({self.asset!r}, model={self.model!r}, active={on})"

    @property
    def any_active(self) -> bool:
        return self._any_active

    def quiet(self) -> None:
        """Advance by one block in which no channel reached the threshold, while no alarm is active.

        Same state as ``update`` with such a block (which would emit nothing), without its numpy calls
        once the whole k-of-n window is already quiet.
        """
        if self._quiet < self.cfg.n:
            self._hist[:, self._pos] = False
            self._quiet += 1
        self._pos = (self._pos + 1) % self.cfg.n

    def clear_level(self, threshold: float, centre: float) -> float:
        if self.cfg.clear_threshold is not None:
            return min(self.cfg.clear_threshold, threshold)
        return threshold - self.cfg.hysteresis * max(threshold - centre, 0.0)

    def update(
        self,
        scores: F32,
        *,
        threshold: float,
        centre: float,
        zone: F32 | None = None,
        ts: float = 0.0,
        seq: int = -1,
        evidence: Evidence | None = None,
    ) -> list[Event]:
        """Advance by one block of ``scores`` (one per channel); return raised/cleared events."""
        cfg = self.cfg
        # Written straight into the ring buffer's column (one ufunc, no temporary); NaN compares False.
        above = np.greater_equal(scores, threshold, out=self._hist[:, self._pos])
        self._pos = (self._pos + 1) % cfg.n
        if True not in above.tolist():  # tolist: cheaper than .any() for a few rows
            self._quiet += 1
            if not self._any_active:
                return []  # the common healthy case: nothing to confirm, nothing to clear
        else:
            self._quiet = 0
        s = np.asarray(scores, dtype=np.float64)
        finite = np.isfinite(s)
        confirmed = self._hist.sum(axis=1) >= cfg.k
        clear_at = self.clear_level(threshold, centre)
        below = finite & (s < clear_at)
        self._below = np.where(below, self._below + 1, np.where(finite, 0, self._below))
        denom = threshold - centre
        zones = np.full(len(s), np.nan) if zone is None else np.asarray(zone, dtype=np.float64)

        events: list[Event] = []
        for i in np.flatnonzero(confirmed | self.active).tolist():
            exceed = float((s[i] - centre) / denom) if denom > 0 and finite[i] else float("nan")
            if not self.active[i]:
                sev = severity_of(exceed if np.isfinite(exceed) else 1.0, zones[i], cfg)
                self.active[i] = True
                self.severity[i] = sev
                self._below[i] = 0
                events.append(self._event(EventKind.ALARM_RAISED, i, sev, s[i], threshold, clear_at, exceed,
                                          zones[i], ts, seq, evidence, escalated=False))
            elif self._below[i] >= cfg.clear_blocks:
                self.active[i] = False
                self._hist[i] = False
                self._below[i] = 0
                self.severity[i] = 0
                events.append(self._event(EventKind.ALARM_CLEARED, i, Severity.INFO, s[i], threshold, clear_at,
                                          exceed, zones[i], ts, seq, None, escalated=False))
            elif finite[i]:
                sev = severity_of(exceed if np.isfinite(exceed) else 1.0, zones[i], cfg)
                if s[i] >= threshold and sev > self.severity[i]:
                    self.severity[i] = sev
                    events.append(self._event(EventKind.ALARM_RAISED, i, sev, s[i], threshold, clear_at,
                                              exceed, zones[i], ts, seq, evidence, escalated=True))
        self._any_active = bool(self.active.any())
        return events

    def _event(
        self, kind: EventKind, i: int, sev: Severity, score: float, threshold: float, clear_at: float,
        exceed: float, zone: float, ts: float, seq: int, evidence: Evidence | None, *, escalated: bool,
    ) -> Event:
        channel = self.channels[i]
        zone_txt = _ZONE_LETTER[int(zone)] if np.isfinite(zone) and 0 <= zone <= 3 else None
        data: dict[str, Any] = {
            "asset": self.asset,
            "channel": channel,
            "model": self.model,
            "score": None if not np.isfinite(score) else float(score),
            "threshold": float(threshold),
            "clear_level": float(clear_at),
            "exceedance": None if not np.isfinite(exceed) else round(float(exceed), 4),
            "zone": zone_txt,
            "seq": seq,
        }
        if kind is EventKind.ALARM_RAISED:
            data["escalated"] = escalated
            data["top_features"] = evidence(i) if evidence is not None and self.cfg.top_features else []
            top = ", ".join(f"{f['name']} z={f['z']:+.1f}" for f in data["top_features"])
            verb = "escalated to" if escalated else "raised"
            msg = (
                f"{self.asset}/{channel}: anomaly alarm {verb} {sev.name} by model {self.model} "
                f"(score {score:.4g} >= threshold {threshold:.4g}"
                + (f", zone {zone_txt}" if zone_txt else "") + (f"; top: {top}" if top else "") + ")"
            )
        else:
            msg = (
                f"{self.asset}/{channel}: anomaly alarm cleared for model {self.model} "
                f"(score {score:.4g} < clear level {clear_at:.4g} for {self.cfg.clear_blocks} blocks)"
            )
        return Event(kind=kind, source=f"{self.asset}/{channel}", message=msg, severity=sev, ts=ts, data=data)
