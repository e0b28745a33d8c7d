"""Feature correctness: closed forms, scipy reference implementations, synthetic bearing faults."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal as ss
import scipy.stats as st

from edgekit.pipeline import (
    PROFILES,
    Cepstrum,
    Envelope,
    Harmonics,
    Spectrum,
    TimeDomain,
    Velocity,
    WelchBands,
    classify,
    lookup,
)
from edgekit.pipeline.spectral import FLATTOP, HANN, windowed_at
from edgekit.pipeline.time_domain import TIME_FEATURES

G = 9.80665


def tone(freq: float, fs: float, n: int, amp: float = 1.0, phase: float = 0.3) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(n) / fs + phase)).astype(np.float32)


def feats(stage, x: np.ndarray, fs: float, **kw) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    out = stage.fit(x, fs).transform(x, **kw)
    return dict(zip(stage.feature_names(), out.T, strict=True))


def test_sine_time_domain_closed_forms() -> None:
    fs, n, a = 10000.0, 10000, 2.5
    x = np.vstack([tone(5.0, fs, n, a), tone(5.0, fs, n, a) + np.float32(3.0)])  # DC offset removed
    f = feats(TimeDomain(), x, fs)
    mean_sqrt_sin = 2 / math.pi * math.sqrt(math.pi) * math.gamma(0.75) / (2 * math.gamma(1.25))
    expected = {
        "rms": a / math.sqrt(2), "peak": a, "peak_to_peak": 2 * a, "crest_factor": math.sqrt(2),
        "kurtosis": 1.5, "skewness": 0.0, "shape_factor": math.pi / (2 * math.sqrt(2)),
        "impulse_factor": math.pi / 2, "clearance_factor": 1 / mean_sqrt_sin**2,
    }
    for name, value in expected.items():
        np.testing.assert_allclose(f[name], value, rtol=2e-4, atol=2e-4, err_msg=name)


@pytest.mark.parametrize("n", [4096, 131072])
def test_time_domain_matches_scipy(n: int) -> None:
    rng = np.random.default_rng(3)
    x = np.vstack([
        rng.standard_normal(n), rng.standard_t(4, n) + 5.0, rng.exponential(1.0, n), rng.uniform(-1, 1, n),
    ]).astype(np.float32)
    f = feats(TimeDomain(), x, 1000.0)
    x64 = x.astype(np.float64)
    d = x64 - x64.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(f["kurtosis"], st.kurtosis(x64, axis=1, fisher=False), rtol=1e-4)
    np.testing.assert_allclose(f["skewness"], st.skew(x64, axis=1), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(f["rms"], np.sqrt(np.mean(d**2, axis=1)), rtol=1e-5)
    np.testing.assert_allclose(f["peak"], np.abs(d).max(axis=1), rtol=1e-5)
    np.testing.assert_allclose(f["clearance_factor"], np.abs(d).max(axis=1) / np.mean(np.sqrt(np.abs(d)), axis=1) ** 2, rtol=1e-4)
    assert list(f) == list(TIME_FEATURES)


@pytest.mark.parametrize(("freq", "rtol"), [(100.0, 1e-3), (100.37, 5e-3), (512.2, 5e-3)])
def test_velocity_of_acceleration_sine(freq: float, rtol: float) -> None:
    fs, n = 25600.0, 25600  # 1 Hz bins: 100 Hz is bin-centred, the others are not
    x = np.vstack([tone(freq, fs, n, 1.0), tone(freq, fs, n, G)])
    expected = G / (2 * math.pi * freq) / math.sqrt(2) * 1000  # mm/s rms of a 1 g peak sine
    v_g = feats(Velocity(units="g"), x[:1], fs)["velocity_rms_mm_s"]
    v_si = feats(Velocity(units="m/s2"), x[1:], fs)["velocity_rms_mm_s"]
    np.testing.assert_allclose(v_g, expected, rtol=rtol)
    np.testing.assert_allclose(v_si, expected, rtol=rtol)


def test_velocity_band_limits_and_parseval() -> None:
    fs, n = 25600.0, 25600
    inside = tone(200.0, fs, n) + tone(400.0, fs, n, 0.5)
    outside = tone(5.0, fs, n, 5.0) + tone(3000.0, fs, n, 5.0)
    x = np.vstack([inside, inside + outside])
    v = feats(Velocity(band_hz=(10.0, 1000.0)), x, fs)["velocity_rms_mm_s"]
    v1, v2 = (G / (2 * math.pi * f) * a / math.sqrt(2) * 1000 for f, a in ((200, 1), (400, 0.5)))
    np.testing.assert_allclose(v[0], math.hypot(v1, v2), rtol=1e-3)
    np.testing.assert_allclose(v[1], v[0], rtol=1e-3)  # out-of-band tones do not leak in


def test_zone_boundaries_every_profile() -> None:
    for profile in PROFILES.values():
        ab, bc, cd = profile.bounds_mm_s
        values = np.array([0, ab * 0.999, ab, bc * 0.999, bc, cd * 0.999, cd, 100, np.nan], dtype=np.float32)
        zones = classify(values, profile)
        np.testing.assert_array_equal(zones[:-1], [0, 0, 1, 1, 2, 2, 3, 3])
        assert np.isnan(zones[-1])
        assert "ISO" in profile.provenance
    assert PROFILES["iso10816-3-group1-rigid"].bounds_mm_s == (2.3, 4.5, 7.1)
    assert PROFILES["iso10816-1-class-iv"].bounds_mm_s == (2.8, 7.1, 18.0)
    fs, n = 25600.0, 25600  # a 4 mm/s rms tone is zone C in group 2 rigid (2.8 <= v < 4.5)
    f = 100.0
    amp_g = 4.0 / 1000 * math.sqrt(2) * 2 * math.pi * f / G
    out = feats(Velocity(), tone(f, fs, n, amp_g)[None], fs)
    assert out["zone"][0] == 2.0


@pytest.mark.parametrize(("n", "nperseg"), [(8192, 1024), (10001, 256), (3000, 4096)])
def test_welch_matches_scipy(n: int, nperseg: int) -> None:
    fs = 25600.0
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((3, n)) + np.array([[0.0], [2.0], [-7.0]])).astype(np.float32)
    x[2] += tone(1234.5, fs, n, 3.0) + np.linspace(0, 4, n, dtype=np.float32)
    bands = ((0.0, 100.0), (10.0, 1000.0), (1000.0, 2000.0), (2000.0, 5000.0), (5000.0, 12800.0))
    stage = WelchBands(bands_hz=bands, nperseg=nperseg).fit(x, fs)
    f_ref, p_ref = ss.welch(x.astype(np.float64), fs, nperseg=min(nperseg, n))
    f, p = stage.psd(Spectrum.of(x, fs))
    np.testing.assert_allclose(f, f_ref)
    np.testing.assert_allclose(p, p_ref, rtol=2e-3, atol=1e-6 * p_ref.max())
    out = stage.transform(x)
    df = f_ref[1] - f_ref[0]
    for j, (lo, hi) in enumerate(bands):
        ref = p_ref[:, (f_ref >= lo) & (f_ref < hi)].sum(axis=1) * df
        np.testing.assert_allclose(out[:, j], ref, rtol=1e-3, atol=1e-7, err_msg=f"band {lo}-{hi}")
    # Parseval: all bands together hold the variance of the (detrended) signal, roughly
    assert stage.feature_names()[1] == "band_10_1000_hz"


def test_window_taps_equal_time_domain_windowing() -> None:
    n = 1000
    x = np.random.default_rng(0).standard_normal((2, n)).astype(np.float32)
    X = np.fft.rfft(x).astype(np.complex64)
    k = np.array([0, 1, 3, 250, 499, 500])
    for a in (HANN, FLATTOP):
        w = sum((-1) ** m * a[m] * np.cos(2 * np.pi * m * np.arange(n) / n) for m in range(len(a)))
        ref = np.abs(np.fft.rfft(x * w))[:, k] * 2 / n / a[0]
        np.testing.assert_allclose(windowed_at(X, n, k, a), ref, rtol=1e-4, atol=1e-6)


def test_harmonics_flat_top_amplitude_and_block_speed() -> None:
    fs, n = 12800.0, 16384
    fr = 24.71  # not bin-centred
    x = np.vstack([tone(fr, fs, n, 0.5) + tone(2 * fr, fs, n, 0.2) + tone(4 * fr, fs, n, 0.05)])
    x = x + np.random.default_rng(1).normal(0, 0.01, x.shape).astype(np.float32)
    h = feats(Harmonics(n=4, rpm=fr * 60), x, fs)
    np.testing.assert_allclose([h["h1x_amp"][0], h["h2x_amp"][0], h["h4x_amp"][0]], [0.5, 0.2, 0.05], rtol=0.012)  # 0.1 dB
    assert h["h3x_amp"][0] < 0.01
    # a speed per block overrides the rpm fallback
    wrong = feats(Harmonics(n=1, rpm=1000.0), x, fs, speed_hz=fr)
    np.testing.assert_allclose(wrong["h1x_amp"], 0.5, rtol=0.012)


def am_signal(fs: float, n: int, fc: float, fm: float, m: float) -> np.ndarray:
    t = np.arange(n) / fs
    return ((1 + m * np.cos(2 * np.pi * fm * t)) * np.cos(2 * np.pi * fc * t)).astype(np.float32)


@pytest.mark.parametrize("squared", [False, True])
def test_envelope_of_am_tone(squared: bool) -> None:
    fs, n, m, fm = 25600.0, 32768, 0.3, 87.5
    x = am_signal(fs, n, 6000.0, fm, m)[None]
    f = feats(Envelope(squared=squared), x, fs)
    np.testing.assert_allclose(f["env_peak_hz"], fm, atol=fs / n / 2)
    np.testing.assert_allclose(f["env_peak_amp"], 2 * m if squared else m, rtol=0.16)  # Hann scalloping <= 1.42 dB


def impacts(fs: float, n: int, rate: float, *, resonance: float = 3000.0, am_hz: float = 0.0,
            seed: int = 0, noise: float = 0.5, jitter: float = 0.01) -> np.ndarray:
    """Decaying resonance bursts at ``rate`` per second with 1 % timing jitter, optional AM, noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fs
    times = np.arange(0.0, n / fs, 1 / rate)
    times = times + rng.normal(0, jitter / rate, times.size)
    pulses = np.zeros(n)
    idx = np.clip(np.rint(times * fs).astype(int), 0, n - 1)
    weights = 1 + 0.8 * np.cos(2 * np.pi * am_hz * times) if am_hz else np.ones(times.size)
    np.add.at(pulses, idx, weights)
    ring = np.exp(-t[:400] * 800) * np.sin(2 * np.pi * resonance * t[:400])
    x = np.convolve(pulses, ring)[:n] * 3 + rng.normal(0, noise, n)
    x += np.sin(2 * np.pi * 29.95 * t)  # 1x running speed, strong and low
    return x.astype(np.float32)


