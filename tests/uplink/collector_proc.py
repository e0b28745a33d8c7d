"""Runs ``edgekit collect`` with only that sub-command registered (the tests' collector process)."""

from __future__ import annotations

import argparse
import sys

from edgekit.cli import collect
from edgekit.errors import EdgekitError

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="edgekit")
    collect.register(parser.add_subparsers())
    args = parser.parse_args(["collect", *sys.argv[1:]])
    try:
        sys.exit(args.func(args))
    except EdgekitError as exc:  # as edgekit.cli.main does
        print(f"edgekit: {exc}", file=sys.stderr)
        sys.exit(1)
