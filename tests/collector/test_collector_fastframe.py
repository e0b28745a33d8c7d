"""The collector's FeatureFrame fast path: same parts as codec.unpack, or None (fallback) — never looser."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import msgpack
import numpy as np
import pytest

from edgekit import codec
from edgekit.collector import Store
from edgekit.collector.fastframe import features_view
from edgekit.errors import DecodeError
from edgekit.types import FeatureFrame


def frame(seq: int, reasons: tuple[str, ...] = ("", "cable", "")) -> FeatureFrame:
    vals = np.arange(12, dtype=np.float32).reshape(3, 4) * seq
    vals[1, 2] = np.nan
    return FeatureFrame("m01", vals, ("rms", "kurtosis", "crest", "peak"), ("de", "fe", "ax"), 10.5 + seq, seq,
                        np.array([0, 2, 1], np.uint8), reasons)


@pytest.mark.parametrize("reasons", [("", "cable", ""), ()])
def test_canonical_frame_parts_equal_unpack(reasons: tuple[str, ...]) -> None:
    f = frame(7, reasons)
    parts = features_view(codec.pack(f))
    assert parts is not None
    back = codec.unpack(codec.pack(f))
    assert isinstance(back, FeatureFrame)
    assert parts.values == back.values.astype("<f4").tobytes() and parts.quality == back.quality.tobytes()
    assert (parts.asset, parts.seq, parts.t0, parts.names, parts.channels, parts.reasons) == (
        back.asset, back.seq, back.t0, back.names, back.channels, back.reasons)
    assert (parts.n_channels, parts.n_features) == back.values.shape


def _with_header(blob: bytes, **changes: object) -> bytes:
    hlen = int.from_bytes(blob[:4], "little")
    header = msgpack.unpackb(blob[4:4 + hlen])
    header.update(changes)
    head = msgpack.packb(header, use_bin_type=True)
    return len(head).to_bytes(4, "little") + head + blob[4 + hlen:]


@pytest.mark.parametrize("changes", [
    {"extra": 1}, {"names": ["rms", "kurtosis", "crest", 5]}, {"seq": 1.5}, {"reasons": ["x"]},
    {"arrays": [["values", "<f8", [3, 4]], ["quality", "|u1", [3]]]}, {"channels": ["de", "fe"]}, {"kind": "event"},
])
def test_non_canonical_headers_fall_back(changes: dict[str, object]) -> None:
    assert features_view(_with_header(codec.pack(frame(1)), **changes)) is None


def test_random_corruption_is_never_accepted_where_unpack_rejects() -> None:
    rng = random.Random(8)
    blob = codec.pack(frame(3))
    accepted = 0
    for _ in range(3000):
        b = bytearray(blob)
        for _ in range(rng.randint(1, 3)):
            op = rng.random()
            i = rng.randrange(len(b))
            if op < 0.6:
                b[i] = rng.randrange(256)
            elif op < 0.8:
                del b[i]
            else:
                b.insert(i, rng.randrange(256))
        parts = features_view(bytes(b))
        if parts is None:
            continue
        accepted += 1
        try:
            rec = codec.unpack(bytes(b))
        except DecodeError:
            pytest.fail(f"fast path accepted a blob codec.unpack rejects: {bytes(b)!r}")
        assert isinstance(rec, FeatureFrame)
        assert parts.values == rec.values.tobytes() and parts.names == rec.names
    assert accepted > 0  # value-byte flips stay canonical: the check above really ran


@pytest.mark.parametrize("layout", ["wide", "packed"])
def test_fast_and_fallback_paths_store_the_same_rows(tmp_path: Path, layout: str) -> None:
    blob = codec.pack(frame(2))
    slow = _with_header(blob, v=1)  # same content, re-encoded header: still canonical
    odd = _with_header(blob, arrays=[["values", "<f4", [3, 4]], ["quality", "<u4", [3]]])  # not canonical
    assert features_view(slow) is not None and features_view(odd) is None
    odd = odd[:-3] + np.array([0, 2, 1], "<u4").tobytes()  # a valid record via the strict decoder
    st = Store(tmp_path / "s.sqlite", features_layout=layout)
    st.write("gw", "ep", [SimpleNamespace(stream="f/a", seq=1, kind="features", ts=1.0, blob=blob),
                          SimpleNamespace(stream="f/b", seq=1, kind="features", ts=1.0, blob=odd)])
    st.commit()
    st.close()
    con = sqlite3.connect(tmp_path / "s.sqlite")
    table = "features" if layout == "wide" else "feature_frames"
    rows = con.execute(f"SELECT * FROM {table} ORDER BY stream, rowid").fetchall()
    con.close()
    a = [r[3:] for r in rows if r[1] == "f/a"]
    b = [r[3:] for r in rows if r[1] == "f/b"]
    assert a and a == b


def test_duplicates_within_and_across_messages_are_counted_not_stored(tmp_path: Path) -> None:
    def r(seq: int) -> SimpleNamespace:
        return SimpleNamespace(stream="f/a", seq=seq, kind="features", ts=1.0, blob=codec.pack(frame(seq)))

    st = Store(tmp_path / "s.sqlite", features_layout="packed")
    first = st.write("gw", "ep", [r(1), r(1), r(2)])
    second = st.write("gw", "ep", [r(2), r(3)])
    st.commit()
    third = st.write("gw", "ep2", [r(1)])  # another epoch: a different record
    st.commit()
    st.close()
    assert (first.stored, first.duplicates, second.stored, second.duplicates, third.stored) == (2, 1, 1, 1, 1)
    assert first.acks == {"f/a": 2} and second.acks == {"f/a": 3}
    con = sqlite3.connect(tmp_path / "s.sqlite")
    assert con.execute("SELECT count(*) FROM feature_frames").fetchone()[0] == 4
    assert con.execute("SELECT sum(count) FROM duplicates").fetchone()[0] == 2
    con.close()
