"""Alarm logic: k-of-n confirmation, hysteresis, clear counting, severity and zone escalation."""

from __future__ import annotations

import numpy as np

from edgekit.models import AlarmBank, AlarmConfig, severity_of
from edgekit.types import EventKind, Severity


def run(bank: AlarmBank, series: list[float], zone: float = np.nan, thr: float = 1.0) -> list[tuple[int, str, int]]:
    out = []
    for seq, s in enumerate(series):
        for ev in bank.update(np.array([s], np.float32), threshold=thr, centre=0.0,
                              zone=np.array([zone], np.float32), seq=seq,
                              evidence=lambda i: [{"name": "kurtosis", "z": 9.0, "value": 7.0}]):
            out.append((seq, ev.kind.value, int(ev.severity)))
    return out


def bank(**kw: object) -> AlarmBank:
    return AlarmBank(AlarmConfig(**kw), asset="fan", model="m", channels=["de"])  # type: ignore[arg-type]


def test_k_of_n_confirmation_ignores_isolated_spikes() -> None:
    b = bank(k=3, n=5)
    assert run(b, [0, 5, 0, 0, 5, 0, 0, 0, 5, 0]) == []  # never 3 in any 5
    b = bank(k=3, n=5)
    assert run(b, [0, 1.5, 0, 1.5, 0, 1.5]) == [(5, "alarm_raised", Severity.WARNING)]  # 3rd in a window of 5


def test_hysteresis_holds_the_alarm_between_the_levels_and_clears_after_clear_blocks() -> None:
    b = bank(k=1, n=1, hysteresis=0.2, clear_blocks=2)  # clear level 0.8
    events = run(b, [1.2, 0.9, 0.85, 0.9, 0.7, 0.9, 0.7, 0.7, 0.7])
    # 0.9/0.85 are below the threshold but above the clear level: no clear; 0.7 then 0.9 resets the count.
    assert events == [(0, "alarm_raised", Severity.WARNING), (7, "alarm_cleared", Severity.INFO)]
    assert not b.active[0]


def test_nan_scores_neither_confirm_nor_clear() -> None:
    b = bank(k=2, n=3, clear_blocks=2)
    nan = float("nan")
    assert run(b, [1.5, nan, 1.5, nan, 0, nan, 0]) == [(2, "alarm_raised", 1), (6, "alarm_cleared", 0)]


def test_severity_from_exceedance_and_escalation_event() -> None:
    b = bank(k=1, n=1, alarm_factor=2.0, critical_factor=4.0)
    events = run(b, [1.5, 2.5, 2.0, 5.0, 1.0])
    assert events == [(0, "alarm_raised", Severity.WARNING), (1, "alarm_raised", Severity.ALARM),
                      (3, "alarm_raised", Severity.CRITICAL)]


def test_velocity_zone_escalates_severity() -> None:
    cfg = AlarmConfig()
    assert severity_of(1.1, 0.0, cfg) is Severity.WARNING
    assert severity_of(1.1, 2.0, cfg) is Severity.ALARM
    assert severity_of(1.1, 3.0, cfg) is Severity.CRITICAL
    assert severity_of(1.1, 3.0, AlarmConfig(zone_escalation=False)) is Severity.WARNING
    assert run(bank(k=1, n=1), [1.5], zone=2.0) == [(0, "alarm_raised", Severity.ALARM)]


def test_event_carries_evidence() -> None:
    b = bank(k=1, n=1)
    (ev,) = b.update(np.array([3.0], np.float32), threshold=1.0, centre=0.5, zone=np.array([1.0], np.float32),
                     ts=123.0, seq=9, evidence=lambda i: [{"name": "kurtosis", "z": 9.0, "value": 7.0}])
    assert ev.kind is EventKind.ALARM_RAISED and ev.ts == 123.0 and ev.source == "fan/de"
    assert ev.data["score"] == 3.0 and ev.data["threshold"] == 1.0 and ev.data["exceedance"] == 5.0
    assert ev.data["zone"] == "B" and ev.data["seq"] == 9 and ev.data["model"] == "m"
    assert ev.data["top_features"][0]["name"] == "kurtosis"
    assert "kurtosis z=+9.0" in ev.message


def test_channels_are_independent() -> None:
    b = AlarmBank(AlarmConfig(k=1, n=1), asset="a", model="m", channels=["x", "y", "z"])
    evs = b.update(np.array([0.0, 2.0, np.nan], np.float32), threshold=1.0, centre=0.0)
    assert [e.data["channel"] for e in evs] == ["y"]
    assert b.active.tolist() == [False, True, False]


def test_quiet_blocks_leave_the_same_state_as_update() -> None:
    """``quiet()`` (the batched detector's shortcut) == ``update()`` with an all-below-threshold block."""
    rng = np.random.default_rng(3)
    cfg = AlarmConfig(k=2, n=4, clear_blocks=2)
    full = AlarmBank(cfg, asset="a", model="m", channels=["x", "y", "z"])
    fast = AlarmBank(cfg, asset="a", model="m", channels=["x", "y", "z"])
    shortcuts = raised = 0
    for seq in range(400):
        burst = (seq // 25) % 3 == 2  # stretches of anomalies: alarms raise and clear many times
        s = rng.uniform(0.0, 0.9, 3).astype(np.float32)
        if burst or rng.random() < 0.05:
            s[rng.integers(0, 3)] = rng.uniform(0.5, 3.0)
        if rng.random() < 0.05:
            s[rng.integers(0, 3)] = np.nan
        kw = {"threshold": 1.0, "centre": 0.2, "seq": seq}
        a = full.update(s, **kw)  # type: ignore[arg-type]
        if not fast.any_active and not bool((s >= 1.0).any()):
            fast.quiet()
            b = []
            shortcuts += 1
        else:
            b = fast.update(s, **kw)  # type: ignore[arg-type]
        assert [(e.kind, e.data["channel"], e.severity) for e in a] == [(e.kind, e.data["channel"], e.severity) for e in b]
        raised += sum(e.kind is EventKind.ALARM_RAISED for e in a)
        np.testing.assert_array_equal(full._hist, fast._hist)
        np.testing.assert_array_equal(full.active, fast.active)
        np.testing.assert_array_equal(full.severity, fast.severity)
        assert full.any_active == fast.any_active
    assert shortcuts > 100 and raised >= 5  # both paths were exercised
