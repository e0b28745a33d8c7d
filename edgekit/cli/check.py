"""``edgekit check CONFIG [--plan]``: validate a config; exit 2 with one clear message if it is bad."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("check", help="validate a gateway config (exit 2 with the reason if invalid)")
    p.add_argument("config", help="gateway config (TOML)")
    p.add_argument("--plan", action="store_true", help="also print the Modbus read plan per device")
    p.set_defaults(func=check)


def check(args: argparse.Namespace) -> int:
    from ..config import load
    from ..runtime.gateway import check_config

    cfg = load(args.config)  # ConfigError -> exit 2 with the message (edgekit.cli.main)
    check_config(cfg)
    if args.plan:
        from ..connectors.modbus import format_plan

        for conn in cfg.modbus:
            text = format_plan(conn)
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
    n_conn = len(cfg.modbus) + len(cfg.opcua) + len(cfg.replay)
    print(f"{args.config}: OK ({n_conn} connectors, {len(cfg.models)} models, {len(cfg.uplinks)} uplinks)")
    return 0
