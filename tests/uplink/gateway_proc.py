"""A minimal gateway process for the reliability tests: Spool + UplinkClient, appending at a rate.

Prints one JSON line per report interval: last seq assigned, backlog, delivered, resent, RSS.
``--until-drained`` exits 0 once nothing is pending and it appends nothing more.

``gateway_proc.py --zygote`` imports everything once, then forks one gateway per line of arguments
read from stdin (printing ``{"pid": …}``), so a test can SIGKILL many fresh gateway processes
without paying the interpreter start-up each time. Children are reaped automatically.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from uplink_helpers import feature_blob

from edgekit.config.parse import parse
from edgekit.spool import Spool, SpoolConfig
from edgekit.uplink import UplinkClient, UplinkConfig

STREAM = "features/m01"


def rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


async def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spool", required=True)
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--server-key")
    ap.add_argument("--secret")
    ap.add_argument("--gateway", default="gw-1")
    ap.add_argument("--rate", type=float, default=0.0, help="records per second appended")
    ap.add_argument("--batch", type=int, default=5, help="records per append_many")
    ap.add_argument("--max-records", type=int, default=0, help="stop appending after this many (0 = never)")
    ap.add_argument("--report", type=float, default=0.5)
    ap.add_argument("--until-drained", action="store_true")
    ap.add_argument("--channels", type=int, default=4)
    args = ap.parse_args(argv)

    ucfg: dict[str, object] = {
        "name": "dc", "endpoints": [args.endpoint], "heartbeat": "300ms", "heartbeat_timeout": "2s",
        "ack_timeout": "2s", "hello_timeout": "1s", "reconnect_initial": "50ms", "reconnect_max": "300ms",
    }
    if args.secret:
        ucfg.update(server_public_key=args.server_key, secret_key={"file": args.secret})
    else:
        ucfg["insecure"] = True
    cfg = parse(UplinkConfig, ucfg, "uplinks[0]")
    spool = Spool(Path(args.spool), parse(SpoolConfig, {}, "spool"), {"dc": cfg.kinds()})
    client = UplinkClient(cfg, spool, args.gateway)
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(client.run())
    appended = 0
    last_seq = max(spool.first_unacked("dc").values(), default=1) - 1

    def report(**extra: object) -> None:
        h = client.health()
        print(json.dumps({"pid": os.getpid(), "t": time.time(), "appended": appended, "last_seq": last_seq, "rss_kb": rss_kb(),
                          **{k: h[k] for k in ("backlog", "delivered", "resent", "state", "sessions")}, **extra}),
              flush=True)

    next_report = time.monotonic()
    t_start = time.monotonic()
    try:
        while True:
            now = time.monotonic()
            if args.rate and (not args.max_records or appended < args.max_records):
                due = int((now - t_start) * args.rate) - appended
                if due >= args.batch:
                    n = min(due, args.batch * 20)
                    if args.max_records:
                        n = min(n, args.max_records - appended)
                    now_ts = time.time()  # one admission time per call, as the runtime does: one segment
                    items = [(STREAM, "features", feature_blob(appended + i, args.channels), now_ts)
                             for i in range(n)]
                    seqs = await loop.run_in_executor(None, spool.append_many, items)
                    appended += n
                    last_seq = max([s for s in seqs if s is not None] + [last_seq])
                    client.notify()
            elif args.until_drained and spool.backlog("dc")[0] == 0:
                report(done=True)
                return 0
            if now >= next_report:
                report()
                next_report = now + args.report
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        spool.close()


def zygote() -> None:
    import signal

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # auto-reap killed children
    for line in sys.stdin:
        argv = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = asyncio.run(main(argv))
            finally:
                sys.stdout.flush()
                os._exit(code)
        print(json.dumps({"forked": pid}), flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--zygote"]:
        zygote()
    else:
        sys.exit(asyncio.run(main(sys.argv[1:])))
