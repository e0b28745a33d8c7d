"""Zygote for the SIGKILL test: imports edgekit once, then forks one appender child per request.

Usage: ``python spool_appender.py SPOOL_PATH``; then per line ``SEED`` on stdin it forks a child and
prints ``pid <PID>``. The child opens the spool, prints ``ready``, then forever appends a group and
prints ``<stream> <seq> <seq> …`` after ``append_many`` returned (i.e. after the commit's fsync; one
write() of < PIPE_BUF bytes, so lines never interleave or tear). Uplink "a" acks now and then, so
kills also land in ack/prune transactions. When the child dies (the test SIGKILLs it) the zygote
prints ``dead <status>``. Forking keeps 20 kills cheap: importing edgekit costs seconds here.
Odd seeds use pipelined admission instead (``submit_forever``): lines come from the commit callback.
"""

from __future__ import annotations

import itertools
import os
import random
import sys
import traceback
from pathlib import Path

from edgekit.spool import Admission, Spool, SpoolConfig

ROUTES = {"a": ("features", "gap"), "b": ("features", "points", "gap")}


def _say(text: str) -> None:
    os.write(1, (text + "\n").encode())


def append_forever(path: Path, seed: int) -> None:
    rng = random.Random(seed)
    spool = Spool(path, SpoolConfig(synchronous="full", reserve_free_bytes=0), ROUTES)
    _say("ready")
    while True:
        stream = rng.choice(["features/m1", "points/d1"])
        n = rng.randint(1, 20)
        seqs = spool.append_many([(stream, stream.split("/")[0], rng.randbytes(rng.randint(10, 3000)), 0.0)] * n)
        _say(" ".join([stream, *(str(q) for q in seqs)]))
        if stream == "features/m1" and rng.random() < 0.3:
            spool.ack("a", stream, max(1, (seqs[-1] or 1) // 2))


def submit_forever(path: Path, seed: int) -> None:
    """Pipelined: groups go through ``Spool.submit``; each line is printed by the commit callback.

    Every blob is ``SUB:<seed>:<group>:<index>/<size>:`` + padding, so the test can check that each
    group is stored whole or not at all (a kill with groups queued or mid-transaction)."""
    rng = random.Random(seed)
    spool = Spool(path, SpoolConfig(synchronous="full", reserve_free_bytes=0, submit_pending_bytes=64 << 10), ROUTES)
    _say("ready")

    def committed(adm: Admission) -> None:
        seqs = adm.result()
        stream = adm.items[0][0]
        _say(" ".join([stream, *(str(q) for q in seqs)]))
        if stream == "features/m1" and rng.random() < 0.3:
            spool.ack("a", stream, max(1, (seqs[-1] or 1) // 2))

    for group in itertools.count():
        stream = rng.choice(["features/m1", "points/d1"])
        n = rng.randint(1, 20)
        items = [(stream, stream.split("/")[0], f"SUB:{seed}:{group}:{i}/{n}:".encode() + rng.randbytes(rng.randint(10, 3000)),
                  None) for i in range(n)]
        spool.submit(items, committed)


def main() -> None:
    path = Path(sys.argv[1])
    for line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            try:
                seed = int(line)
                (submit_forever if seed % 2 else append_forever)(path, seed)
            except BaseException:
                traceback.print_exc()
            os._exit(1)
        _say(f"pid {pid}")
        _, status = os.waitpid(pid, 0)
        _say(f"dead {status}")


if __name__ == "__main__":
    main()
