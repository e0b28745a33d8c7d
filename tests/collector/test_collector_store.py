"""The collector's store: every record kind into pandas-friendly tables, dedup, NACKs, stats, export."""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from edgekit import codec
from edgekit.cli import store as store_cli
from edgekit.codec import GapRecord
from edgekit.collector import Store, store_stats, store_summary
from edgekit.errors import EdgekitError
from edgekit.types import Event, EventKind, FeatureFrame, PointBatch, Severity, WaveformBlock


def rec(stream: str, seq: int, record: object, kind: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(stream=stream, seq=seq, kind=kind or codec.kind_of(record), ts=1.0,  # type: ignore[arg-type]
                           blob=codec.pack(record))  # type: ignore[arg-type]


def frame(seq: int, names: tuple[str, ...]) -> FeatureFrame:
    vals = np.arange(2 * len(names), dtype=np.float32).reshape(2, len(names)) + seq
    vals[1, 0] = np.nan
    return FeatureFrame("m01", vals, names, ("de", "fe"), 100.0 + seq, seq, np.array([0, 2], np.uint8), ("", "cable"))


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    path = tmp_path / "store.sqlite"
    st = Store(path)
    pts = PointBatch.build("plc", ["temp", "mode"], [21.5, np.nan], recv_ts=5.0, text=[None, "auto"])
    wf = WaveformBlock("m01", np.ones((2, 8), np.float32), 12000.0, 3.0, 7, ("de", "fe"), ("g", "g"), speed_hz=29.9)
    ev = Event(EventKind.ALARM_RAISED, "m01", "bpfo", Severity.ALARM, 9.0, {"score": 0.9})
    gap = GapRecord("features/m01", 4, 6, 2, "drop_oldest", 8.0)
    r1 = st.write("gw-1", "ep", [rec("features/m01", 1, frame(1, ("rms", "kurtosis"))),
                                 rec("features/m01", 2, frame(2, ("rms", "env_bpfo_amp", "seq"))),
                                 rec("points/plc", 1, pts), rec("waveform/m01", 1, wf), rec("event/gw-1", 1, ev),
                                 rec("gap/features/m01", 1, gap)])
    assert (r1.stored, r1.duplicates, r1.nacks) == (6, 0, [])
    assert r1.acks == {"features/m01": 2, "points/plc": 1, "waveform/m01": 1, "event/gw-1": 1, "gap/features/m01": 1}
    st.commit()
    # a resend of seq 2 plus new seqs 3 and 7 (4-6 were dropped on the gateway: see the gap record)
    r2 = st.write("gw-1", "ep", [rec("features/m01", 2, frame(2, ("rms",))), rec("features/m01", 3, frame(3, ("rms",))),
                                 rec("features/m01", 7, frame(7, ("rms",))),
                                 SimpleNamespace(stream="features/m01", seq=8, kind="features", ts=1.0, blob=b"junk"),
                                 rec("features/m01", 9, frame(9, ("rms",)), kind="points")])
    assert (r2.stored, r2.duplicates) == (2, 1)
    assert [(s, q) for s, q, _, _n in r2.nacks] == [("features/m01", 8), ("features/m01", 9)]
    assert r2.acks == {"features/m01": 9}
    st.commit()
    st.close()
    return path


def test_tables_are_typed_and_wide(filled: Path) -> None:
    con = sqlite3.connect(filled)
    cols = [r[1] for r in con.execute("PRAGMA table_info(features)")]
    assert cols[-4:] == ["rms", "kurtosis", "env_bpfo_amp", "f_seq"]  # added as names appear; reserved prefixed
    rows = con.execute("SELECT seq, channel, quality, reason, rms, kurtosis, env_bpfo_amp FROM features "
                       "WHERE seq <= 2 ORDER BY seq, channel").fetchall()
    assert rows == [(1, "de", 0, "", 1.0, 2.0, None), (1, "fe", 2, "cable", None, 4.0, None),
                    (2, "de", 0, "", 2.0, None, 3.0), (2, "fe", 2, "cable", None, None, 6.0)]
    assert con.execute("SELECT tag, value, text, quality FROM points ORDER BY tag").fetchall() == [
        ("mode", None, "auto", 0), ("temp", 21.5, None, 0)]
    n_ch, n_s, data, chans, speed = con.execute(
        "SELECT n_channels, n_samples, data, channels, speed_hz FROM waveforms").fetchone()
    assert np.array_equal(np.frombuffer(data, "<f4").reshape(n_ch, n_s), np.ones((2, 8), np.float32))
    assert json.loads(chans) == ["de", "fe"] and speed == pytest.approx(29.9)
    kind, sev, data_json = con.execute("SELECT kind, severity, data FROM events").fetchone()
    assert (kind, sev, json.loads(data_json)) == ("alarm_raised", 2, {"score": 0.9})
    assert con.execute("SELECT gap_stream, first_seq, last_seq, count FROM gaps").fetchall() == [("features/m01", 4, 6, 2)]
    assert con.execute("SELECT count(*) FROM rejected").fetchone() == (2,)
    assert con.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    con.close()


def test_stats_report_missing_duplicates_and_gaps(filled: Path) -> None:
    by_stream = {s["stream"]: s for s in store_stats(filled)}
    f = by_stream["features/m01"]
    # received: 1, 2, 3, 7 stored and 8, 9 NACKed; 4-6 never arrived (the gap record declares 2 of them)
    assert (f["records"], f["first_seq"], f["last_seq"], f["missing"]) == (6, 1, 9, 3)
    assert f["duplicates_rejected"] == 1 and f["nacked"] == 2 and f["gaps_declared"] == 2
    summary = store_summary(filled)
    assert summary["records"] == 10 and summary["duplicates"] == 1 and summary["gateways"] == ["gw-1"]


def test_store_cli_stats_json_and_csv_export(filled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    store_cli.register(parser.add_subparsers())
    args = parser.parse_args(["store", "stats", "--store", str(filled), "--json"])
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["records"] == 10 and len(out["streams"]) == 5
    args = parser.parse_args(["store", "export", "--store", str(filled), "--out", str(tmp_path / "x")])
    assert args.func(args) == 0
    header = (tmp_path / "x" / "features.csv").read_text().splitlines()[0]
    assert header.endswith("rms,kurtosis,env_bpfo_amp,f_seq")
    args = parser.parse_args(["store", "export", "--store", str(filled), "--out", str(tmp_path / "y"),
                              "--format", "parquet"])
    try:
        import pyarrow  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        with pytest.raises(EdgekitError, match="parquet needs pyarrow"):
            args.func(args)
    else:
        assert args.func(args) == 0
    args = parser.parse_args(["store", "stats", "--store", str(tmp_path / "missing.sqlite")])
    with pytest.raises(EdgekitError, match="does not exist"):
        args.func(args)


def test_store_refuses_a_newer_format(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    con = sqlite3.connect(path)
    con.execute("PRAGMA user_version = 99")
    con.close()
    with pytest.raises(EdgekitError, match="newer"):
        Store(path)


def test_packed_features_layout_keeps_each_frame_as_one_row(tmp_path: Path) -> None:
    st = Store(tmp_path / "p.sqlite", features_layout="packed")
    ff = frame(3, ("rms", "kurtosis", "crest"))
    assert st.write("gw-1", "ep", [rec("features/m01", 1, ff)]).stored == 1
    st.commit()
    st.close()
    con = sqlite3.connect(tmp_path / "p.sqlite")
    n_ch, n_f, chans, names, reasons, quality, values = con.execute(
        'SELECT n_channels, n_features, channels, names, reasons, quality, "values" FROM feature_frames').fetchone()
    assert con.execute("SELECT count(*) FROM features").fetchone() == (0,)
    con.close()
    got = np.frombuffer(values, "<f4").reshape(n_ch, n_f)
    assert np.array_equal(got, ff.values, equal_nan=True)
    assert (json.loads(chans), json.loads(names), json.loads(reasons)) == (["de", "fe"], list(ff.names), ["", "cable"])
    assert list(quality) == [0, 2]
    with pytest.raises(EdgekitError, match="features_layout 'tall' is not one of wide, packed"):
        Store(tmp_path / "q.sqlite", features_layout="tall")
