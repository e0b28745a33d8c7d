"""One conformance suite over every pipeline stage (the scikit-learn ``check_estimator`` idea)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from edgekit.errors import PipelineError
from edgekit.pipeline import (
    Cepstrum,
    Envelope,
    Harmonics,
    OrderSpectrum,
    Spectrum,
    Stage,
    TimeDomain,
    Velocity,
    WelchBands,
    clone,
    lookup,
)

FS = 12800.0
N = 4096


def _stages() -> list[Stage]:
    return [
        TimeDomain(),
        Velocity(),
        Velocity(band_hz=(2.0, 1000.0), units="m/s2"),
        WelchBands(),
        WelchBands(bands_hz=((0.0, 100.0), (100.0, 6400.0)), nperseg=256, spectral_kurtosis=True),
        Harmonics(n=5, search_bins=1, rpm=1480.0),
        OrderSpectrum(n=3, rpm=1480.0),
        Envelope(),
        Envelope(band_hz=(2000.0, 5000.0), squared=True, geometry=lookup("6205"), rpm=1797.0),
        Envelope(kurtogram_levels=3, geometry=lookup("6203"), rpm=1480.0),
        Cepstrum(),
    ]


STAGES = _stages()
IDS = [repr(s) for s in STAGES]


@pytest.fixture
def block() -> np.ndarray:
    rng = np.random.default_rng(7)
    t = np.arange(N) / FS
    x = rng.standard_normal((3, N)).astype(np.float32)
    x[1] += np.sin(2 * np.pi * 24.7 * t).astype(np.float32)
    x[2] *= (1 + 0.5 * np.sin(2 * np.pi * 90 * t)).astype(np.float32)
    return x


@pytest.mark.parametrize("stage", STAGES, ids=IDS)
def test_shape_dtype_names(stage: Stage, block: np.ndarray) -> None:
    out = clone(stage).fit(block, FS).transform(block)
    assert out.dtype == np.float32
    assert out.shape == (block.shape[0], len(stage.feature_names()))
    assert len(set(stage.feature_names())) == len(stage.feature_names())
    assert np.isfinite(out).all()


@pytest.mark.parametrize("stage", STAGES, ids=IDS)
def test_deterministic_and_pure(stage: Stage, block: np.ndarray) -> None:
    before = block.copy()
    st = clone(stage).fit(block, FS)
    a = st.transform(block)
    b = st.transform(block)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(block, before)  # input not mutated
    s = Spectrum.of(block, FS)
    X = s.X.copy()
    np.testing.assert_allclose(st.transform(s), a, rtol=1e-6, atol=1e-9)  # shared FFT == own FFT
    np.testing.assert_array_equal(s.X, X)  # shared spectrum not mutated by the stage


@pytest.mark.parametrize("stage", STAGES, ids=IDS)
def test_rows_are_independent(stage: Stage, block: np.ndarray) -> None:
    st = clone(stage).fit(block, FS)
    full = st.transform(block)
    one = st.transform(np.ascontiguousarray(block[1:2]))
    np.testing.assert_allclose(one[0], full[1], rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("stage", STAGES, ids=IDS)
def test_params_clone_pickle(stage: Stage, block: np.ndarray) -> None:
    params = stage.get_params()
    c = clone(stage)
    assert type(c) is type(stage) and c.get_params() == params
    assert not hasattr(c, "n_samples_")
    fitted = clone(stage).fit(block, FS)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.transform(block), fitted.transform(block))
    rebuilt = type(stage)(**pickle.loads(pickle.dumps(params))).fit(block, FS)
    np.testing.assert_array_equal(rebuilt.transform(block), fitted.transform(block))
    with pytest.raises(PipelineError, match="no parameter"):
        clone(stage).set_params(not_a_param=1)


@pytest.mark.parametrize("stage", STAGES, ids=IDS)
def test_misuse_raises_pipeline_error(stage: Stage, block: np.ndarray) -> None:
    with pytest.raises(PipelineError, match="not fitted"):
        clone(stage).transform(block)
    st = clone(stage).fit(block, FS)
    with pytest.raises(PipelineError, match="float32"):
        st.transform(block.astype(np.float64))
    with pytest.raises(PipelineError, match="float32"):
        st.transform(block[0])
    with pytest.raises(PipelineError, match="fitted for"):
        st.transform(np.ascontiguousarray(block[:, : N // 2]))
    with pytest.raises(PipelineError, match="fitted for"):
        st.transform(Spectrum.of(block, FS * 2))
    with pytest.raises(PipelineError, match="sample rate"):
        clone(stage).fit(block, 0.0)
