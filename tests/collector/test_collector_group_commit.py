"""Group commit: DATA messages arriving a few ms apart share one store commit and one cumulative ACK
(the collector lingers up to ``group_linger_s`` while it has fewer than ``group_messages``)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import zmq

from edgekit.collector import run_in_thread, store_summary
from edgekit.uplink import frames as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "uplink"))
from uplink_helpers import feature_blob

STREAM = "features/m01"


def _exchange(tmp_path: Path, name: str, linger: float, gap_s: float) -> tuple[list[F.Ack], dict[str, object], int]:
    """HELLO, then three 1-record DATA messages ``gap_s`` apart; every ACK that came back within 1 s
    after the last one, the store's summary and the collector's commit count."""
    endpoint = f"ipc://{tmp_path}/{name}.ipc"
    store = tmp_path / f"{name}.sqlite"
    col = run_in_thread([endpoint], store, insecure=True, group_messages=3, group_linger_s=linger)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(endpoint)
    acks: list[F.Ack] = []
    try:
        sock.send_multipart(F.encode(F.Hello("gw-1", "ep", {}, 64)))
        assert sock.poll(5000) and isinstance(F.decode(sock.recv_multipart()), F.Welcome)
        for seq in (1, 2, 3):
            rec = F.DataRecord(STREAM, seq, "features", 0.0, feature_blob(seq))
            sock.send_multipart(F.encode(F.Data("gw-1", "ep", [rec])))
            time.sleep(gap_s)
        while sock.poll(1000):
            msg = F.decode(sock.recv_multipart())
            assert isinstance(msg, F.Ack)
            acks.append(msg)
            if msg.acks.get(STREAM) == 3:
                break
        commits = int(col.collector.registry.get_sample_value("edgekit_collector_commit_seconds_count") or 0)
    finally:
        sock.close(linger=0)
        ctx.term()
        col.stop()
    return acks, store_summary(store), commits


def test_messages_a_few_ms_apart_share_one_commit_and_one_ack(tmp_path: Path) -> None:
    acks, summary, commits = _exchange(tmp_path, "grouped", linger=2.0, gap_s=0.005)
    assert [a.acks for a in acks] == [{STREAM: 3}]
    assert commits == 1
    assert summary["records"] == 3 and summary["missing"] == 0


def test_without_linger_each_message_spaced_out_is_committed_and_acked_alone(tmp_path: Path) -> None:
    acks, summary, commits = _exchange(tmp_path, "alone", linger=0.0, gap_s=0.3)
    assert [a.acks for a in acks] == [{STREAM: 1}, {STREAM: 2}, {STREAM: 3}]
    assert commits == 3
    assert summary["records"] == 3
