"""CURVE keys and socket security for the uplink and the collector.

* Key files are ZeroMQ's certificate format (what ``zmq.auth.load_certificate`` reads)::

      <name>.key          public key only, shareable (goes into the collector's allow-list folder)
      <name>.key_secret   public + secret key, file mode 0600

  ``edgekit keys generate --out DIR --name N`` writes both (refusing to overwrite).
* Policy: every ``tcp://`` socket uses CURVE; plain NULL is allowed only on ``ipc://``/``inproc://``
  or when the operator sets ``insecure``, which logs a WARNING at every start.
* :func:`check_libzmq` refuses a libzmq built without CURVE or older than 4.3.3 (earlier versions
  have known remote-exploitable CURVE/ZMTP bugs, e.g. CVE-2020-15166).
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path

import zmq

from ..errors import UplinkError

__all__ = [
    "MIN_LIBZMQ",
    "check_libzmq",
    "generate_keypair",
    "is_secure_transport",
    "load_public_key",
    "parse_secret_key",
    "public_from_secret",
]

log = logging.getLogger("edgekit.uplink.security")

MIN_LIBZMQ = (4, 3, 3)
_KEY_RE = {
    "public": re.compile(r'public-key\s*=\s*"([^"]{40})"'),
    "secret": re.compile(r'secret-key\s*=\s*"([^"]{40})"'),
}
_Z85_RE = re.compile(r"^[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}$")


def check_libzmq(version: str | None = None, has_curve: bool | None = None) -> None:
    """Raise :class:`UplinkError` unless libzmq is ≥ 4.3.3 and built with CURVE."""
    version = version or zmq.zmq_version()
    has_curve = zmq.has("curve") if has_curve is None else has_curve
    try:
        parts = tuple(int(p) for p in version.split(".")[:3])
    except ValueError:
        raise UplinkError(f"cannot parse libzmq version {version!r}") from None
    if parts < MIN_LIBZMQ:
        raise UplinkError(
            f"libzmq {version} is older than {'.'.join(map(str, MIN_LIBZMQ))}; upgrade pyzmq/libzmq "
            "(older versions have known CURVE/ZMTP vulnerabilities)"
        )
    if not has_curve:
        raise UplinkError(f"libzmq {version} was built without CURVE security (zmq.has('curve') is False)")


def is_secure_transport(endpoint: str) -> bool:
    """True for transports that never leave the host (``ipc://``, ``inproc://``)."""
    return endpoint.startswith(("ipc://", "inproc://"))


def _header(kind: str, name: str) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return (
        f"#   ****  edgekit CURVE {kind} key for {name!r}, generated {stamp}  ****\n"
        "#   ZeroMQ certificate format (zmq.auth.load_certificate reads it)\n\n"
        f"metadata\n    name = \"{name}\"\n"
    )


def generate_keypair(out_dir: str | os.PathLike[str], name: str, *, overwrite: bool = False) -> tuple[Path, Path]:
    """Write ``<name>.key`` (public) and ``<name>.key_secret`` (mode 0600); return both paths."""
    if not name or not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name.startswith("."):
        raise UplinkError(f"key name {name!r} must be letters, digits, '-', '_' or '.'")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    public, secret = zmq.curve_keypair()
    pub_path, sec_path = out / f"{name}.key", out / f"{name}.key_secret"
    for p in (pub_path, sec_path):
        if p.exists() and not overwrite:
            raise UplinkError(f"{p} exists; refusing to overwrite a key (remove it first)")
    pub_text = _header("public", name) + f'curve\n    public-key = "{public.decode()}"\n'
    sec_text = _header("secret", name) + (
        f'curve\n    public-key = "{public.decode()}"\n    secret-key = "{secret.decode()}"\n'
    )
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(sec_path, flags, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(sec_text)
    os.chmod(sec_path, 0o600)  # also when the file existed with wider permissions
    pub_path.write_text(pub_text)
    return pub_path, sec_path


def _extract(text: str, which: str, origin: str) -> bytes:
    text = text.strip()
    if _Z85_RE.match(text):
        return text.encode("ascii")
    m = _KEY_RE[which].search(text)
    if not m:
        raise UplinkError(f"{origin}: no CURVE {which} key found (expected a key file from "
                          "`edgekit keys generate` or the 40-character Z85 key)")
    return m.group(1).encode("ascii")


def load_public_key(path: str | os.PathLike[str]) -> bytes:
    """The Z85 public key in a ``.key`` / ``.key_secret`` file (or a file holding just the key)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise UplinkError(f"cannot read public key file {str(path)!r}: {exc.strerror}") from None
    return _extract(text, "public", str(path))


def parse_secret_key(text: str, origin: str = "secret key") -> bytes:
    """The Z85 secret key from a ``.key_secret`` file's text or the bare 40-character key."""
    key = _extract(text, "secret", origin)
    try:
        zmq.curve_public(key)
    except zmq.ZMQError as exc:
        raise UplinkError(f"{origin}: not a valid CURVE secret key ({exc})") from None
    return key


def public_from_secret(secret: bytes) -> bytes:
    return zmq.curve_public(secret)


def check_secret_file_mode(path: str | os.PathLike[str]) -> None:
    """Warn when a secret key file is readable by group or others."""
    try:
        mode = os.stat(path).st_mode & 0o077
    except OSError:
        return
    if mode:
        log.warning("secret key file %s is accessible by group/others (mode %o); chmod 600 it", path,
                    os.stat(path).st_mode & 0o777)
