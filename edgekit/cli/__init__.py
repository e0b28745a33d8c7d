"""The ``edgekit`` command line: one sub-command per module in this package.

Each module ``edgekit/cli/<name>.py`` defines ``register(subparsers) -> None`` which adds its
sub-command(s) and sets ``func`` (``(args) -> int``) as the parser default. Exit codes: 0 success,
1 runtime failure, 2 invalid input (bad config, bad arguments).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import ConfigError, EdgekitError

__all__ = ["main"]

# Order is the order in --help.
COMMAND_MODULES = (
    "run", "check", "demo", "simulate", "features", "models", "baseline",
    "browse", "certs", "keys", "collect", "store",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgekit",
        description="Industrial IoT edge analytics: connectors, vibration features, anomaly "
        "detection and loss-free delivery upstream.",
    )
    parser.add_argument("--version", action="version", version=f"edgekit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue  # sub-command not built yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"edgekit: config error: {exc}", file=sys.stderr)
        return 2
    except EdgekitError as exc:
        print(f"edgekit: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
