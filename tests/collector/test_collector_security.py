"""Security of the collector: every kind of bad peer is rejected and counted; the legit gateway is unaffected."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import msgpack
import zmq
import zmq.asyncio

from edgekit.collector import run_in_thread, store_stats
from edgekit.uplink import UplinkClient
from edgekit.uplink import frames as F
from edgekit.uplink.security import parse_secret_key

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "uplink"))
from uplink_helpers import feature_blob, make_keys, open_spool, uplink_cfg, wait_for

MAX = 64 << 10


def dealer(ctx: zmq.asyncio.Context, endpoint: str, server: bytes | None, secret: bytes | None) -> zmq.asyncio.Socket:
    s = ctx.socket(zmq.DEALER)
    s.linger = 0
    if server is not None and secret is not None:
        s.curve_serverkey = server
        s.curve_secretkey = secret
        s.curve_publickey = zmq.curve_public(secret)
    s.connect(endpoint)
    return s


async def ask(sock: zmq.asyncio.Socket, frames: list[bytes], timeout: float = 1.0) -> F.Message | None:
    await sock.send_multipart(frames)
    if await sock.poll(int(timeout * 1000)) == 0:
        return None
    return F.decode(await sock.recv_multipart())


async def test_bad_peers_rejected_and_counted_legit_gateway_unaffected(tmp_path: Path) -> None:
    keys = make_keys(tmp_path, gateways=("gw-1", "gw-2", "stranger"), allowed=("gw-1", "gw-2"))
    store = tmp_path / "store.sqlite"
    col = run_in_thread(["tcp://127.0.0.1:0"], store, allow_dir=keys.allow, secret_key=keys.server_secret_key(),
                        max_message_bytes=MAX, reload_interval_s=3600)
    c = col.collector
    ep = col.endpoints[0]
    server = keys.server_public_key()
    sec = {g: parse_secret_key(p[1].read_text()) for g, p in keys.gateways.items()}

    # the legitimate gateway delivers continuously through all of it
    spool = open_spool(tmp_path / "spool.sqlite")
    client = UplinkClient(uplink_cfg([ep], keys), spool, "gw-1")
    task = asyncio.create_task(client.run())
    stop_feed = asyncio.Event()

    async def feed() -> None:
        i = 0
        while not stop_feed.is_set():
            spool.append_many([("features/m01", "features", feature_blob(i + j), time.time()) for j in range(5)])
            i += 5
            client.notify()
            await asyncio.sleep(0.02)

    feeder = asyncio.create_task(feed())
    ctx = zmq.asyncio.Context()
    try:
        def rejects(name: str) -> int:
            return int(c.rejects.get(name, 0))

        def handshakes() -> int:
            return sum(v for k, v in c.rejects.items() if k.startswith("handshake"))

        # 1. a key that is not in the allow-list: no answer, ZAP denial counted
        s = dealer(ctx, ep, server, sec["stranger"])
        assert await ask(s, F.encode(F.Hello("stranger", "e", {}, 8))) is None
        await wait_for(lambda: c.allow is not None and c.allow.denied >= 1 and handshakes() >= 1, 5, "ZAP denial")
        s.close()

        # 2. a plain NULL client
        before = handshakes()
        s = dealer(ctx, ep, None, None)
        assert await ask(s, F.encode(F.Hello("gw-1", "e", {}, 8))) is None
        await wait_for(lambda: handshakes() > before, 5, "NULL handshake failure")
        s.close()

        # 3. an allowed key but the wrong server key (not the collector it pinned)
        before = handshakes()
        wrong_server, _ = zmq.curve_keypair()
        s = dealer(ctx, ep, wrong_server, sec["gw-2"])
        assert await ask(s, F.encode(F.Hello("gw-2", "e", {}, 8))) is None
        await wait_for(lambda: handshakes() > before, 5, "wrong-server-key handshake failure")
        s.close()

        # 4.-7. an authenticated gw-2 misbehaving
        s = dealer(ctx, ep, server, sec["gw-2"])
        reply = await ask(s, F.encode(F.Hello("gw-1", "e", {}, 8)))  # claims to be gw-1
        assert isinstance(reply, F.Error) and reply.code == "bad_gateway_id"
        data = F.encode(F.Data("gw-2", "e", [F.DataRecord("x/y", 1, "features", 0.0, feature_blob(1))]))
        reply = await ask(s, data)  # DATA without a session
        assert isinstance(reply, F.Error) and reply.code == "no_session"
        assert isinstance(await ask(s, F.encode(F.Hello("gw-2", "e", {}, 8))), F.Welcome)
        spoof = F.encode(F.Data("gw-1", "e", [F.DataRecord("x/y", 1, "features", 0.0, feature_blob(1))]))
        reply = await ask(s, spoof)  # DATA naming another gateway inside its own session
        assert isinstance(reply, F.Error) and reply.code == "bad_gateway_id"
        assert isinstance(await ask(s, F.encode(F.Hello("gw-2", "e", {}, 8))), F.Welcome)
        reply = await ask(s, [b"EK2", msgpack.packb({"t": "DATA"}), b"\0" * (MAX + 100)])  # oversized
        assert isinstance(reply, F.Error) and reply.code == "malformed"
        for garbage in ([b"GET / HTTP/1.1"], [b"EK2", b"\xc1\xc1"], [b"EK9", b"x"], [b"EK2", msgpack.packb({"t": 1})]):
            reply = await ask(s, garbage)
            assert isinstance(reply, F.Error) and reply.code == "malformed"
        # an undecodable record inside a well-formed message: NACKed for good, then acknowledged
        bad = F.encode(F.Data("gw-2", "e", [F.DataRecord("x/y", 1, "features", 0.0, b"not a record")]))
        reply = await ask(s, bad)
        assert isinstance(reply, F.Nack) and reply.seq == 1 and "undecodable" in reply.reason
        assert F.decode(await s.recv_multipart()) == F.Ack("e", {"x/y": 1})

        assert rejects("bad_gateway_id") == 2
        assert rejects("no_session") == 1
        assert rejects("oversized") == 1
        assert rejects("malformed") == 4
        assert rejects("nack") == 1

        # 8. revocation: removing gw-2's key cuts its open session and refuses new handshakes
        (keys.allow / "gw-2.key").unlink()
        c.request_reload()
        await asyncio.sleep(0.3)
        reply = await ask(s, F.encode(F.Ping(1.0)))
        assert isinstance(reply, F.Error) and reply.code == "revoked"
        while await s.poll(300):  # the session was cut (one ERROR) and the ping refused (another)
            assert F.decode(await s.recv_multipart()).code == "revoked"  # type: ignore[union-attr]
        reply = await ask(s, F.encode(F.Hello("gw-2", "e", {}, 8)))
        assert isinstance(reply, F.Error) and reply.code == "revoked"
        s.close()
        denied = c.allow.denied if c.allow else 0
        s = dealer(ctx, ep, server, sec["gw-2"])
        assert await ask(s, F.encode(F.Hello("gw-2", "e", {}, 8))) is None
        await wait_for(lambda: c.allow is not None and c.allow.denied > denied, 5, "revoked key denied")
        s.close()

        # the legit gateway was never disturbed
        stop_feed.set()
        await feeder
        await wait_for(lambda: spool.backlog("dc")[0] == 0, 15, "legit backlog drained")
        assert client.sessions == 1 and client.resent == 0
        counters: dict[str, Any] = c.counters()
        print(f"\n[security] rejects={counters['rejects']} denied_handshakes={counters['denied_handshakes']}")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        ctx.destroy(linger=0)
        col.stop()
        spool.close()
    legit = [s for s in store_stats(store) if s["gateway"] == "gw-1"]
    assert len(legit) == 1 and legit[0]["missing"] == 0 and legit[0]["duplicates_rejected"] == 0
    assert legit[0]["records"] == legit[0]["last_seq"] > 0
    assert not [s for s in store_stats(store) if s["gateway"] == "gw-2" and s["nacked"] != 1]
