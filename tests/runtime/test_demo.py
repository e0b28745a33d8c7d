"""`edgekit demo` end to end: real simulator, gateway, collector; delivered > 0, lost 0, duplicates 0."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_demo_delivers_everything_exactly_once(tmp_path: Path) -> None:
    summary = tmp_path / "s.json"
    proc = subprocess.run(
        [sys.executable, "-m", "edgekit", "demo", "--duration", "20", "--no-view",
         "--summary-json", str(summary), "--data-dir", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=240, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    s = json.loads(summary.read_text())
    assert s["machines"] == 3
    assert s["blocks_processed"] > 0
    assert s["records_delivered"] > 0
    assert s["records_lost"] == 0
    assert s["duplicates_in_store"] == 0
    assert s["records_delivered"] + s["records_pending_in_spool"] == s["records_spooled"]
    machines = s["per_machine"]
    assert {"Machine01", "Machine02", "Machine03"} <= set(machines)
    # m02 develops an outer-race fault during the run; the healthy machines stay in zone A/B
    assert machines["Machine01"]["final_zone"] in ("A", "B")
    assert machines["Machine02"]["final_velocity_rms_mm_s"] > machines["Machine01"]["final_velocity_rms_mm_s"]
    # the gateway config the demo ran is left behind, valid, for `edgekit run`
    check = subprocess.run([sys.executable, "-m", "edgekit", "check", str(tmp_path / "demo" / "gateway.toml")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
