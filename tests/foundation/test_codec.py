"""The record format round-trips every data type and rejects malformed blobs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgekit.codec import GapRecord, pack, unpack
from edgekit.errors import DecodeError
from edgekit.types import Event, EventKind, FeatureFrame, PointBatch, Quality, Severity, WaveformBlock


def _records() -> list[object]:
    rng = np.random.default_rng(1)
    return [
        PointBatch.build("m1", ["speed", "temp", "name"], [1480.0, 61.5, np.nan],
                         quality=[0, 0, 2], reasons=["", "", "timeout"], text=[None, None, "pump"]),
        WaveformBlock("m1", rng.standard_normal((2, 64)).astype(np.float32), 25600.0, 1.5, 7,
                      ("ch0", "ch1"), ("g", "g"), speed_hz=24.7),
        FeatureFrame("m1", rng.standard_normal((2, 3)).astype(np.float32), ("rms", "peak", "kurtosis"),
                     ("ch0", "ch1"), 2.0, 9, np.array([0, 2], np.uint8), ("", "nan input")),
        Event(EventKind.ALARM_RAISED, "m1/ch0", "score 4.2 > 3.0", Severity.ALARM, 3.0, {"score": 4.2}),
        GapRecord("features", 10, 19, 10, "quota drop_oldest", 4.0),
    ]


@pytest.mark.parametrize("record", _records(), ids=lambda r: type(r).__name__)
def test_round_trip(record: object) -> None:
    back = unpack(pack(record))  # type: ignore[arg-type]
    assert type(back) is type(record)
    for name in record.__slots__:  # type: ignore[attr-defined]
        a, b = getattr(record, name), getattr(back, name)
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)
            assert a.dtype == b.dtype
        else:
            assert a == b, name


def test_waveform_quality_survives() -> None:
    blk = WaveformBlock("m", np.zeros((1, 4), np.float32), 1.0, 0.0, 1, ("c",), ("g",),
                        quality=Quality.BAD, reason="clipped")
    back = unpack(pack(blk))
    assert isinstance(back, WaveformBlock) and back.quality is Quality.BAD and back.reason == "clipped"


def test_truncated_and_trailing_rejected() -> None:
    blob = pack(_records()[1])  # type: ignore[arg-type]
    with pytest.raises(DecodeError, match="too short"):
        unpack(blob[:-1])
    with pytest.raises(DecodeError, match="trailing"):
        unpack(blob + b"x")


@given(st.binary(max_size=256))
def test_garbage_never_crashes(data: bytes) -> None:
    try:
        unpack(data)
    except DecodeError:
        pass
