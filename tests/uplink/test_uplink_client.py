"""UplinkClient against a real collector (and a scripted ROUTER) on loopback, with a real spool file."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zmq
import zmq.asyncio
from portutil import free_port
from uplink_helpers import feature_blob, make_keys, open_spool, uplink_cfg, wait_for  # type: ignore[import-not-found]

from edgekit import codec
from edgekit.collector import run_in_thread, store_stats
from edgekit.errors import ConfigError
from edgekit.types import Event, EventKind, Severity, WaveformBlock
from edgekit.uplink import DeadLetters, UplinkClient
from edgekit.uplink import frames as F


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_delivers_exactly_once_with_notify_from_a_worker_thread(tmp_path: Path) -> None:
    keys = make_keys(tmp_path)
    spool = open_spool(tmp_path / "spool.sqlite")
    with run_in_thread(["tcp://127.0.0.1:0"], tmp_path / "store.sqlite", allow_dir=keys.allow,
                       secret_key=keys.server_secret_key()) as col:
        client = UplinkClient(uplink_cfg(col.endpoints, keys), spool, "gw-1")
        task = asyncio.create_task(client.run())
        await wait_for(lambda: client.state == "connected", 5, "session")

        def worker() -> None:  # the runtime's pipeline thread: append, then wake the sender
            for i in range(0, 400, 8):
                now = time.time()  # one admission time per call, as the runtime does: one 8-record segment
                spool.append_many([("features/m01", "features", feature_blob(i + j), now) for j in range(8)])
                client.notify()

        t = threading.Thread(target=worker)
        t.start()
        await asyncio.to_thread(t.join)
        await wait_for(lambda: spool.backlog("dc")[0] == 0, 10, "backlog drained")
        h = client.health()
        await stop(task)
        assert h["delivered"] == 400 and h["resent"] == 0 and h["backlog"] == 0
        assert h["endpoint"] == col.endpoints[0] and h["oldest_unacked_age_s"] == 0.0
        assert h["ack_latency_s"] is not None and h["ack_latency_s"] < 5
    [s] = store_stats(tmp_path / "store.sqlite")
    assert (s["gateway"], s["records"], s["first_seq"], s["last_seq"], s["missing"]) == ("gw-1", 400, 1, 400, 0)
    import sqlite3

    con = sqlite3.connect(tmp_path / "store.sqlite")
    ranges = con.execute("SELECT count(*), min(last_seq - seq + 1) FROM received").fetchone()
    con.close()
    assert ranges == (50, 8)  # each 8-record call travelled and was stored as one segment
    spool.close()


async def test_fails_over_to_the_next_endpoint(tmp_path: Path) -> None:
    keys = make_keys(tmp_path)
    spool = open_spool(tmp_path / "spool.sqlite")
    spool.append("features/m01", "features", feature_blob(1), time.time())
    dead = f"tcp://127.0.0.1:{free_port()}"
    with run_in_thread(["tcp://127.0.0.1:0"], tmp_path / "store.sqlite", allow_dir=keys.allow,
                       secret_key=keys.server_secret_key()) as col:
        client = UplinkClient(uplink_cfg([dead, col.endpoints[0]], keys, hello_timeout="300ms"), spool, "gw-1")
        task = asyncio.create_task(client.run())
        await wait_for(lambda: spool.backlog("dc")[0] == 0, 10, "delivery via the second endpoint")
        assert client.failovers >= 1 and client.endpoint == col.endpoints[0]
        await stop(task)
    spool.close()


async def test_ack_timeout_reconnects_and_resends_everything_unacked(tmp_path: Path) -> None:
    """A collector that swallows the first session's DATA: the client must resend all of it."""
    spool = open_spool(tmp_path / "spool.sqlite")
    for i in range(30):
        spool.append("features/m01", "features", feature_blob(i), time.time())
    ep = f"ipc://{tmp_path}/c.ipc"
    ctx = zmq.asyncio.Context()
    router = ctx.socket(zmq.ROUTER)
    router.linger = 0
    router.bind(ep)
    client = UplinkClient(uplink_cfg([ep], None, ack_timeout="500ms"), spool, "gw-1")
    task = asyncio.create_task(client.run())
    hellos = 0
    seen: list[int] = []
    try:
        while spool.backlog("dc")[0]:
            ident, *frames = await asyncio.wait_for(router.recv_multipart(), 10)
            msg = F.decode(frames)
            if isinstance(msg, F.Hello):
                hellos += 1
                assert msg.first_unacked == {"features/m01": 1}  # nothing was acked in session 1
                await router.send_multipart([ident, *F.encode(F.Welcome(100, 1 << 20))])
            elif isinstance(msg, F.Data):
                seen.extend(r.seq for r in msg.records)
                if hellos >= 2:  # second session: acknowledge
                    await router.send_multipart([ident, *F.encode(F.Ack(msg.epoch, {"features/m01": seen[-1]}))])
            elif isinstance(msg, F.Ping):
                await router.send_multipart([ident, *F.encode(F.Pong(msg.ts))])
        assert hellos == 2
        assert seen == list(range(1, 31)) * 2  # everything, in order, twice
        assert client.resent == 30 and client.delivered == 30
    finally:
        await stop(task)
        ctx.destroy(linger=0)
        spool.close()


