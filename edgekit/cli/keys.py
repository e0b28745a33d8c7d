"""``edgekit keys generate --out DIR [--name N]``: create a CURVE key pair for a gateway or collector.

Writes ``DIR/N.key`` (public: copy it to the collector's allow-list folder, or to gateways as the
pinned ``server_public_key``) and ``DIR/N.key_secret`` (mode 0600: keep it on the machine).
"""

from __future__ import annotations

import argparse
import socket

from ..uplink.security import check_libzmq, generate_keypair


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("keys", help="CURVE key pairs for uplinks and collectors")
    ksub = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    g = ksub.add_parser("generate", help="write NAME.key (public) and NAME.key_secret (0600)")
    g.add_argument("--out", required=True, help="folder to write the key files into")
    g.add_argument("--name", default=socket.gethostname(), help="key name (default: host name)")
    g.add_argument("--force", action="store_true", help="overwrite existing key files")
    g.set_defaults(func=generate)


def generate(args: argparse.Namespace) -> int:
    check_libzmq()
    pub, sec = generate_keypair(args.out, args.name, overwrite=args.force)
    print(f"public key: {pub}\nsecret key: {sec} (mode 0600; keep it private)")
    return 0
