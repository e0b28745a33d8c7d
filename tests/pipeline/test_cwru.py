"""Real-data oracle (CWRU, vibration.md): envelope lines of inner- and outer-race faults, healthy floor.

Noise-floor criterion: a bearing line is "above the floor" when the largest envelope amplitude within
±2 % of the defect frequency exceeds 4 x (≈ 12 dB) the median envelope amplitude over 5–500 Hz.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.signal as ss

from edgekit.config.parse import parse
from edgekit.pipeline import Envelope, PipelineConfig, Spectrum, build, lookup
from edgekit.pipeline.recording import load_recording

FS = 12000.0
BAND = (2000.0, 5500.0)
MULT = lookup("6205").multipliers()


def de_channel(cwru_dir: Path, name: str, fs: float) -> tuple[np.ndarray, float]:
    rec = load_recording(cwru_dir / name, fs=fs)
    de = rec.data[[i for i, c in enumerate(rec.channels) if c.endswith("_DE_time")]]
    if fs != FS:
        de = ss.resample_poly(de.astype(np.float64), int(FS), int(fs), axis=-1).astype(np.float32)
    return np.ascontiguousarray(de), rec.rpm


def line_to_floor(x: np.ndarray, rpm: float, mult: float) -> float:
    env = Envelope(band_hz=BAND).fit(x, FS)
    f, amp = env.spectrum(Spectrum.of(x, FS))
    fd = mult * rpm / 60
    line = amp[0, (f >= fd * 0.98) & (f <= fd * 1.02)].max()
    floor = np.median(amp[0, (f >= 5) & (f <= 500)])
    return float(line / floor)


@pytest.mark.parametrize(
    ("name", "rpm", "mult"),
    [("inner_race_007_0hp_12k.mat", 1797, MULT.bpfi), ("outer_race_007_at6_0hp_12k.mat", 1796, MULT.bpfo)],
)
def test_fault_records_strongest_envelope_line(cwru_dir: Path, name: str, rpm: float, mult: float) -> None:
    x, file_rpm = de_channel(cwru_dir, name, FS)
    assert file_rpm == rpm
    cfg = parse(PipelineConfig, {"envelope_band_hz": list(BAND), "bearing": "6205", "rpm": float(rpm)})
    ex = build(cfg)
    r = ex.compute(x, FS)
    f = dict(zip(ex.names, r.values[0], strict=True))
    expected = mult * rpm / 60
    assert abs(f["env_peak_hz"] / expected - 1) < 0.02, (f["env_peak_hz"], expected)
    assert line_to_floor(x, rpm, mult) > 4


def test_fault_lines_dominate_their_own_defect(cwru_dir: Path) -> None:
    cfg = parse(PipelineConfig, {"envelope_band_hz": list(BAND), "bearing": "6205", "rpm": 1797.0})
    ex = build(cfg)
    inner, _ = de_channel(cwru_dir, "inner_race_007_0hp_12k.mat", FS)
    outer, _ = de_channel(cwru_dir, "outer_race_007_at6_0hp_12k.mat", FS)
    fi = dict(zip(ex.names, ex.compute(inner, FS).values[0], strict=True))
    fo = dict(zip(ex.names, ex.compute(outer, FS).values[0], strict=True))
    assert fi["env_bpfi_amp"] > 2 * fi["env_bpfo_amp"]
    assert fo["env_bpfo_amp"] > 2 * fo["env_bpfi_amp"]
    assert fo["env_bpfo_amp"] > 5 * fi["env_bpfo_amp"]


def test_healthy_record_resampled_shows_no_bearing_line(cwru_dir: Path) -> None:
    x, rpm = de_channel(cwru_dir, "normal_0hp_48k.mat", 48000.0)
    assert rpm == 1796
    for mult in (MULT.bpfi, MULT.bpfo):
        assert line_to_floor(x, rpm, mult) < 4
    # and the fault records are far above the healthy one at their lines
    inner, _ = de_channel(cwru_dir, "inner_race_007_0hp_12k.mat", FS)
    assert line_to_floor(inner, 1797, MULT.bpfi) > 3 * line_to_floor(x, rpm, MULT.bpfi)


def test_time_domain_levels(cwru_dir: Path) -> None:
    ex = build(PipelineConfig(bands_hz=((10.0, 1000.0),)))
    expected = {  # whole record, drive end, g (vibration.md)
        ("normal_0hp_48k.mat", "X097_DE_time", 48000.0): (0.073, 2.76),
        ("inner_race_007_0hp_12k.mat", "X105_DE_time", FS): (0.291, 5.40),
        ("outer_race_007_at6_0hp_12k.mat", "X130_DE_time", FS): (0.669, 7.65),
        ("ball_007_0hp_12k.mat", "X118_DE_time", FS): (0.139, 2.98),
    }
    for (name, key, fs), (rms, kurt) in expected.items():
        rec = load_recording(cwru_dir / name, key=key, fs=fs)
        f = dict(zip(ex.names, ex.compute(rec.data, fs).values[0], strict=True))
        assert f["rms"] == pytest.approx(rms, rel=0.04), name
        assert f["kurtosis"] == pytest.approx(kurt, rel=0.01), name


@pytest.mark.parametrize(
    ("name", "rpm", "mult"),
    [("inner_race_007_0hp_12k.mat", 1797, MULT.bpfi), ("outer_race_007_at6_0hp_12k.mat", 1796, MULT.bpfo)],
)
def test_kurtogram_band_finds_the_same_lines(cwru_dir: Path, name: str, rpm: float, mult: float) -> None:
    x, _ = de_channel(cwru_dir, name, FS)
    ex = build(PipelineConfig(kurtogram_levels=3, bearing="6205", rpm=float(rpm)))
    f = dict(zip(ex.names, ex.compute(x, FS).values[0], strict=True))
    assert abs(f["env_peak_hz"] / (mult * rpm / 60) - 1) < 0.02
