"""Key generation, key parsing and the libzmq startup check."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import zmq.auth

from edgekit.cli import keys as keys_cli
from edgekit.errors import UplinkError
from edgekit.uplink import security


def main(argv: list[str]) -> int:
    """Run only the ``keys`` sub-command (other sub-commands are not needed here)."""
    import argparse

    from edgekit.errors import EdgekitError

    parser = argparse.ArgumentParser()
    keys_cli.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except EdgekitError as exc:
        import sys

        print(f"edgekit: {exc}", file=sys.stderr)
        return 1


def test_keys_generate_cli_writes_pair_with_private_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "generate", "--out", str(tmp_path / "k"), "--name", "gw-1"]) == 0
    pub, sec = tmp_path / "k" / "gw-1.key", tmp_path / "k" / "gw-1.key_secret"
    assert stat.S_IMODE(sec.stat().st_mode) == 0o600
    # zmq's own loader reads both files, and the pair matches
    p1, s1 = zmq.auth.load_certificate(sec)
    p2, s2 = zmq.auth.load_certificate(pub)
    assert p1 == p2 and s2 is None and s1 is not None and zmq.curve_public(s1) == p1
    assert security.load_public_key(pub) == p1
    assert security.parse_secret_key(sec.read_text()) == s1
    # refuses to overwrite
    assert main(["keys", "generate", "--out", str(tmp_path / "k"), "--name", "gw-1"]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err


def test_bad_key_material_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "x.key"
    bad.write_text("hello")
    with pytest.raises(UplinkError, match="x.key: no CURVE public key"):
        security.load_public_key(bad)
    with pytest.raises(UplinkError, match="cannot read public key file"):
        security.load_public_key(tmp_path / "missing.key")
    with pytest.raises(UplinkError, match="no CURVE secret key"):
        security.parse_secret_key("not a key")
    with pytest.raises(UplinkError, match="letters, digits"):
        security.generate_keypair(tmp_path, "../evil")


def test_bare_z85_keys_are_accepted() -> None:
    pub, sec = zmq.curve_keypair()
    assert security.parse_secret_key(sec.decode()) == sec
    assert security.public_from_secret(sec) == pub


@pytest.mark.parametrize("version, curve, message", [
    ("4.3.2", True, "older than 4.3.3"),
    ("4.2.5", True, "older than"),
    ("4.3.5", False, "without CURVE"),
    ("x.y", True, "cannot parse"),
])
def test_libzmq_check_refuses(version: str, curve: bool, message: str) -> None:
    with pytest.raises(UplinkError, match=message):
        security.check_libzmq(version, curve)


def test_libzmq_check_accepts_this_machine() -> None:
    security.check_libzmq()
    security.check_libzmq("4.3.3", True)
