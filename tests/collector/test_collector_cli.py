"""``edgekit collect`` as a real process: metrics endpoint, SIGHUP reload, clean SIGTERM, bad arguments."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from portutil import free_port

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "uplink"))
from uplink_helpers import make_keys

COLLECT = Path(__file__).resolve().parents[1] / "uplink" / "collector_proc.py"


def test_collect_serves_metrics_reloads_on_sighup_and_stops_cleanly(tmp_path: Path) -> None:
    keys = make_keys(tmp_path, gateways=("gw-1", "gw-2"), allowed=("gw-1",))
    mport = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(COLLECT), "--bind", f"tcp://127.0.0.1:{free_port()}", "--store",
         str(tmp_path / "s.sqlite"), "--keys", str(keys.server_secret.parent), "--allow", str(keys.allow),
         "--metrics-port", str(mport), "--group-messages", "4", "--group-linger-ms", "5"],
        stderr=subprocess.PIPE, text=True)
    try:
        body = ""
        for _ in range(100):
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=1).read().decode()
                break
            except OSError:
                time.sleep(0.1)
        assert "edgekit_collector_ack_latency_seconds" in body and "edgekit_collector_rejects" in body
        shutil.copy(keys.gateways["gw-2"][0], keys.allow / "gw-2.key")
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr.read() if proc.stderr else ""
    assert "+['gw-2']" in err  # the reload picked the new key up
    assert "collector stopped" in err


def test_collect_refuses_plain_tcp_and_ambiguous_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from collector_proc import run  # the same entry point, in-process (start-up is slow on busy machines)

    store = str(tmp_path / "s.sqlite")
    bind = f"tcp://127.0.0.1:{free_port()}"
    assert run(["--bind", bind, "--store", store]) == 1
    assert "refusing plain NULL on tcp://" in capsys.readouterr().err
    keys = make_keys(tmp_path)
    shutil.copy(keys.server_secret, keys.server_secret.parent / "other.key_secret")
    assert run(["--bind", bind, "--store", store, "--keys", str(keys.server_secret.parent), "--allow",
                str(keys.allow)]) == 1
    assert "expected exactly one *.key_secret" in capsys.readouterr().err
    assert run(["--bind", bind, "--store", store, "--keys", str(keys.server_secret), "--insecure"]) == 1
    assert "exclude each other" in capsys.readouterr().err
    assert run(["--bind", bind, "--store", store, "--group-messages", "0"]) == 1
    assert "--group-messages 0: must be an integer >= 1" in capsys.readouterr().err
    assert run(["--bind", bind, "--store", store, "--group-linger-ms", "-1"]) == 1
    assert "--group-linger-ms -1.0: must be between 0 and 1000" in capsys.readouterr().err
