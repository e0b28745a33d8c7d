"""``stats()["pruned"]`` counts records whose deletion committed — not those of a rolled-back admission.

Under quota pressure an admission prunes acknowledged records inside its own transaction; if that
transaction rolls back (here a real SQLite trigger aborts the INSERT), the records are still stored
and must not be counted as pruned. Real SQLite file; the trigger is added by a second connection.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from spool_helpers import open_spool

from edgekit.errors import SpoolError
from edgekit.spool import Spool

P = "points/d1"  # routed to uplink "b" only


def _four_acked_unpruned(path: Path, policy: str) -> tuple[sqlite3.Connection, Spool]:
    s = open_spool(path, max_bytes=1000, prune_chunk=1, full_policy=policy)
    for _ in range(5):
        s.append(P, "points", b"p" * 150, 1.0)  # five segments, 750 bytes
    s.ack("b", P, 5)  # prunes one chunk of one segment: four acked segments stay stored
    assert s.stats()["pruned"] == 1 and s.stats()["rows"] == 4
    other = sqlite3.connect(str(path), isolation_level=None)
    other.execute("CREATE TRIGGER boom BEFORE INSERT ON records WHEN NEW.stream = 'boom' "
                  "BEGIN SELECT RAISE(ABORT, 'boom'); END")
    return other, s


def test_a_rolled_back_admission_does_not_count_its_prune(tmp_path: Path) -> None:
    # drop_oldest prunes inside the admitting transaction (drop_newest drops the new record instead)
    other, spool = _four_acked_unpruned(tmp_path / "s.db", "drop_oldest")
    try:
        # 600 stored + 500 > 1000: the admission prunes the four acked segments in its transaction,
        # then the trigger aborts its INSERT and everything rolls back
        with pytest.raises(SpoolError, match="boom"):
            spool.append("boom", "points", b"q" * 500, 2.0)
        st = spool.stats()
        assert st["rows"] == 4 and st["bytes"] == 600  # nothing was deleted ...
        assert st["pruned"] == 1  # ... so nothing more counted as pruned
        other.execute("DROP TRIGGER boom")
        assert spool.append("ok", "points", b"q" * 500, 2.0) == 1
        st = spool.stats()
        assert st["rows"] == 1 and st["pruned"] == 5  # the committed prune is counted
    finally:
        other.close()
        spool.close()


def test_block_policy_prune_is_counted(tmp_path: Path) -> None:
    other, s = _four_acked_unpruned(tmp_path / "s.db", "block")
    try:
        other.execute("DROP TRIGGER boom")
        assert s.append("ok", "points", b"q" * 500, 2.0) == 1
        st = s.stats()
        assert st["rows"] == 1 and st["pruned"] == 5
    finally:
        other.close()
        s.close()