async def test_nacked_record_goes_to_dead_letters_and_the_rest_is_delivered(tmp_path: Path) -> None:
    keys = make_keys(tmp_path)
    spool = open_spool(tmp_path / "spool.sqlite")
    spool.append_many([("features/m01", "features", feature_blob(1), 1.0),
                       ("features/m01", "features", b"\x01\x00\x00\x00garbage", 2.0),
                       ("features/m01", "features", feature_blob(3), 3.0)])
    with run_in_thread(["tcp://127.0.0.1:0"], tmp_path / "store.sqlite", allow_dir=keys.allow,
                       secret_key=keys.server_secret_key()) as col:
        client = UplinkClient(uplink_cfg(col.endpoints, keys), spool, "gw-1")
        task = asyncio.create_task(client.run())
        await wait_for(lambda: spool.backlog("dc")[0] == 0, 10, "delivery")
        await stop(task)
    assert client.dead_lettered == 1
    dl = DeadLetters(f"{spool.path}.deadletter.sqlite")
    [(stream, seq, kind, reason)] = dl.rows("dc")
    dl.close()
    assert (stream, seq, kind) == ("features/m01", 2, "features") and "undecodable" in reason
    [s] = store_stats(tmp_path / "store.sqlite")
    assert (s["records"], s["nacked"], s["missing"]) == (3, 1, 0)
    spool.close()


async def test_record_larger_than_a_message_is_dead_lettered_locally(tmp_path: Path) -> None:
    keys = make_keys(tmp_path)
    spool = open_spool(tmp_path / "spool.sqlite")
    big = WaveformBlock("m01", np.random.default_rng(0).normal(size=(2, 8192)).astype(np.float32), 1000.0, 0.0, 1,
                        ("a", "b"), ("g", "g"))
    spool.append("waveform/m01", "waveform", codec.pack(big), 1.0)
    spool.append("waveform/m01", "waveform", feature_blob(2), 2.0)  # wrong kind on purpose: NACKed
    spool.append("features/m01", "features", feature_blob(3), 3.0)
    with run_in_thread(["tcp://127.0.0.1:0"], tmp_path / "store.sqlite", allow_dir=keys.allow,
                       secret_key=keys.server_secret_key()) as col:
        client = UplinkClient(uplink_cfg(col.endpoints, keys, max_message_bytes="32KiB", compression="none"),
                              spool, "gw-1")
        task = asyncio.create_task(client.run())
        await wait_for(lambda: spool.backlog("dc")[0] == 0, 10, "delivery")
        await stop(task)
    assert client.dead_lettered == 2  # the oversize one locally, the mislabelled one by the collector
    dl = DeadLetters(f"{spool.path}.deadletter.sqlite")
    reasons = {seq: why for _s, seq, _k, why in dl.rows("dc")}
    dl.close()
    assert "exceeds max_message_bytes" in reasons[1] and "header says" in reasons[2]
    spool.close()


async def test_alarm_overtakes_a_feature_backlog(tmp_path: Path) -> None:
    keys = make_keys(tmp_path)
    spool = open_spool(tmp_path / "spool.sqlite")
    for i in range(0, 3000, 100):
        spool.append_many([("features/m01", "features", feature_blob(i + j), time.time()) for j in range(100)])
    store = tmp_path / "store.sqlite"
    with run_in_thread(["tcp://127.0.0.1:0"], store, allow_dir=keys.allow, secret_key=keys.server_secret_key()) as col:
        client = UplinkClient(uplink_cfg(col.endpoints, keys, credit=32, batch_records=16), spool, "gw-1")
        task = asyncio.create_task(client.run())
        await wait_for(lambda: client.delivered >= 100, 10, "drain under way")
        # the pipeline learns the stream carries alarms from the first event it sees
        alarm = Event(EventKind.ALARM_RAISED, "m01", "bearing outer race", Severity.ALARM, time.time(), {})
        spool.append("event/gw-1", "event", codec.pack(alarm), time.time())
        client.notify()
        await wait_for(lambda: spool.backlog("dc")[0] == 0, 20, "drain")
        await stop(task)
    con = sqlite3.connect(store)
    (alarm_at,) = con.execute("SELECT at FROM received WHERE stream = 'event/gw-1'").fetchone()
    (behind,) = con.execute("SELECT count(*) FROM received WHERE stream = 'features/m01' AND at > ?",
                            (alarm_at,)).fetchone()
    con.close()
    assert behind > 1000  # most of the backlog was still queued when the alarm was stored


