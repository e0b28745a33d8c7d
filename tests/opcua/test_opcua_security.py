"""Security: every policy × mode, auto choice, server-certificate trust, TOFU, user names."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from opcua_helpers import PASSWORD, USER, Pki, ServerProcess, make_config, running, secure_kw

from edgekit.config.parse import Secret
from edgekit.connectors.opcua.certgen import generate
from edgekit.errors import ConfigError
from edgekit.types import EventKind

NODE = [{"tag": "speed", "node_id": "ns=2;s=Machine01.SpeedRpm"}]


@pytest.mark.parametrize("mode", ["Sign", "SignAndEncrypt"])
@pytest.mark.parametrize("policy", ["Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"])
async def test_policy_and_mode(opcua_server: ServerProcess, pki: Pki, policy: str, mode: str) -> None:
    cfg = make_config(opcua_server.endpoint, nodes=NODE, **secure_kw(pki, security_policy=policy, security_mode=mode))
    async with running(cfg) as r:
        await r.wait_for(lambda s: ("t", "speed") in s.latest(), what=f"data over {policy}/{mode}")
        assert r.connector.health()["security"] == f"{policy}/{mode} (server cert pinned)"


async def test_auto_picks_the_strongest_policy(opcua_server: ServerProcess, pki: Pki) -> None:
    cfg = make_config(opcua_server.endpoint, nodes=NODE, **secure_kw(pki))
    async with running(cfg) as r:
        await r.wait_for(lambda s: ("t", "speed") in s.latest())
        assert r.connector.health()["security"].startswith("Aes256_Sha256_RsaPss/SignAndEncrypt")


async def test_auto_without_certificate_needs_allow_insecure(opcua_server: ServerProcess) -> None:
    cfg = make_config(opcua_server.endpoint, nodes=NODE, allow_insecure=False)
    async with running(cfg) as r:
        await r.wait_for(lambda s: r.connector.health()["errors"] >= 1)
        assert "allow_insecure" in r.connector.health()["last_error"]
        assert EventKind.CONNECTOR_UP not in r.sink.kinds()


async def test_unknown_server_certificate_is_rejected(opcua_server: ServerProcess, pki: Pki, tmp_path: Path) -> None:
    empty = tmp_path / "trust"
    empty.mkdir()
    cfg = make_config(opcua_server.endpoint, nodes=NODE, **secure_kw(pki, trust_dir=str(empty)))
    async with running(cfg) as r:
        await r.wait_for(lambda s: r.connector.health()["errors"] >= 1)
        err = r.connector.health()["last_error"]
    assert "not trusted" in err and "SHA-256" in err
    assert not r.sink.points_ and EventKind.CONNECTOR_UP not in r.sink.kinds()


async def test_other_certificate_in_trust_dir_is_not_enough(opcua_server: ServerProcess, pki: Pki, tmp_path: Path) -> None:
    other = generate(tmp_path / "other", "urn:someone:else", ["localhost"], server=True)
    trust = tmp_path / "trust"
    trust.mkdir()
    shutil.copy(other.cert_path, trust / "other.der")
    cfg = make_config(opcua_server.endpoint, nodes=NODE, **secure_kw(pki, trust_dir=str(trust)))
    async with running(cfg) as r:
        await r.wait_for(lambda s: r.connector.health()["errors"] >= 1)
        assert "not trusted" in r.connector.health()["last_error"]


async def test_trust_on_first_use_records_the_fingerprint(opcua_server: ServerProcess, pki: Pki, tmp_path: Path) -> None:
    trust = tmp_path / "tofu"
    cfg = make_config(opcua_server.endpoint, nodes=NODE, **secure_kw(pki, trust_dir=str(trust), trust_on_first_use=True))
    async with running(cfg) as r:
        await r.wait_for(lambda s: ("t", "speed") in s.latest())
        assert "recorded" in r.connector.health()["security"]
    recorded = list(trust.glob("*.der"))
    assert len(recorded) == 1 and recorded[0].read_bytes() == (pki.server / "cert.der").read_bytes()
    cfg2 = make_config(opcua_server.endpoint, nodes=NODE, **secure_kw(pki, trust_dir=str(trust)))
    async with running(cfg2) as r:  # now trusted without TOFU
        await r.wait_for(lambda s: ("t", "speed") in s.latest())
        assert "pinned" in r.connector.health()["security"]


async def test_user_and_password(opcua_server: ServerProcess, pki: Pki) -> None:
    cfg = make_config(opcua_server.endpoint, nodes=NODE,
                      **secure_kw(pki, username=USER, password=PASSWORD))
    async with running(cfg) as r:
        await r.wait_for(lambda s: ("t", "speed") in s.latest())


async def test_wrong_password_is_refused_clearly(opcua_server: ServerProcess, pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    cfg = make_config(opcua_server.endpoint, nodes=NODE, **secure_kw(pki, username=USER, password="wrong-pw-123"))
    async with running(cfg) as r:
        await r.wait_for(lambda s: r.connector.health()["errors"] >= 1)
        err = r.connector.health()["last_error"]
    assert f"server refused user {USER!r}" in err and "BadUserAccessDenied" in err and "password" in err
    assert "wrong-pw-123" not in err and "wrong-pw-123" not in caplog.text
    assert not r.sink.points_


def test_password_needs_an_encrypted_channel(pki: Pki) -> None:
    with pytest.raises(ConfigError, match="only sent over an encrypted channel"):
        make_config("opc.tcp://127.0.0.1:1/x", nodes=NODE, security_policy="None", username=USER, password=PASSWORD)
    with pytest.raises(ConfigError, match="encrypted"):
        make_config("opc.tcp://127.0.0.1:1/x", nodes=NODE,
                    **secure_kw(pki, security_policy="Basic256Sha256", security_mode="Sign", username=USER, password=PASSWORD))
    cfg = make_config("opc.tcp://127.0.0.1:1/x", nodes=NODE, **secure_kw(pki, username=USER, password=PASSWORD))
    assert isinstance(cfg.password, Secret) and PASSWORD not in repr(cfg)


def test_policy_none_needs_allow_insecure() -> None:
    with pytest.raises(ConfigError, match="allow_insecure"):
        make_config("opc.tcp://127.0.0.1:1/x", nodes=NODE, security_policy="None", allow_insecure=False)


async def test_application_uri_must_match_certificate(opcua_server: ServerProcess, pki: Pki) -> None:
    cfg = make_config(opcua_server.endpoint, nodes=NODE, **secure_kw(pki, application_uri="urn:not:the:cert"))
    async with running(cfg) as r:
        await r.wait_for(lambda s: r.connector.health()["errors"] >= 1)
        assert "differs from the URI in client_cert" in r.connector.health()["last_error"]
