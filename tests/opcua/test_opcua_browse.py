"""Discovery: `edgekit browse` → profile → a config naming the profile unchanged reads every tag."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from cryptography import x509
from opcua_helpers import Pki, ServerProcess, make_config, running, secure_kw

from edgekit.cli import main as cli_main
from edgekit.connectors.opcua.certgen import application_uri_of
from edgekit.types import Quality

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command line in a subprocess (used once, to prove `python -m edgekit browse` works)."""
    return subprocess.run([sys.executable, "-m", "edgekit", *args], capture_output=True, text=True, timeout=60,
                          cwd=REPO)


def _inproc(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli_main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


async def test_browse_profile_reads_all_tags(opcua_server: ServerProcess, pki: Pki, tmp_path: Path) -> None:
    out = tmp_path / "found.toml"
    proc = _cli("browse", opcua_server.endpoint, "--cert", str(pki.client / "cert.der"),
                "--key", str(pki.client / "key.pem"), "--trust-dir", str(pki.trust), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    prof = tomllib.loads(out.read_text())
    nodes = prof["nodes"]
    by_id = {n["node_id"]: n for n in nodes}
    assert by_id["ns=2;s=Machine01.SpeedRpm"]["data_type"] == "Float"
    assert by_id["ns=2;s=Machine01.SpeedRpm"]["unit"] == "r/min"
    assert by_id["ns=2;s=Types.UInt64"]["browse_path"] == "Types/UInt64"
    assert len(nodes) == 2 * 10 + 2 * 3 + 15 + 2  # machine scalars, vibration scalars, Types, Test
    assert {w["asset"] for w in prof["waveforms"]} == {"Plant.Machine01.Vibration", "Plant.Machine02.Vibration"}

    cfg = make_config(opcua_server.endpoint, profile=str(out), **secure_kw(pki))
    async with running(cfg) as r:
        await r.wait_for(lambda s: len(s.latest()) == len(nodes), what="every discovered tag")
        await r.wait_for(lambda s: {b.asset for b in s.blocks} == {"Plant.Machine01.Vibration",
                                                                 "Plant.Machine02.Vibration"}, what="waveforms")
        latest = r.sink.latest()
    assert all(v[2] == Quality.GOOD for v in latest.values()), [k for k, v in latest.items() if v[2]]


def test_browse_limits_and_filter(opcua_server: ServerProcess, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _inproc(capsys, "browse", opcua_server.endpoint, "--allow-insecure", "--max-nodes", "5")
    assert code == 1 and "incomplete" in err
    code, out, err = _inproc(capsys, "browse", opcua_server.endpoint, "--allow-insecure", "--filter", "Types/*", "--json")
    assert code == 0, err
    assert out.count('"node_id"') == 15
    code, _, err = _inproc(capsys, "browse", opcua_server.endpoint)  # secure by default: no cert, no --allow-insecure
    assert code == 1 and "allow_insecure" in err


def test_certs_generate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pki"
    assert cli_main(["certs", "generate", "--out", str(out), "--uri", "urn:acme:gw:1", "--hostname", "gw1"]) == 0
    cert = x509.load_der_x509_certificate((out / "cert.der").read_bytes())
    assert application_uri_of(cert) == "urn:acme:gw:1"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["gw1"]
    assert (out / "key.pem").stat().st_mode & 0o777 == 0o600
    assert "SHA-256" in capsys.readouterr().out
    assert cli_main(["certs", "generate", "--out", str(out), "--uri", "urn:acme:gw:1"]) == 2  # exists
    assert cli_main(["certs", "generate", "--out", str(tmp_path / "x"), "--uri", "nouri"]) == 2
