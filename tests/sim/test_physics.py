"""Physics of the simulated vibration, checked with independent numpy DSP (tests/sim/sim_dsp.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sim_dsp import G, envelope_spectrum, line_amplitude, velocity_rms_mm_s

from edgekit.sim import BEARINGS, BearingGeometry, FaultSpec, MachineSignal

FS = 25600.0


def record(sig: MachineSignal, start: int = 0, blocks: int = 4, ch: int = 0) -> np.ndarray:
    return np.concatenate([sig.block(k)[ch] for k in range(start, start + blocks)])


@pytest.mark.parametrize(
    ("name", "expected"),
    [("6205", (0.3983, 3.5848, 5.4152, 2.3567)), ("6203", (0.3817, 3.0530, 4.9469, 1.9937))],
)
def test_bearing_multipliers_match_reference(name: str, expected: tuple[float, ...]) -> None:
    b = BEARINGS[name]
    got = (b.ftf(), b.bpfo(), b.bpfi(), b.bsf())
    assert got == pytest.approx(expected, abs=6e-4)
    assert b.bpfo(25.0) == pytest.approx(25.0 * expected[1], abs=0.02)


def test_bad_geometry_and_fault_are_rejected() -> None:
    with pytest.raises(ValueError, match="ball_d < pitch_d"):
        BearingGeometry(9, 2.0, 1.0)
    with pytest.raises(ValueError, match="not one of"):
        FaultSpec("rust", 1.0)
    with pytest.raises(ValueError, match="gear_teeth"):
        MachineSignal(faults=[FaultSpec("gear", 0.5)])


def test_block_shape_dtype_and_determinism() -> None:
    a = MachineSignal(seed=5, faults=[FaultSpec("outer_race", 0.5)])
    b = MachineSignal(seed=5, faults=[FaultSpec("outer_race", 0.5)])
    x = a.block(3)
    assert x.shape == (2, 8192) and x.dtype == np.float32
    assert np.array_equal(x, b.block(3))
    assert np.array_equal(a.block(7), a.block(7))  # a pure function of seq
    assert not np.array_equal(x, MachineSignal(seed=6, faults=[FaultSpec("outer_race", 0.5)]).block(3))
    assert not np.array_equal(a.block(3), a.block(4))


def test_fault_schedule_step_and_ramp() -> None:
    step = FaultSpec("unbalance", 0.8, onset_s=10.0)
    ramp = FaultSpec("unbalance", 0.8, onset_s=10.0, ramp_s=100.0)
    assert [step.severity_at(t) for t in (9.9, 10.0, 500.0)] == [0.0, 0.8, 0.8]
    assert [ramp.severity_at(t) for t in (9.9, 10.0, 60.0, 110.0, 1e6)] == pytest.approx([0, 0, 0.4, 0.8, 0.8])
    sig = MachineSignal(faults=[ramp])
    assert sig.severity_at(60.0) == pytest.approx(0.4)


def test_speed_varies_slowly_and_angle_stays_continuous_across_setpoint_changes() -> None:
    sig = MachineSignal(seed=1)
    speeds = np.array([sig.speed_hz(k) for k in range(0, 400, 10)])
    assert np.all(np.abs(speeds / (1480 / 60) - 1) < 0.01)
    assert speeds.std() > 0  # it does vary
    t = 12.5
    before = float(sig.theta(t))
    sig.set_rpm(1200.0, at_t=t)
    assert float(sig.theta(t)) == pytest.approx(before, abs=1e-9)
    assert sig.speed_hz_at(t + 1.0) == pytest.approx(20.0, rel=0.01)


def test_unbalance_shows_the_1x_line() -> None:
    healthy = MachineSignal(seed=2)
    faulty = MachineSignal(seed=2, faults=[FaultSpec("unbalance", 1.0)])
    f_r = healthy.speed_hz(1) + 0.0
    x_h, x_f = record(healthy), record(faulty)
    f_found, a_f = line_amplitude(x_f, FS, f_r)
    _, a_h = line_amplitude(x_h, FS, f_r)
    assert abs(f_found - f_r) <= 2 * FS / x_f.size  # within two bins of 1×
    assert a_f > 5 * a_h
    # 1× dominates everything else below 1 kHz
    _, a_2x = line_amplitude(x_f, FS, 2 * f_r)
    assert a_f > 5 * a_2x


def test_misalignment_raises_2x_mostly_on_the_axial_channel() -> None:
    sig = MachineSignal(seed=3, faults=[FaultSpec("misalignment", 1.0)])
    f_r = sig.speed_hz(1)
    _, a2_radial = line_amplitude(record(sig, ch=0), FS, 2 * f_r)
    _, a2_axial = line_amplitude(record(sig, ch=1), FS, 2 * f_r)
    _, a1_axial = line_amplitude(record(sig, ch=1), FS, f_r)
    assert a2_axial > a2_radial and a2_axial > a1_axial


def _env_peak(sig: MachineSignal) -> tuple[float, np.ndarray, np.ndarray]:
    f, e = envelope_spectrum(record(sig, blocks=6), FS)
    band = (f > 20) & (f < 400)
    return float(f[band][np.argmax(e[band])]), f, e


@pytest.mark.parametrize(("kind", "mult_name"), [("outer_race", "bpfo"), ("inner_race", "bpfi")])
def test_bearing_fault_envelope_peaks_at_its_defect_frequency(kind: str, mult_name: str) -> None:
    sig = MachineSignal(seed=4, faults=[FaultSpec(kind, 0.3)])
    f_r = np.mean([sig.speed_hz(k) for k in range(6)])
    target = getattr(sig.bearing, mult_name)(f_r)
    peak, _, _ = _env_peak(sig)
    assert peak == pytest.approx(target, rel=0.02)


def test_inner_race_envelope_has_shaft_sidebands() -> None:
    sig = MachineSignal(seed=4, faults=[FaultSpec("inner_race", 0.5)])
    f_r = sig.speed_hz(2)
    _, f, e = _env_peak(sig)
    bpfi = sig.bearing.bpfi(f_r) * (1 - sig.slip)
    floor = np.median(e[(f > 20) & (f < 400)])
    for side in (bpfi - f_r, bpfi + f_r):
        k = np.argmin(np.abs(f - side))
        assert e[k - 2:k + 3].max() > 5 * floor


def test_healthy_envelope_shows_neither_bpfo_nor_bpfi() -> None:
    for seed in (1, 2, 3):
        sig = MachineSignal(seed=seed)
        f_r = sig.speed_hz(2)
        _, f, e = _env_peak(sig)
        floor = np.median(e[(f > 20) & (f < 400)])
        for mult in (sig.bearing.bpfo(), sig.bearing.bpfi()):
            near = (f > 0.97 * mult * f_r) & (f < 1.01 * mult * f_r)
            assert e[near].max() < 5 * floor
    faulty = MachineSignal(seed=1, faults=[FaultSpec("outer_race", 0.3)])
    _, f, e = _env_peak(faulty)
    near = (f > 0.97 * faulty.bearing.bpfo(faulty.speed_hz(2))) & (f < 1.01 * faulty.bearing.bpfo(faulty.speed_hz(2)))
    assert e[near].max() > 20 * np.median(e[(f > 20) & (f < 400)])


def test_velocity_rms_of_a_known_sine_matches_closed_form() -> None:
    n, f, a_g = 32768, 100.0, 0.5  # 100 Hz lies exactly on a bin of 32768 @ 25.6 kHz
    x = a_g * np.sin(2 * np.pi * f * np.arange(n) / FS)
    closed = a_g * G / (2 * np.pi * f) / math.sqrt(2) * 1000  # mm/s
    assert velocity_rms_mm_s(x, FS) == pytest.approx(closed, rel=1e-3)
    # Two sines add in power; a line outside 10–1000 Hz does not count.
    y = x + 0.2 * np.sin(2 * np.pi * 400.0 * np.arange(n) / FS) + 1.0 * np.sin(2 * np.pi * 3000.0 * np.arange(n) / FS)
    closed2 = math.hypot(closed, 0.2 * G / (2 * np.pi * 400.0) / math.sqrt(2) * 1000)
    assert velocity_rms_mm_s(y, FS) == pytest.approx(closed2, rel=1e-3)


def test_simulated_1x_velocity_matches_closed_form_of_its_line() -> None:
    sig = MachineSignal(seed=8, speed_wobble=0.0, noise_g=0.0, faults=[FaultSpec("unbalance", 1.0)])
    x = record(sig, blocks=8)
    f_r = sig.speed_hz(0)
    _, a1 = line_amplitude(x, FS, f_r)
    _, a2 = line_amplitude(x, FS, 2 * f_r)
    closed = math.hypot(a1 * G / (2 * np.pi * f_r), a2 * G / (4 * np.pi * f_r)) / math.sqrt(2) * 1000
    assert velocity_rms_mm_s(x, FS) == pytest.approx(closed, rel=0.03)


def test_velocity_zones_healthy_a_b_and_severe_faults_beyond_c() -> None:
    """ISO 10816-3 group 2 flexible: A/B 2.3, B/C 4.5, C/D 7.1 mm/s."""
    for seed in (1, 2):
        v = velocity_rms_mm_s(record(MachineSignal(seed=seed)), FS)
        assert 0.7 < v < 2.3
    for kind in ("unbalance", "misalignment", "outer_race", "looseness"):
        sig = MachineSignal(seed=1, faults=[FaultSpec(kind, 1.0)])
        v = max(velocity_rms_mm_s(record(sig, ch=c), FS) for c in (0, 1))
        assert v > 4.5, kind


def test_ball_fault_shows_bsf_family_in_the_envelope() -> None:
    sig = MachineSignal(seed=6, faults=[FaultSpec("ball", 0.6)])
    f_r = np.mean([sig.speed_hz(k) for k in range(6)])
    bsf = sig.bearing.bsf(f_r) * (1 - sig.slip)
    _, f, e = _env_peak(sig)
    floor = np.median(e[(f > 20) & (f < 400)])
    for line in (bsf, 2 * bsf):
        k = int(np.argmin(np.abs(f - line)))
        assert e[k - 3:k + 4].max() > 8 * floor


def test_gear_mesh_and_fault_sidebands() -> None:
    healthy = MachineSignal(seed=7, gear_teeth=27, speed_wobble=0.0)
    faulty = MachineSignal(seed=7, gear_teeth=27, speed_wobble=0.0, faults=[FaultSpec("gear", 0.8)])
    f_r = healthy.speed_hz(0)
    _, mesh = line_amplitude(record(healthy), FS, 27 * f_r)
    assert mesh > 0.1  # the mesh line is always there when a gear is fitted
    for side in (26, 28, 25, 29):
        _, a_h = line_amplitude(record(healthy), FS, side * f_r)
        _, a_f = line_amplitude(record(faulty), FS, side * f_r)
        assert a_f > 10 * a_h and a_f > 0.05


def test_stopped_machine_has_no_shaft_lines_and_process_follows() -> None:
    from edgekit.sim.config import MachineConfig
    from edgekit.sim.plant import SimMachine

    m = SimMachine(1, MachineConfig(faults=[]), seed=0)
    block, state, _ = m.compute(0)
    assert state.running and state.speed_rpm > 1400 and state.load_pct > 40
    temp0, energy0, hours0 = state.bearing_temp_c, state.energy_wh, state.run_hours
    for seq in range(1, 40):
        m._commit(seq - 1, block, state, 0.0)
        block, state, _ = m.compute(seq)
    assert state.energy_wh > energy0 and state.run_hours >= hours0
    m.setpoint_rpm = 0
    for seq in range(40, 80):  # 1480 r/min at 300 r/min/s needs ~5 s = 16 blocks
        m._commit(seq - 1, block, state, 0.0)
        block, state, _ = m.compute(seq)
    assert not state.running and state.speed_rpm == 0 and state.motor_current_a == 0
    assert state.bearing_temp_c < temp0  # cooling towards ambient
    _, a1 = line_amplitude(np.asarray(block[0], dtype=np.float64), FS, 1480 / 60)
    assert a1 < 0.005  # only noise left
    assert abs(float(np.sqrt(np.mean(block[0].astype(np.float64) ** 2))) - 0.03) < 0.005


def test_signal_is_frozen_for_the_model_zoo() -> None:
    """models/zoo is trained on these signals: a change here must come with a zoo rebuild
    (models/train) and a new golden below — never silently."""
    x = MachineSignal(seed=1, rpm=2960.0, faults=[FaultSpec("outer_race", 0.5), FaultSpec("unbalance", 0.3)]).block(3)
    x = x.astype(np.float64)
    golden = [[-0.0646702, 0.037243, 0.0652539, -0.0146045], [-0.0683514, -0.1119676, -0.0720581, -0.137814]]
    np.testing.assert_allclose(x[:, :4], golden, atol=2e-6)
    assert np.sqrt((x**2).mean(axis=1)).tolist() == pytest.approx([0.2640498, 0.2070444], rel=1e-5)


def test_process_counters_cover_skipped_blocks() -> None:
    from edgekit.sim.config import MachineConfig
    from edgekit.sim.plant import SimMachine

    a, b = SimMachine(1, MachineConfig(), seed=0), SimMachine(1, MachineConfig(), seed=0)
    e0 = a.truth().energy_wh
    for seq in range(0, 100):
        state_a = a.compute(seq)[1]
    state_b = b.compute(0)[1]
    state_b = b.compute(99)[1]  # skipped 1..98: the energy of that time is still counted
    assert state_a.energy_wh - e0 > 50  # ~17 kW for 32 s
    assert state_b.energy_wh - e0 == pytest.approx(state_a.energy_wh - e0, rel=0.03)
    assert state_b.total_rev == pytest.approx(state_a.total_rev, rel=1e-9)
