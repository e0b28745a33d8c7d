"""A collector whose store disk fills up acknowledges nothing it could not write, and recovers.

Needs a small real filesystem: a tmpfs mounted under the test's folder (skipped where mounting is
not permitted, e.g. unprivileged CI).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgekit.collector import run_in_thread, store_summary
from edgekit.uplink import UplinkClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "uplink"))
from uplink_helpers import feature_blob, make_keys, open_spool, uplink_cfg, wait_for


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


async def test_disk_full_store_acks_nothing_then_recovers(tmp_path: Path, tiny_fs: Path) -> None:
    keys = make_keys(tmp_path)
    store = tiny_fs / "store.sqlite"
    spool = open_spool(tmp_path / "spool.sqlite")
    for i in range(0, 600, 10):
        spool.append_many([("features/m01", "features", feature_blob(i + j, channels=32), time.time())
                           for j in range(10)])
    col = run_in_thread(["tcp://127.0.0.1:0"], store, allow_dir=keys.allow, secret_key=keys.server_secret_key())
    client = UplinkClient(uplink_cfg(col.endpoints, keys, compression="none", ack_timeout="1s"), spool, "gw-1")
    task = asyncio.create_task(client.run())
    try:
        await wait_for(lambda: col.collector.rejects.get("store_error", 0) >= 1, 15, "disk full")
        stored_while_full = store_summary(store)["records"]
        assert stored_while_full < 600
        assert client.delivered <= stored_while_full  # only what was committed got acknowledged
        assert spool.backlog("dc")[0] >= 600 - stored_while_full
        subprocess.run(["mount", "-o", "remount,size=64m", str(tiny_fs)], check=True)
        await wait_for(lambda: spool.backlog("dc")[0] == 0, 30, "recovery after space was freed")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        col.stop()
        spool.close()
    s = store_summary(store)
    assert (s["records"], s["missing"], s["duplicates"]) == (600, 0, 0)
