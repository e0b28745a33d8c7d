"""A quarantine (new epoch) while another thread reads the spool's per-stream state.

The uplink's event-loop thread calls ``first_unacked`` (and the ack checks) while a quarantine may
run in the committer thread. Readers take ``_state``; the quarantine must swap ``_last``, ``_kinds``
and ``_acked`` under it too, so a reader sees the old epoch's state or the new one — never a dict
changing size under its iteration, never half of the new epoch's streams. Real threads, real SQLite
files, real quarantines (the file is moved aside and salvaged each round).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from spool_helpers import open_spool

N = 600  # streams per epoch: the new epoch's state takes a while to load row by row
ROUNDS = 4


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Let threads interleave every few bytecodes, as a busy machine would now and then."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


def test_first_unacked_during_quarantine_sees_a_whole_epoch(tmp_path: Path, fast_switching: None) -> None:
    spool = open_spool(tmp_path / "s.db")
    stop = threading.Event()
    problems: list[str] = []
    reads = [0]

    def reader() -> None:
        while not stop.is_set():
            try:
                got = spool.first_unacked("a")
            except Exception as exc:  # exactly what the test looks for
                problems.append(f"{type(exc).__name__}: {exc}")
                continue
            reads[0] += 1
            own = sum(1 for s in got if s.startswith("features/"))
            gaps = sum(1 for s in got if s.startswith("gap/"))
            # every epoch's feature streams are admitted in one transaction, its gap streams are
            # written by one quarantine: a consistent view has all of each or none
            if own not in (0, N) or gaps not in (0, N):
                problems.append(f"partial state: {own} feature streams, {gaps} gap streams")

    thread = threading.Thread(target=reader, name="reader")
    thread.start()
    try:
        for r in range(ROUNDS):
            spool.append_many([(f"features/{i}", "features", b"x" * 8, float(r)) for i in range(N)])
            old = spool.epoch
            with spool._delivery_lock, spool._ingest_lock:  # how _recover calls it
                spool._reopen_quarantined(f"test round {r}")
            assert spool.epoch != old
            assert len(spool.first_unacked("a")) == N  # the new epoch: one gap stream per salvaged stream
    finally:
        stop.set()
        thread.join(10)
        spool.close()
    assert not thread.is_alive()
    assert reads[0] > ROUNDS
    assert problems == [], f"{len(problems)} bad reads, first: {problems[:3]}"
    moved = [p for p in tmp_path.glob("s.db.corrupt-*") if not p.name.endswith(("-wal", "-shm"))]
    assert len(moved) == ROUNDS
