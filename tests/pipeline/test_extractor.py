"""FeatureExtractor built from config: names contract, build-time omissions, per-channel quality."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest

from edgekit.config.parse import parse
from edgekit.errors import ConfigError
from edgekit.pipeline import PipelineConfig, build
from edgekit.types import Quality, WaveformBlock

CORE = (
    "rms", "peak", "peak_to_peak", "crest_factor", "kurtosis", "skewness", "shape_factor",
    "impulse_factor", "clearance_factor", "velocity_rms_mm_s", "zone",
    "band_10_1000_hz", "band_1000_2000_hz", "band_2000_5000_hz", "band_5000_10000_hz",
    "h1x_amp", "h2x_amp", "h3x_amp", "h4x_amp",
    "env_peak_hz", "env_peak_amp", "env_bpfo_amp", "env_bpfi_amp", "env_bsf_amp", "env_ftf_amp",
)
FS = 25600.0


def cfg(**kw: object) -> PipelineConfig:
    return parse(PipelineConfig, kw)


def block(x: np.ndarray, *, speed_hz: float | None = None, units: str = "g") -> WaveformBlock:
    c = x.shape[0]
    return WaveformBlock("pump-1", x, FS, 100.0, 7, tuple(f"ch{i}" for i in range(c)), (units,) * c, speed_hz)


@pytest.fixture
def data() -> np.ndarray:
    return np.random.default_rng(2).standard_normal((4, 8192)).astype(np.float32)


def test_full_contract_names_in_order() -> None:
    ex = build(cfg(rpm=1480.0, bearing="6205"))
    assert ex.names == CORE
    assert ex.messages == ()
    full = build(cfg(rpm=1480.0, bearing="6205", spectral_kurtosis=True, cepstrum=True, orders=3))
    assert full.names == CORE + ("sk_max", "sk_peak_hz", "cep_peak_quefrency_s", "cep_peak_amp",
                                 "order_1_amp", "order_2_amp", "order_3_amp")


def test_missing_speed_and_bearing_are_left_out_with_a_message(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="edgekit.pipeline.extractor"):
        ex = build(PipelineConfig())
    assert not any(n.startswith(("h1x", "env_bp", "env_ftf", "env_bsf")) for n in ex.names)
    assert "env_peak_hz" in ex.names and "zone" in ex.names
    assert any("no shaft speed" in m and "h1x_amp" in m for m in ex.messages)
    assert any("no bearing" in m for m in ex.messages)
    assert len(caplog.records) == len(ex.messages) == 2
    ex2 = build(cfg(bearing="6203"))  # geometry without speed
    assert "env_bpfo_amp" not in ex2.names
    assert any("6203 given but no shaft speed" in m for m in ex2.messages)
    geo = build(cfg(block_speed=True, bearing_geometry={"n_elements": 9, "element_diameter": 7.94, "pitch_diameter": 39.04}))
    assert "env_bpfi_amp" in geo.names and "h1x_amp" in geo.names


def test_bad_config_names_the_key() -> None:
    with pytest.raises(ConfigError, match="bearing.*7777.*known: 6203"):
        cfg(bearing="7777")
    with pytest.raises(ConfigError, match="zone_profile.*nope"):
        cfg(zone_profile="nope")
    with pytest.raises(ConfigError, match=r"bands_hz\[1\]"):
        cfg(bands_hz=[[10, 100], [200, 100]])
    with pytest.raises(ConfigError, match="overlap"):
        cfg(overlap=1.0)
    ex = build(cfg(zone_tables={"pump": {"bounds_mm_s": [1.0, 2.0, 3.0], "provenance": "vendor sheet"}}, zone_profile="pump"))
    assert ex.zone_profile is not None and ex.zone_profile.provenance == "vendor sheet"


def test_bad_channels_are_isolated(data: np.ndarray) -> None:
    ex = build(cfg(rpm=1480.0, bearing="6205", clip_level=8.0))
    clean = ex.transform(block(data))
    assert (clean.quality == Quality.GOOD).all() and np.isfinite(clean.values).all()
    x = data.copy()
    x[0, 100] = np.nan
    x[1, 5] = np.inf
    x[2, 7] = 9.0  # clipped
    x[3] = 0.0  # flat
    x = np.vstack([x, data[:1]])
    frame = ex.transform(block(x))
    assert list(frame.quality) == [Quality.BAD] * 4 + [Quality.GOOD]
    assert "NaN or inf" in frame.reasons[0] and "NaN or inf" in frame.reasons[1]
    assert "clipped" in frame.reasons[2] and "flat" in frame.reasons[3]
    assert np.isnan(frame.values[:4]).all()
    np.testing.assert_allclose(frame.values[4], clean.values[0], rtol=1e-5)


def test_non_acceleration_unit_is_bad(data: np.ndarray) -> None:
    ex = build(PipelineConfig())
    frame = ex.transform(block(data, units="mm/s"))
    assert (frame.quality == Quality.BAD).all() and "not an acceleration unit" in frame.reasons[0]
    si = ex.transform(block(data, units="m/s2")).column("velocity_rms_mm_s")
    g = ex.transform(block(data, units="g")).column("velocity_rms_mm_s")
    np.testing.assert_allclose(g, si * 9.80665, rtol=1e-6)


def test_block_speed_missing_at_runtime(data: np.ndarray) -> None:
    ex = build(cfg(block_speed=True, bearing="6205"))
    ok = ex.transform(block(data, speed_hz=24.9))
    assert (ok.quality == Quality.GOOD).all() and np.isfinite(ok.values).all()
    frame = ex.transform(block(data))
    assert (frame.quality == Quality.UNCERTAIN).all() and "no shaft speed" in frame.reasons[0]
    speed_cols = [i for i, n in enumerate(ex.names) if n.startswith(("h", "env_bp", "env_bs", "env_ft"))]
    assert np.isnan(frame.values[:, speed_cols]).all()
    others = [i for i in range(len(ex.names)) if i not in speed_cols]
    np.testing.assert_array_equal(frame.values[:, others], ok.values[:, others])


def test_frame_carries_block_identity(data: np.ndarray) -> None:
    ex = build(PipelineConfig())
    frame = ex.transform(block(data))
    assert frame.asset == "pump-1" and frame.seq == 7 and frame.t0 == 100.0
    assert frame.values.shape == (4, len(ex.names)) and frame.values.dtype == np.float32
    assert frame.channels == ("ch0", "ch1", "ch2", "ch3")
    bad = WaveformBlock("pump-1", data, FS, 0.0, 8, ("a", "b", "c", "d"), ("g",) * 4, quality=Quality.BAD, reason="device timeout")
    out = ex.transform(bad)
    assert (out.quality == Quality.BAD).all() and out.reasons[0] == "device timeout" and np.isnan(out.values).all()


def test_worker_threads_get_identical_results(data: np.ndarray) -> None:
    ex = build(cfg(rpm=1480.0, bearing="6205"))
    blocks = [block(np.roll(data, k, axis=1)) for k in range(6)]
    expected = [ex.transform(b).values for b in blocks]
    fresh = build(cfg(rpm=1480.0, bearing="6205"))  # plans are created under contention
    results: dict[int, list[np.ndarray]] = {}

    def work(i: int) -> None:
        results[i] = [fresh.transform(b).values for b in blocks]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got in results.values():
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_array_equal(a, b)


def test_per_speed_read_plans_follow_the_block_speed(data: np.ndarray) -> None:
    # Harmonics and bearing lines cache their bins per shaft speed (at most 16 at a time): a reused
    # extractor fed many different speeds, revisiting some, matches a fresh extractor every time.
    ex = build(cfg(block_speed=True, bearing="6205"))
    speeds = [20.0 + 1.7 * i for i in range(20)] + [20.0, 24.81, 21.7]
    speed_cols = [i for i, n in enumerate(ex.names) if n.startswith(("h", "env_bp", "env_bs", "env_ft"))]
    seen = set()
    for v in speeds:
        got = ex.transform(block(data, speed_hz=v)).values
        want = build(cfg(block_speed=True, bearing="6205")).transform(block(data, speed_hz=v)).values
        np.testing.assert_array_equal(got, want)
        seen.add(got[0, speed_cols].tobytes())
    assert len(seen) > 15  # the speed really moves the harmonic and bearing-line amplitudes


def test_plan_cache_handles_changing_sizes(data: np.ndarray) -> None:
    ex = build(PipelineConfig())
    for n in (4096, 8192, 6000, 4096, 5000, 7000, 8192):
        frame = ex.transform(block(np.ascontiguousarray(data[:, :n])))
        assert np.isfinite(frame.values).all()
    assert len(ex._plans) <= 4


def test_keep_heap_is_idempotent_on_glibc() -> None:
    import platform

    from edgekit.pipeline.memory import keep_heap

    first = keep_heap()
    assert keep_heap() == first
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert first is True


def test_unplannable_block_gives_bad_frame_not_exception(caplog: pytest.LogCaptureFixture) -> None:
    ex = build(cfg(envelope_band_hz=[2000.0, 2100.0]))  # 100 Hz band: too few bins for short blocks
    short = np.random.default_rng(0).standard_normal((2, 256)).astype(np.float32)
    with caplog.at_level(logging.ERROR, logger="edgekit.pipeline.extractor"):
        a = ex.transform(block(short))
        b = ex.transform(block(short))
    assert (a.quality == Quality.BAD).all() and "too few bins" in a.reasons[0] and np.isnan(a.values).all()
    assert (b.quality == Quality.BAD).all()
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1  # once per block shape
    long = np.random.default_rng(0).standard_normal((2, 65536)).astype(np.float32)
    assert (ex.transform(block(long)).quality == Quality.GOOD).all()


def test_large_dc_offset_does_not_cost_precision() -> None:
    n = 8192
    t = np.arange(n) / FS
    x = (1.0 + 0.01 * np.sin(2 * np.pi * 100 * t)).astype(np.float32)[None]  # 1 g gravity offset
    f = build(PipelineConfig()).compute(x, FS)
    names = build(PipelineConfig()).names
    vals = dict(zip(names, f.values[0], strict=True))
    assert vals["rms"] == pytest.approx(0.01 / np.sqrt(2), rel=1e-3)
    assert vals["kurtosis"] == pytest.approx(1.5, rel=1e-2)
    assert vals["peak"] == pytest.approx(0.01, rel=1e-3)