def test_synthetic_bearing_faults() -> None:
    fs, n, rpm = 25600.0, 65536, 1797.0
    fr = rpm / 60
    mult = lookup("6205").multipliers()
    x = np.vstack([
        impacts(fs, n, mult.bpfo * fr, seed=1),
        impacts(fs, n, mult.bpfi * fr, am_hz=fr, seed=2),
        impacts(fs, n, 1.0, seed=3) * 0 + np.random.default_rng(4).normal(0, 0.5, n).astype(np.float32),
    ])
    env = Envelope(band_hz=(2000.0, 5000.0), geometry=lookup("6205"), rpm=rpm)
    f = feats(env, x, fs)
    assert abs(f["env_peak_hz"][0] / (mult.bpfo * fr) - 1) < 0.02
    assert abs(f["env_peak_hz"][1] / (mult.bpfi * fr) - 1) < 0.02
    # 2 x BPFI lies within 1 % of 3 x BPFO for a 6205, so the harmonic sums cross-talk a little
    assert f["env_bpfo_amp"][0] > 2 * f["env_bpfi_amp"][0]
    assert f["env_bpfi_amp"][1] > 2 * f["env_bpfo_amp"][1]
    assert f["env_bpfo_amp"][0] > 10 * f["env_bpfo_amp"][2]  # healthy noise: nothing there
    # squared envelope finds the same lines
    sq = feats(Envelope(band_hz=(2000.0, 5000.0), squared=True, geometry=lookup("6205"), rpm=rpm), x, fs)
    np.testing.assert_allclose(sq["env_peak_hz"][:2], f["env_peak_hz"][:2], rtol=0.01)


