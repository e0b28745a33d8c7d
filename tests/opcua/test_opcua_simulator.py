"""Against the real plant simulator (`edgekit simulate --secure` in a subprocess).

The shipped profile ``edgekit-sim`` reads every process tag and both vibration channels of every
machine over Aes256_Sha256_RsaPss/SignAndEncrypt with a user name, and `edgekit browse` against
the simulator writes a profile that, used unchanged, reads all tags too.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from opcua_helpers import Pki, make_config, running, secure_kw

from edgekit.cli import main as cli_main
from edgekit.types import Quality

sim_spawn = pytest.importorskip("edgekit.sim.spawn")

MACHINES = ["Machine01", "Machine02"]
pytestmark = pytest.mark.slow  # starts the whole plant simulator


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    root = tmp_path_factory.mktemp("sim")
    proc = sim_spawn.spawn(["--machines", "2", "--opcua-port", "0", "--no-modbus", "--secure",
                            "--cert-dir", str(root / "pki"), "--user", "operator:sim-pw", "--speedup", "4"])
    try:
        info = sim_spawn.wait_ready(proc, timeout=60)
        trust = root / "trusted"
        trust.mkdir()
        shutil.copy(info["OPCUA_CERT"], trust / Path(info["OPCUA_CERT"]).name)
        info["TRUST_DIR"] = str(trust)
        yield info
    finally:
        proc.kill()
        proc.wait(10)


def _all_good(latest: dict[tuple[str, str], tuple[float, str | None, int, str]], n: int) -> bool:
    return len(latest) == n and all(v[2] == Quality.GOOD for v in latest.values())


async def test_shipped_profile_reads_the_simulator(simulator: dict[str, str], pki: Pki) -> None:
    cfg = make_config(simulator["OPCUA_ENDPOINT"], profile="edgekit-sim", machines=MACHINES,
                      **secure_kw(pki, trust_dir=simulator["TRUST_DIR"], username="operator", password="sim-pw"))
    async with running(cfg) as r:
        await r.wait_for(lambda s: _all_good(s.latest(), 20), timeout=20, what="20 good tags")
        await r.wait_for(lambda s: {b.asset for b in s.blocks} == set(MACHINES), timeout=20, what="blocks")
        assert r.connector.health()["security"].startswith("Aes256_Sha256_RsaPss/SignAndEncrypt")
    latest = r.sink.latest()
    assert 1300 < latest[("Machine01", "speed_rpm")][0] < 1700
    assert latest[("Machine02", "name")][1] == "MACHINE-02"
    block = r.sink.blocks[0]
    assert block.data.shape == (2, 8192) and block.fs == 25600.0 and block.channels == ("ch0", "ch1")
    assert block.speed_hz is not None and 20 < block.speed_hz < 30


def test_browse_the_simulator_then_read_everything(simulator: dict[str, str], pki: Pki, tmp_path: Path) -> None:
    import asyncio

    out = tmp_path / "sim.toml"
    code = cli_main(["browse", simulator["OPCUA_ENDPOINT"], "--cert", str(pki.client / "cert.der"),
                     "--key", str(pki.client / "key.pem"), "--trust-dir", simulator["TRUST_DIR"], "--out", str(out)])
    assert code == 0
    text = out.read_text()
    assert 'node_id = "ns=2;s=Machine02.EnergyWh"' in text and "[[waveforms]]" in text
    n_nodes = text.count("[[nodes]]")
    assert n_nodes >= 2 * (10 + 3)

    async def read_all() -> None:
        cfg = make_config(simulator["OPCUA_ENDPOINT"], profile=str(out),
                          **secure_kw(pki, trust_dir=simulator["TRUST_DIR"]))
        async with running(cfg) as r:
            await r.wait_for(lambda s: _all_good(s.latest(), n_nodes), timeout=20, what="every browsed tag")
            await r.wait_for(lambda s: len({b.asset for b in s.blocks}) == 2, timeout=20, what="both waveforms")

    asyncio.run(read_all())
