"""``edgekit certs generate --out DIR --uri URN [--hostname H …]``: an OPC UA client certificate.

Writes ``DIR/cert.der`` and ``DIR/key.pem`` (0600). The URI goes into subjectAltName; point the
connection's ``client_cert``/``client_key`` at the files and leave ``application_uri`` unset (it is
read from the certificate), or set it to exactly this URI. Give the server's administrator
``cert.der`` to trust.
"""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

from ..errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("certs", help="OPC UA application instance certificates")
    csub = p.add_subparsers(dest="certs_command", metavar="ACTION", required=True)
    g = csub.add_parser("generate", help="write cert.der and key.pem (self-signed, application URI in SAN)")
    g.add_argument("--out", required=True, help="folder to write cert.der and key.pem into")
    g.add_argument("--uri", required=True, help="application URI, e.g. urn:acme:gateway:line1")
    g.add_argument("--hostname", action="append", help="DNS name for subjectAltName (repeatable; default: this host)")
    g.add_argument("--cn", default="", help="certificate common name (default: edgekit@<host>)")
    g.add_argument("--days", type=int, default=3650, help="validity in days (default 3650)")
    g.add_argument("--force", action="store_true", help="overwrite existing files")
    g.set_defaults(func=generate)


def generate(args: argparse.Namespace) -> int:
    from ..connectors.opcua.certgen import generate as generate_cert

    if ":" not in args.uri:
        raise ConfigError("--uri", f"{args.uri!r} is not a URI (like urn:acme:gateway:line1)")
    if args.days < 1:
        raise ConfigError("--days", f"{args.days} must be >= 1")
    try:
        made = generate_cert(
            Path(args.out), args.uri, args.hostname or [socket.gethostname()],
            common_name=args.cn or f"edgekit@{socket.gethostname()}", days=args.days, overwrite=args.force,
        )
    except FileExistsError as exc:
        raise ConfigError("--out", f"{exc}") from None
    print(f"certificate: {made.cert_path}\nprivate key: {made.key_path} (mode 0600)")
    print(f"application URI: {made.application_uri}\nSHA-256: {made.fingerprint}")
    return 0