def test_spectral_kurtosis_and_cepstrum() -> None:
    fs, n = 25600.0, 65536
    rng = np.random.default_rng(5)
    noise = rng.standard_normal(n).astype(np.float32)
    x = np.vstack([noise, impacts(fs, n, 10.0, resonance=5000.0, noise=0.05)])
    w = feats(WelchBands(nperseg=256, spectral_kurtosis=True), x, fs)
    assert w["sk_max"][0] < 1.5  # Gaussian: SK ~ 0, max over 127 bins of a noisy estimate
    assert w["sk_max"][1] > 5, w["sk_max"]
    assert abs(w["sk_peak_hz"][1] - 5000.0) < 800
    # cepstrum: strictly periodic impacts every 1/64 s make a 64 Hz harmonic family: a peak at 15.6 ms quefrency
    c = feats(Cepstrum(), np.vstack([noise, impacts(fs, n, 64.0, noise=0.05, jitter=0.0)]), fs)
    np.testing.assert_allclose(c["cep_peak_quefrency_s"][1], 1 / 64, atol=3 / fs)
    assert c["cep_peak_amp"][1] > 5 * c["cep_peak_amp"][0]


def test_kurtogram_finds_the_resonance_a_fixed_band_misses() -> None:
    fs, n, rate = 25600.0, 65536, 97.3
    rng = np.random.default_rng(9)
    x = impacts(fs, n, rate, resonance=1900.0, noise=0.05, seed=9)
    hf = ss.sosfilt(ss.butter(4, [4000, 12000], "bandpass", fs=fs, output="sos"), rng.normal(0, 2.0, n))
    x = np.vstack([x + hf.astype(np.float32)])
    fixed = feats(Envelope(), x, fs)  # auto band [fs/8, 0.45 fs] = 3.2-11.5 kHz: only noise there
    env = Envelope(kurtogram_levels=4)
    chosen = feats(env, x, fs)
    assert abs(fixed["env_peak_hz"][0] / rate - 1) > 0.02
    assert abs(chosen["env_peak_hz"][0] / rate - 1) < 0.02
    start, width = env.selected_band(Spectrum.of(x, fs))
    lo, hi = start[0] * fs / n, (start[0] + width[0]) * fs / n
    assert lo <= 1900.0 <= hi
    bands_lo, bands_hi, kurt = env.kurtogram(Spectrum.of(x, fs))
    assert kurt.shape == (1, bands_lo.size) and (bands_lo >= 500).all() and ((bands_hi - bands_lo) >= 1000 - fs / n).all()


def test_order_spectrum_reads_orders_at_block_speed() -> None:
    from edgekit.pipeline import OrderSpectrum

    fs, n, fr = 12800.0, 32768, 29.3
    x = (tone(fr, fs, n, 0.3) + tone(2 * fr, fs, n, 0.1) + tone(3.5 * fr, fs, n, 0.2))[None]
    o = feats(OrderSpectrum(n=3), x, fs, speed_hz=fr)
    np.testing.assert_allclose([o["order_1_amp"][0], o["order_2_amp"][0]], [0.3, 0.1], rtol=0.012)
    assert o["order_3_amp"][0] < 0.01  # 3.5 x is not an order line
