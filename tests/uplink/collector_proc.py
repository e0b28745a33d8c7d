"""Runs ``edgekit collect`` with only that sub-command registered (the tests' collector process).

``collector_proc.py --zygote`` imports everything once and forks one collector per line of
arguments read from stdin (printing ``{"forked": pid}``), so a test can SIGKILL and restart a
collector many times without paying the interpreter start-up each time.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

from edgekit.cli import collect
from edgekit.errors import EdgekitError


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="edgekit")
    collect.register(parser.add_subparsers())
    args = parser.parse_args(["collect", *argv])
    try:
        return int(args.func(args))
    except EdgekitError as exc:  # as edgekit.cli.main does
        print(f"edgekit: {exc}", file=sys.stderr)
        return 1


def zygote() -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # auto-reap killed children
    for line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            code = 1
            try:
                code = run(json.loads(line))
            finally:
                os._exit(code)
        print(json.dumps({"forked": pid}), flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--zygote"]:
        zygote()
    else:
        sys.exit(run(sys.argv[1:]))
