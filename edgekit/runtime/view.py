"""The live terminal view of a running gateway (used by ``edgekit demo``).

Per machine: zone, velocity RMS, anomaly score, alarm; per uplink: delivered, backlog. On a
terminal it redraws in place once a second; otherwise it prints one compact block every few
seconds so logs stay readable.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from typing import Any, TextIO

from .gateway import zone_letter

__all__ = ["render", "run_view"]


def _fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, spec)


def render(gateway: Any, elapsed_s: float) -> str:
    lines = [f"edgekit demo — gateway {gateway.cfg.gateway.id} — {elapsed_s:5.0f} s   "
             f"blocks {gateway.counts['blocks']}  records {gateway.counts['records']}  "
             f"points {gateway.counts['points']}"]
    lines.append(f"{'machine':<10}{'zone':>5}{'v_rms mm/s':>12}{'score':>8}{'max':>8}{'alarm':>7}{'alarms':>8}")
    for asset in sorted(gateway.latest):
        s = gateway.latest[asset]
        zone_txt = zone_letter(s.get("zone")) or "-"
        lines.append(
            f"{asset:<10}{zone_txt:>5}{_fmt(s.get('velocity_rms_mm_s'), '.2f'):>12}"
            f"{_fmt(s.get('anomaly_score'), '.2f'):>8}{_fmt(s.get('max_anomaly_score'), '.2f'):>8}"
            f"{'YES' if s.get('alarm') else 'no':>7}{s.get('alarms_raised', 0):>8}"
        )
    for name, uplink in gateway.uplinks.items():
        h = gateway.final_uplink_health.get(name)
        if h is None:
            try:
                h = uplink.health()
            except Exception as exc:  # a view must never crash the demo
                h = {"state": f"health error {exc!r}"}
        lines.append(
            f"uplink {name}: {h.get('state', '?')}  delivered {h.get('delivered', '-')}  "
            f"backlog {h.get('backlog', '-')}  oldest unacked {_fmt(h.get('oldest_unacked_age_s'), '.1f')} s"
        )
    return "\n".join(lines)


async def run_view(gateway: Any, stream: TextIO | None = None, period_s: float | None = None) -> None:
    out = stream or sys.stdout
    tty = out.isatty()
    period = period_s or (1.0 if tty else 5.0)
    t0 = time.monotonic()
    while True:
        await asyncio.sleep(period)
        text = render(gateway, time.monotonic() - t0)
        if tty:
            out.write("\x1b[H\x1b[2J" + text + "\n")
        else:
            out.write(text + "\n\n")
        out.flush()
