"""Runs ``edgekit collect`` with only that sub-command registered (the tests' collector process)."""

from __future__ import annotations

import argparse
import sys

from edgekit.cli import collect

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="edgekit")
    collect.register(parser.add_subparsers())
    args = parser.parse_args(["collect", *sys.argv[1:]])
    sys.exit(args.func(args))
