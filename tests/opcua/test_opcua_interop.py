"""Interoperability with a server that is not asyncua: node-opcua (``tests/opcua/interop/server.js``).

Needs Node.js and ``npm ci`` (or ``npm install``) in ``tests/opcua/interop``; skipped cleanly
otherwise. Data access (subscription, every scalar type the server has, Int64, the waveform
group) over Basic256Sha256/SignAndEncrypt with a user name, the server certificate pinned.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from opcua_helpers import Pki, Proxy, free_port, make_config, running, secure_kw

from edgekit.types import EventKind, Quality

INTEROP = Path(__file__).resolve().parent / "interop"
NODE = shutil.which("node")

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    NODE is None or not (INTEROP / "node_modules" / "node-opcua").is_dir(),
    reason="node-opcua interop needs Node.js and `npm ci` in tests/opcua/interop",
)]


@pytest.fixture(scope="module")
def node_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    pki = tmp_path_factory.mktemp("node-pki")
    port = free_port()
    assert NODE is not None
    proc = subprocess.Popen([NODE, str(INTEROP / "server.js"), str(port), str(pki)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, cwd=INTEROP, env=dict(os.environ))
    try:
        assert proc.stdout is not None
        seen: list[str] = []
        while not (line := proc.stdout.readline()).startswith("READY"):  # node-opcua may log first
            seen.append(line)
            if not line or len(seen) > 200:
                pytest.fail(f"node-opcua server did not start: {''.join(seen[-5:])!r}")
        trust = pki / "trusted"
        trust.mkdir()
        shutil.copy(pki / "server_cert.der", trust / "node-opcua.der")
        yield f"opc.tcp://127.0.0.1:{port}/edgekit/sim", trust
    finally:
        proc.kill()
        proc.wait(10)


async def test_node_opcua_basic256sha256_sign_and_encrypt(node_server: tuple[str, Path], pki: Pki) -> None:
    endpoint, trust = node_server
    cfg = make_config(endpoint, profile="edgekit-sim", machines=["Machine01"], nodes=[], **secure_kw(
        pki, trust_dir=str(trust), security_policy="Basic256Sha256", security_mode="SignAndEncrypt",
        username="operator", password="s3cret"))
    async with running(cfg) as r:
        await r.wait_for(lambda s: len(s.latest()) == 10, what="profile tags")
        await r.wait_for(lambda s: len(s.blocks) >= 2, what="waveform blocks")
        assert r.connector.health()["security"] == "Basic256Sha256/SignAndEncrypt (server cert pinned)"
    latest = r.sink.latest()
    assert latest[("Machine01", "speed_rpm")][2] == Quality.GOOD and 1470 < latest[("Machine01", "speed_rpm")][0] < 1490
    assert latest[("Machine01", "energy_wh")][0] == 2**40 + 5
    assert latest[("Machine01", "name")][1] == "MACHINE-01"
    assert latest[("Machine01", "running")][0] == 1.0
    # tags the node-opcua server does not have are Bad with the server's reason, not silently missing
    assert latest[("Machine01", "run_hours")][2] == Quality.BAD
    assert latest[("Machine01", "run_hours")][3] == "BadNodeIdUnknown"
    b = r.sink.blocks[-1]
    assert b.data.shape == (2, 1024) and b.fs == 25600.0 and b.seq > r.sink.blocks[0].seq


async def test_node_opcua_auto_policy_and_rejected_certificate(node_server: tuple[str, Path], pki: Pki,
                                                               tmp_path: Path) -> None:
    endpoint, trust = node_server
    cfg = make_config(endpoint, nodes=[{"tag": "s", "node_id": "nsu=urn:edgekit:sim;s=Machine01.SpeedRpm"}],
                      **secure_kw(pki, trust_dir=str(trust)))
    async with running(cfg) as r:
        await r.wait_for(lambda s: bool(s.points_))
        assert r.connector.health()["security"].startswith("Aes256_Sha256_RsaPss/SignAndEncrypt")
    (tmp_path / "empty").mkdir()
    cfg = make_config(endpoint, nodes=[{"tag": "s", "node_id": "ns=1;s=Machine01.SpeedRpm"}],
                      **secure_kw(pki, trust_dir=str(tmp_path / "empty")))
    async with running(cfg) as r:
        await r.wait_for(lambda s: r.connector.health()["errors"] >= 1)
        assert "not trusted" in r.connector.health()["last_error"] and not r.sink.points_


async def test_node_opcua_subscription_is_transferred_after_a_cut(node_server: tuple[str, Path], pki: Pki) -> None:
    """node-opcua implements TransferSubscriptions: after a cut TCP connection the subscription
    of the old session moves to the new one (same id) and data flows again."""
    endpoint, trust = node_server
    port = int(endpoint.rsplit(":", 1)[1].split("/", 1)[0])
    proxy = Proxy(port)
    await proxy.start()
    try:
        via = f"opc.tcp://127.0.0.1:{proxy.port}/edgekit/sim"
        cfg = make_config(via, nodes=[{"tag": "s", "node_id": "nsu=urn:edgekit:sim;s=Machine01.SpeedRpm",
                                       "sampling_interval": "50ms"}],
                          **secure_kw(pki, trust_dir=str(trust), security_policy="Basic256Sha256"))
        async with running(cfg) as r:
            await r.wait_for(lambda s: len(s.points_) >= 2)
            sub_id = r.connector.health()["subscription_id"]
            proxy.cut()
            await r.wait_for(lambda s: EventKind.CONNECTOR_DOWN in s.kinds(), timeout=10)
            await r.wait_for(lambda s: s.kinds().count(EventKind.CONNECTOR_UP) == 2, timeout=10, what="up again")
            n = len(r.sink.points_)
            await r.wait_for(lambda s: len(s.points_) >= n + 2, timeout=10, what="data after the cut")
            health = r.connector.health()
        assert health["subscription_transfers"] == 1 and health["subscription_id"] == sub_id, (health, r.sink.events)
    finally:
        await proxy.stop()


async def test_node_opcua_percent_deadband(node_server: tuple[str, Path], pki: Pki) -> None:
    """Percent deadband (of the EURange 0..100): only changes > 10 % of the range are reported."""
    endpoint, trust = node_server
    node = "nsu=urn:edgekit:sim;s=Machine01.LoadPct"
    cfg = make_config(endpoint, writable=True, nodes=[
        {"tag": "db", "node_id": node, "deadband_type": "percent", "deadband": 10.0, "sampling_interval": "0s"},
        {"tag": "all", "node_id": node, "writable": True, "sampling_interval": "0s"},
    ], **secure_kw(pki, trust_dir=str(trust)))
    async with running(cfg) as r:
        await r.wait_for(lambda s: s.latest().get(("t", "db"), (0,))[0] == 50.0, what="initial value")
        for v in (55.0, 62.0, 65.0, 80.0):
            await r.connector.write("all", v)
            await r.wait_for(lambda s, v=v: s.latest()[("t", "all")][0] == v, what=f"value {v}")
        await r.wait_for(lambda s: s.latest()[("t", "db")][0] == 80.0, what="db at 80")
    seen = {tag: [float(b.values[i]) for b in r.sink.points_ for i, t in enumerate(b.tags) if t == tag]
            for tag in ("db", "all")}
    assert seen["db"] == [50.0, 62.0, 80.0]
    assert seen["all"] == [50.0, 55.0, 62.0, 65.0, 80.0]