async def test_insecure_warns_at_every_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = open_spool(tmp_path / "spool.sqlite")
    client = UplinkClient(uplink_cfg([f"tcp://127.0.0.1:{free_port()}"], None), spool, "gw-1")
    with caplog.at_level(logging.WARNING, "edgekit.uplink"):
        task = asyncio.create_task(client.run())
        await asyncio.sleep(0.1)
        await stop(task)
    assert any("insecure" in r.message and r.levelno == logging.WARNING for r in caplog.records)
    spool.close()


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    from edgekit.config.parse import parse
    from edgekit.uplink import UplinkConfig

    with pytest.raises(ConfigError, match=r"uplinks\[0\].server_public_key: required for tcp://"):
        parse(UplinkConfig, {"name": "dc", "endpoints": ["tcp://h:1"]}, "uplinks[0]")
    with pytest.raises(ConfigError, match=r"endpoints\[0\]: 'http://x' must start with tcp://"):
        parse(UplinkConfig, {"name": "dc", "endpoints": ["http://x"], "insecure": True}, "uplinks[0]")
    with pytest.raises(ConfigError, match=r"compression: 'lz4' is not one of none, zstd, auto"):
        parse(UplinkConfig, {"name": "dc", "endpoints": ["ipc://x"], "compression": "lz4"}, "uplinks[0]")
    keys = make_keys(tmp_path)
    cfg = uplink_cfg(["tcp://127.0.0.1:1"], keys, server_public_key=str(tmp_path / "nope.key"))
    with pytest.raises(ConfigError, match="uplinks.dc.server_public_key: cannot read public key file"):
        UplinkClient(cfg, None, "gw-1")
    cfg = uplink_cfg(["tcp://127.0.0.1:1"], keys, public_key=str(keys.server_public))
    with pytest.raises(ConfigError, match="does not belong to the configured secret key"):
        UplinkClient(cfg, None, "gw-1")


async def test_zstd_compression_on_the_wire_is_transparent(tmp_path: Path) -> None:
    from edgekit.types import PointBatch

    keys = make_keys(tmp_path)
    spool = open_spool(tmp_path / "spool.sqlite")
    n = 500
    pb = PointBatch.build("plc", [f"t{i}" for i in range(n)], np.sin(np.arange(n) / 40.0), recv_ts=1.7e9)
    for _ in range(20):
        spool.append("points/plc", "points", codec.pack(pb), time.time())
    with run_in_thread(["tcp://127.0.0.1:0"], tmp_path / "store.sqlite", allow_dir=keys.allow,
                       secret_key=keys.server_secret_key()) as col:
        client = UplinkClient(uplink_cfg(col.endpoints, keys, compression="zstd"), spool, "gw-1")
        task = asyncio.create_task(client.run())
        await wait_for(lambda: spool.backlog("dc")[0] == 0, 10, "delivery")
        ratio = client.health()["compression_ratio"]
        await stop(task)
    assert ratio is not None and ratio < 0.5  # byte-shuffled smooth floats compress well
    con = sqlite3.connect(tmp_path / "store.sqlite")
    got = np.array([v for (v,) in con.execute("SELECT value FROM points WHERE seq = 7 ORDER BY rowid")])
    con.close()
    assert np.array_equal(got, pb.values)
    spool.close()


async def test_ipc_without_keys_needs_no_insecure_flag(tmp_path: Path) -> None:
    from edgekit.config.parse import parse
    from edgekit.uplink import UplinkConfig

    spool = open_spool(tmp_path / "spool.sqlite")
    spool.append_many([("features/m01", "features", feature_blob(i), 1.0) for i in range(5)])
    ep = f"ipc://{tmp_path}/collector.ipc"
    with run_in_thread([ep], tmp_path / "store.sqlite"):
        cfg = parse(UplinkConfig, {"name": "dc", "endpoints": [ep]}, "uplinks[0]")
        client = UplinkClient(cfg, spool, "gw-local")
        task = asyncio.create_task(client.run())
        await wait_for(lambda: spool.backlog("dc")[0] == 0, 10, "delivery over ipc")
        await stop(task)
    [s] = store_stats(tmp_path / "store.sqlite")
    assert (s["gateway"], s["records"]) == ("gw-local", 5)  # no key: the id comes from the header
    spool.close()
