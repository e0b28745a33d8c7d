"""``edgekit simulate``: serve simulated machines over OPC UA and Modbus until SIGTERM/SIGINT.

Flags override the ``--config`` file. On start it prints ``KEY=VALUE`` endpoint lines, comment lines
describing where each tag lives, then ``READY``; it exits 0 on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import tomllib
from pathlib import Path
from typing import Any

from ..config.parse import parse
from ..errors import ConfigError

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "simulate", help="serve simulated machines (OPC UA + Modbus) with injectable faults",
        description="Plant simulator: N machines with physically meaningful vibration over OPC UA and Modbus TCP. "
        "See docs/simulator.md.",
    )
    p.add_argument("--config", type=Path, help="simulator TOML (see examples/sim.toml)")
    p.add_argument("--machines", type=int, help="number of machines m01..mNN")
    p.add_argument("--opcua-port", type=int, help="OPC UA port (0 = any free port)")
    p.add_argument("--modbus-port", type=int, help="Modbus TCP port (0 = any free port)")
    p.add_argument("--host", help="address to bind (default 127.0.0.1)")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--speedup", type=float, help="publish blocks this many times faster than real time")
    p.add_argument("--fault", action="append", default=[], metavar="MACHINE:KIND:SEVERITY[:onset=T][:ramp=T]",
                   help="add a fault, e.g. m02:outer_race:0.8:onset=60:ramp=300 (repeatable)")
    p.add_argument("--no-opcua", action="store_true", help="do not serve OPC UA")
    p.add_argument("--no-modbus", action="store_true", help="do not serve Modbus")
    p.add_argument("--secure", action="store_true", help="also offer secured OPC UA endpoints (generated certificate)")
    p.add_argument("--cert-dir", help="folder for the generated OPC UA server certificate")
    p.add_argument("--user", action="append", default=[], metavar="NAME:PASSWORD",
                   help="OPC UA user (repeatable); with --no-anonymous only users may connect")
    p.add_argument("--no-anonymous", action="store_true", help="refuse anonymous OPC UA sessions")
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0 = until signalled)")
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace) -> Any:
    """The :class:`~edgekit.sim.config.SimConfig` for ``args`` (file first, flags override)."""
    from ..sim.config import SimConfig, parse_fault_flag

    data: dict[str, Any] = {}
    if args.config is not None:
        try:
            data = tomllib.loads(Path(args.config).read_text())
        except OSError as exc:
            raise ConfigError("--config", f"cannot read {args.config}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("--config", f"{args.config} is not valid TOML: {exc}") from None
    for key in ("machines", "seed", "speedup", "host"):
        if getattr(args, key) is not None:
            data[key] = getattr(args, key)
    opcua = data.setdefault("opcua", {})
    modbus = data.setdefault("modbus", {})
    if args.opcua_port is not None:
        opcua["port"] = args.opcua_port
    if args.modbus_port is not None:
        modbus["port"] = args.modbus_port
    if args.no_opcua:
        opcua["enabled"] = False
    if args.no_modbus:
        modbus["enabled"] = False
    sec = opcua.setdefault("security", {})
    if args.secure:
        sec["enabled"] = True
    if args.cert_dir:
        sec["cert_dir"] = args.cert_dir
    for item in args.user:
        name, sep, password = item.partition(":")
        if not sep or not name:
            raise ConfigError("--user", f"{item!r} is not NAME:PASSWORD")
        sec.setdefault("users", {})[name] = password
    if args.no_anonymous:
        sec["allow_anonymous"] = False
    cfg = parse(SimConfig, data)
    for text in args.fault:
        mid, fault = parse_fault_flag(text)
        if mid not in cfg.machine_ids():
            raise ConfigError("--fault", f"machine {mid!r} is not one of {', '.join(cfg.machine_ids())}")
        cfg = cfg.with_fault(mid, fault)
    return cfg


async def _serve(cfg: Any, duration: float) -> int:
    from ..sim.plant import PlantSimulator

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with PlantSimulator(cfg) as sim:
        for line in sim.describe():
            print(line)
        print("READY", flush=True)
        if duration > 0:
            try:
                await asyncio.wait_for(stop.wait(), duration)
            except TimeoutError:
                pass
        else:
            await stop.wait()
        s = sim.stats
        print(f"# stopped: {s.published} blocks published, {s.skipped} skipped, max lag {s.max_lag_s:.3f} s",
              file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    cfg = build_config(args)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("asyncua", "pymodbus"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    return asyncio.run(_serve(cfg, args.duration))
