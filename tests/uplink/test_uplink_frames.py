"""Wire-protocol framing: round trips, compression choices and a strict decoder under random input."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgekit import codec
from edgekit.errors import DecodeError
from edgekit.types import FeatureFrame, PointBatch
from edgekit.uplink import frames as F


def feature_blob(seed: int = 0, channels: int = 4) -> bytes:
    rng = np.random.default_rng(seed)
    names = ("rms", "peak", "kurtosis", "crest")
    ff = FeatureFrame(
        asset="pump-1", values=rng.normal(1.0, 0.01, (channels, len(names))).astype(np.float32),
        names=names, channels=tuple(f"ch{i}" for i in range(channels)), t0=1.7e9, seq=seed,
        quality=np.zeros(channels, np.uint8), reasons=("",) * channels,
    )
    return codec.pack(ff)


def smooth_points_blob(n: int = 2000) -> bytes:
    t = 1.7e9 + np.arange(n) * 0.001
    pb = PointBatch.build("plc", [f"t{i}" for i in range(n)], np.sin(np.arange(n) / 50.0),
                          source_ts=t, recv_ts=1.7e9)
    return codec.pack(pb)


MESSAGES: list[F.Message] = [
    F.Hello("gw-1", "ep1", {"s1": 5, "s2": 0}, 64),
    F.Welcome(32, 1 << 20),
    F.Ack("ep1", {"s1": 9}),
    F.Nack("ep1", "s1", 7, "undecodable"),
    F.Ping(12.5),
    F.Pong(12.5),
    F.Error("no_session", "say HELLO first"),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_control_messages_round_trip(msg: F.Message) -> None:
    frames = F.encode(msg)
    assert frames[0] == b"EK2" and len(frames) == 2
    assert F.decode(frames) == msg


@pytest.mark.parametrize("mode", ["none", "zstd", "auto"])
def test_data_round_trip_in_every_compression_mode(mode: str) -> None:
    recs = [
        F.DataRecord("pump-1/features", 10, "features", 1.7e9, feature_blob(1)),
        F.DataRecord("plc/points", 3, "points", 1.7e9, smooth_points_blob()),
        F.DataRecord("plc/points", 4, "points", 1.7e9, b""),
    ]
    comp = F.Compressor(mode)
    frames = F.encode(F.Data("gw-1", "ep1", recs), comp)
    assert len(frames) == 2 + len(recs)
    out = F.decode(frames)
    assert out == F.Data("gw-1", "ep1", recs)
    back = codec.unpack(out.records[1].blob)
    assert isinstance(back, PointBatch) and len(back) == 2000
    if mode == "none":
        assert comp.wire_bytes == comp.raw_bytes
    else:
        assert comp.wire_bytes < comp.raw_bytes * 0.8  # smooth points compress well


def test_shuffle_is_used_for_float_arrays_and_pays() -> None:
    blob = smooth_points_blob()
    hdr = msgpack.unpackb(F.encode(F.Data("g", "e", [F.DataRecord("s", 1, "points", 0.0, blob)]),
                                   F.Compressor("zstd"))[1])
    assert hdr["r"][0][5] == F.ENC_ZSTD_SHUFFLE
    shuffled = len(F.encode(F.Data("g", "e", [F.DataRecord("s", 1, "points", 0.0, blob)]),
                            F.Compressor("zstd"))[2])
    import zstandard
    plain = len(zstandard.ZstdCompressor(level=1).compress(blob))
    assert shuffled < plain


def test_auto_skips_incompressible_data() -> None:
    noise = np.random.default_rng(0).bytes(4096)
    comp = F.Compressor("auto")
    encs = [comp.encode("waveform", noise)[0] for _ in range(10)]
    assert encs == [F.ENC_RAW] * 10
    assert comp._skip["waveform"] == 31 - 9  # tried once, then skipped


def good_data_frames() -> list[bytes]:
    return F.encode(F.Data("gw", "ep", [F.DataRecord("s", 1, "features", 1.0, feature_blob())]))


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda f: [b"EK1", *f[1:]], "unsupported protocol version"),  # version 1: one frame per record
        (lambda f: [b"HTTP/1.1", *f[1:]], "not an edgekit"),
        (lambda f: f[:1], "at least 2"),
        (lambda f: [f[0], b"\xc1garbage", *f[2:]], "not valid msgpack"),
        (lambda f: [f[0], msgpack.packb([1, 2]), *f[2:]], "not a map"),
        (lambda f: [f[0], msgpack.packb({"t": "BOGUS"})], "unknown message type"),
        (lambda f: f[:2], "1 records but 0 buffers"),
        (lambda f: [*f, b"extra"], "1 records but 2 buffers"),
        (lambda f: [f[0], msgpack.packb({"t": "PING", "ts": 1}), b"x"], "unexpected buffer"),
        (lambda f: [f[0], msgpack.packb({"t": "ACK", "ep": "e", "a": {"s": -1}})], "not an integer"),
        (lambda f: [f[0], msgpack.packb({"t": "HELLO", "gw": "g", "ep": "e", "fu": {}})], "'cr' missing"),
        (lambda f: [f[0], f[1], f[2][:-1]], "header says"),
        (lambda f: [f[0], msgpack.packb({"t": "DATA", "gw": "g", "ep": "e", "r": [["s", 1, "points", 0.0, 0, 1]]}),
                    b"x"], "expected \\[stream, seq, count"),  # a version-1 row (no count)
        (lambda f: [f[0], msgpack.packb({"t": "DATA", "gw": "g", "ep": "e", "r": [["s", 1, 0, "points", 0.0, 0, 1]]}),
                    b"x"], "count 0 outside"),
        (lambda f: [f[0], msgpack.packb({"t": "DATA", "gw": "g", "ep": "e",
                                         "r": [["s", 2**63 - 1, 2, "points", 0.0, 0, 1]]}), b"x"], "past the last seq"),
        (lambda f: [f[0], msgpack.packb({"t": "NACK", "ep": "e", "s": "s", "q": 1, "n": 0, "why": "x"})], "count"),
    ],
)
def test_decoder_rejects_malformed(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DecodeError, match=message):
        F.decode(mutate(good_data_frames()))


def test_decoder_limits() -> None:
    frames = good_data_frames()
    with pytest.raises(DecodeError, match="limit"):
        F.decode(frames, F.Limits(max_message_bytes=100))
    many = [b"EK2", msgpack.packb({"t": "DATA"}), *([b""] * 20)]
    with pytest.raises(DecodeError, match="frames, limit"):
        F.decode(many, F.Limits(max_records=8))


def test_zstd_bomb_is_bounded() -> None:
    import zstandard
    bomb = zstandard.ZstdCompressor().compress(b"\0" * (10 << 20))
    hdr = msgpack.packb({"t": "DATA", "gw": "g", "ep": "e", "r": [["s", 1, 1, "points", 0.0, 1, 1000]]})
    with pytest.raises(DecodeError):
        F.decode([b"EK2", hdr, bomb])


frame_bytes = st.one_of(
    st.binary(max_size=64),
    st.just(b"EK2"),
    st.builds(lambda d: msgpack.packb(d), st.dictionaries(
        st.sampled_from(["t", "gw", "ep", "r", "a", "fu", "cr", "s", "q", "n", "why", "ts", "mb", "code"]),
        st.one_of(st.sampled_from(["DATA", "HELLO", "ACK", "NACK", "PING", "WELCOME", "ERROR"]),
                  st.integers(-5, 2**64 - 1), st.text(max_size=8), st.floats(allow_nan=False),
                  st.lists(st.lists(st.one_of(st.integers(-2, 5), st.text(max_size=3)), max_size=7),
                           max_size=3),
                  st.dictionaries(st.text(max_size=3), st.integers(-3, 10), max_size=3)),
        max_size=6)),
)


@settings(max_examples=250, deadline=None)
@given(st.lists(frame_bytes, max_size=6), st.booleans())
def test_decoder_property_random_frames_only_raise_decode_error(frames: list[bytes], tag: bool) -> None:
    if tag:
        frames = [b"EK2", *frames]
    try:
        msg = F.decode(frames)
    except DecodeError:
        return
    # Anything accepted must survive a re-encode/decode round trip unchanged.
    assert F.decode(F.encode(msg)) == msg


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.text(min_size=1, max_size=5), st.integers(0, 2**63 - 1),
                          st.binary(max_size=300)), min_size=1, max_size=5))
def test_data_property_round_trip(rows: list[tuple[str, int, bytes]]) -> None:
    msg = F.Data("gw", "ep", [F.DataRecord(s, q, "points", 1.5, b) for s, q, b in rows])
    assert F.decode(F.encode(msg, F.Compressor("zstd"))) == msg


@pytest.mark.parametrize("mode", ["none", "zstd"])
def test_a_segment_travels_as_one_frame_unchanged(mode: str) -> None:
    from edgekit.codec import pack_segment, segment_blobs

    blobs = [feature_blob(i) for i in range(5)]
    seg = pack_segment(blobs, "features")
    frames = F.encode(F.Data("g", "e", [F.DataRecord("f", 10, "features", 1.0, seg, 5),
                                        F.DataRecord("p", 3, "points", 1.0, smooth_points_blob())]), F.Compressor(mode))
    assert len(frames) == 4
    msg = F.decode(frames)
    assert isinstance(msg, F.Data)
    first, second = msg.records
    assert (first.seq, first.count, first.last_seq, first.blob) == (10, 5, 14, seg)
    assert segment_blobs(first.blob, first.count) == blobs
    assert (second.count, second.last_seq) == (1, 3)
    assert F.decode(F.encode(F.Nack("e", "f", 10, "bad", 5))) == F.Nack("e", "f", 10, "bad", 5)
