"""SIGKILL at random points (often inside a commit's fsync): every seq reported committed survives.

A child process appends groups with ``synchronous=FULL`` and prints each group's seqs only after the
commit returned (``append_many``; every other child: ``submit``, printed by the commit callback, with
groups still queued or mid-transaction when it dies); the test kills it with SIGKILL after a random delay, 20 times on the same file
(children are forked from one zygote process, see ``spool_appender.py``). Then: every printed seq
is still pending, seqs were never reused across restarts, every submitted group is stored whole or
not at all, no record twice, and the integrity check passes.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from edgekit.spool import Spool, SpoolConfig

HERE = Path(__file__).resolve().parent
ROUTES = {"a": ("features", "gap"), "b": ("features", "points", "gap")}
GROUP = re.compile(r"^(features/m1|points/d1)( \d+)+$")


def _expect(out: IO[bytes], prefix: str) -> str:
    line = out.readline().decode()
    assert line.startswith(prefix), f"expected {prefix!r} from the appender, got {line!r}"
    return line.strip()


def test_sigkill_20_times_loses_no_committed_seq(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    rng = random.Random(20261129)
    committed: dict[str, list[int]] = {"features/m1": [], "points/d1": []}
    env = {**os.environ, "PYTHONPATH": str(HERE.parents[1])}
    zygote = subprocess.Popen([sys.executable, str(HERE / "spool_appender.py"), str(path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    assert zygote.stdin is not None and zygote.stdout is not None
    try:
        for i in range(20):
            zygote.stdin.write(f"{i}\n".encode())
            zygote.stdin.flush()
            pid = int(_expect(zygote.stdout, "pid ").split()[1])
            _expect(zygote.stdout, "ready")
            time.sleep(rng.uniform(0.0, 0.2))
            os.kill(pid, signal.SIGKILL)
            while (line := zygote.stdout.readline().decode()) and not line.startswith("dead "):
                assert GROUP.match(line.strip()), f"unexpected output {line!r}"
                stream, *seqs = line.split()
                committed[stream].extend(int(q) for q in seqs)
            assert line.split() == ["dead", str(signal.SIGKILL)], f"child did not die by SIGKILL: {line!r}"
    finally:
        zygote.stdin.close()
        zygote.wait(30)
        zygote.stdout.close()
    for stream, seqs in committed.items():
        assert seqs == sorted(set(seqs)), f"{stream}: a seq was reused or reordered after a kill"
    assert sum(len(v) for v in committed.values()) > 100, "the child barely committed anything"
    spool = Spool(path, SpoolConfig(reserve_free_bytes=0), ROUTES)
    try:
        assert spool.integrity_check()
        assert spool.stats()["quarantined"] == 0
        stored: dict[str, set[int]] = {"features/m1": set(), "points/d1": set()}
        for row in spool.pending("b", limit=10_000_000, max_bytes=1 << 40):
            stored[row.stream].add(row.seq)
        groups: dict[tuple[str, str], set[int]] = {}
        for row in spool.pending("b", limit=10_000_000, max_bytes=1 << 40):
            stored[row.stream].add(row.seq)
            if row.blob.startswith(b"SUB:"):  # a submitted record
                _, seed, group, index, _ = row.blob.split(b":", 4)
                i, n = index.split(b"/")
                members = groups.setdefault((f"{seed.decode()}:{group.decode()}", n.decode()), set())
                assert int(i) not in members, f"record {row.blob[:20]!r} stored twice"
                members.add(int(i))
        for stream, seqs in committed.items():
            missing = set(seqs) - stored[stream]
            assert not missing, f"{stream}: committed seqs lost after SIGKILL: {sorted(missing)[:10]}"
        # a submitted group is stored whole or not at all: never half of a transaction
        assert len(groups) > 20, "the pipelined children barely committed anything"
        for (group, n), members in groups.items():
            assert members == set(range(int(n))), f"group {group}: only {len(members)} of {n} records stored"
    finally:
        spool.close()
