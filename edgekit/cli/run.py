"""``edgekit run CONFIG``: run the gateway until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("run", help="run the gateway described by a config file",
                       description="Run connectors, pipeline, spool and uplinks until SIGTERM/SIGINT; "
                       "then stop reading, drain the pipeline into the spool and exit 0.")
    p.add_argument("config", help="gateway config (TOML)")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"],
                   help="override gateway.log_level")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..config import load
    from ..runtime.gateway import Gateway, check_config
    from ..runtime.logs import setup_logging

    cfg = load(args.config)
    check_config(cfg)
    setup_logging(args.log_level or cfg.gateway.log_level, cfg.gateway.log_format)
    gateway = Gateway(cfg)
    gateway.build()
    asyncio.run(gateway.run())
    return 0
