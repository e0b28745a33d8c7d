"""``edgekit browse opc.tcp://… [--depth N] [--filter GLOB] [--max-nodes N] [--out profile.toml]``.

Walks the server's address space (below Objects, or ``--root``) and prints one line per variable
(node id, browse path, data type, array dimensions, unit), or with ``--out`` writes a device
profile that a config can use unchanged (``profile = "profile.toml"``). Security options are the
connection keys; an unsecured session needs ``--allow-insecure``. Exit code 1 when the walk was
cut short by ``--max-nodes``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from ..config.parse import Secret
from ..connectors.opcua.config import OpcUaConnectionConfig
from ..errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("browse", help="walk an OPC UA server and write a device profile")
    p.add_argument("endpoint", help="opc.tcp://host:port/path")
    p.add_argument("--depth", type=int, default=10, help="levels below the start node (default 10)")
    p.add_argument("--max-nodes", type=int, default=10000, help="stop after visiting this many nodes (default 10000)")
    p.add_argument("--filter", default="*", help="glob on the browse path of variables, e.g. 'Plant/Machine01/*'")
    p.add_argument("--root", default="i=85", help="start node id (default i=85, the Objects folder)")
    p.add_argument("--out", help="write a profile TOML here instead of printing")
    p.add_argument("--json", action="store_true", help="print JSON rows instead of text")
    p.add_argument("--policy", default="auto", help="auto | None | Basic256Sha256 | Aes128_Sha256_RsaOaep | Aes256_Sha256_RsaPss")
    p.add_argument("--mode", default="SignAndEncrypt", help="Sign | SignAndEncrypt")
    p.add_argument("--cert", default="", help="client certificate (edgekit certs generate)")
    p.add_argument("--key", default="", help="client private key")
    p.add_argument("--trust-dir", default="", help="folder of trusted server certificates")
    p.add_argument("--trust-on-first-use", action="store_true", help="record an unknown server certificate")
    p.add_argument("--allow-insecure", action="store_true", help="allow security policy None")
    p.add_argument("--user", default="", help="user name (encrypted channel only)")
    p.add_argument("--password-env", default="", help="environment variable holding the password")
    p.add_argument("--timeout", type=float, default=10.0, help="request timeout in seconds")
    p.set_defaults(func=run)


def _config(args: argparse.Namespace) -> OpcUaConnectionConfig:
    if not args.endpoint.startswith("opc.tcp://"):
        raise ConfigError("endpoint", f"{args.endpoint!r} must be an opc.tcp:// URL")
    if args.policy not in ("auto", "None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"):
        raise ConfigError("--policy", f"{args.policy!r} is not a security policy")
    if args.mode not in ("Sign", "SignAndEncrypt"):
        raise ConfigError("--mode", f"{args.mode!r} is not Sign or SignAndEncrypt")
    if args.policy == "None" and not args.allow_insecure:
        raise ConfigError("--policy", "None needs --allow-insecure")
    if args.depth < 1 or args.max_nodes < 1:
        raise ConfigError("--depth", "--depth and --max-nodes must be >= 1")
    password = None
    if args.user:
        if not args.password_env or args.password_env not in os.environ:
            raise ConfigError("--password-env", "--user needs --password-env NAME with the password in $NAME")
        password = Secret(os.environ[args.password_env], f"env {args.password_env}")
    return OpcUaConnectionConfig(
        name="browse", endpoint=args.endpoint, security_policy=args.policy, security_mode=args.mode,
        client_cert=args.cert, client_key=args.key, trust_dir=args.trust_dir,
        trust_on_first_use=args.trust_on_first_use, allow_insecure=args.allow_insecure,
        username=args.user, password=password, request_timeout=args.timeout,
    )


async def _walk(args: argparse.Namespace) -> int:
    cfg = _config(args)
    from ..connectors.opcua.browse import browse, summary, to_profile_toml
    from ..connectors.opcua.session import open_session

    client, security = await open_session(cfg)
    try:
        result = await browse(client, args.root, args.depth, args.max_nodes, args.filter)
    finally:
        await client.disconnect()
    if args.out:
        Path(args.out).write_text(to_profile_toml(result, args.endpoint))
        print(f"wrote {args.out}: {len(result.variables)} variables ({security})", file=sys.stderr)
    elif args.json:
        print(json.dumps(summary(result), indent=1))
    else:
        for row in summary(result):
            dims = f"[{','.join(map(str, row['dims']))}]" if row["dims"] else ""
            print(f"{row['node_id']:<45} {row['path']:<45} {row['type']}{dims} {row['unit']}".rstrip())
    if result.truncated:
        print(f"edgekit: stopped after --max-nodes {args.max_nodes}; the list is incomplete", file=sys.stderr)
        return 1
    return 0


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_walk(args))
