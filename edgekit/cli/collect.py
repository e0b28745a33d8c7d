"""``edgekit collect --bind … --store … --keys … --allow …``: run a collector until SIGTERM/SIGINT.

SIGHUP re-reads the allow-list folder (the folder is also re-read every few seconds): adding a
gateway's ``.key`` admits it, removing it revokes it.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path

from ..errors import UplinkError
from ..uplink.security import parse_secret_key

log = logging.getLogger("edgekit.collector")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("collect", help="receive from gateways into a store (runs until SIGTERM)")
    p.add_argument("--bind", action="append", required=True,
                   help="endpoint to bind, e.g. tcp://0.0.0.0:5555 (repeatable)")
    p.add_argument("--store", required=True, help="store file (SQLite), created if missing")
    p.add_argument("--keys", help="the collector's secret key: a NAME.key_secret file, or a folder with exactly one")
    p.add_argument("--allow", help="folder of allowed gateway public keys (<gateway id>.key)")
    p.add_argument("--insecure", action="store_true",
                   help="accept unauthenticated, unencrypted gateways on tcp:// (warns at every start)")
    p.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL",
                   help="store durability: FULL fsyncs every commit (default)")
    p.add_argument("--features-layout", choices=["wide", "packed", "segments"], default="wide",
                   help="features table: one row per channel and a column per feature (wide), one row "
                   "per frame with a float32 BLOB (packed), or one row per segment of frames as the "
                   "gateway sent them (segments, for the highest ingest rates); `edgekit store export` "
                   "gives the same rows for all three")
    p.add_argument("--max-message-bytes", type=int, default=16 << 20, help="largest message accepted")
    p.add_argument("--credit", type=int, default=256, help="records in flight granted per gateway")
    p.add_argument("--group-messages", type=int, default=8,
                   help="group commit: a batch holding fewer DATA messages than this waits (up to "
                   "--group-linger-ms) for more, so they share one fsync and one ACK (default 8)")
    p.add_argument("--group-linger-ms", type=float, default=2.0,
                   help="longest such wait in milliseconds (default 2; 0 commits each batch at once)")
    p.add_argument("--metrics-port", type=int, default=0, help="serve Prometheus metrics on 127.0.0.1:PORT")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=collect)


def _secret_key(arg: str) -> bytes:
    path = Path(arg)
    if path.is_dir():
        found = sorted(path.glob("*.key_secret"))
        if len(found) != 1:
            raise UplinkError(f"--keys {arg}: expected exactly one *.key_secret file, found "
                              f"{[f.name for f in found] or 'none'}")
        path = found[0]
    try:
        text = path.read_text()
    except OSError as exc:
        raise UplinkError(f"--keys {arg}: cannot read: {exc.strerror}") from None
    return parse_secret_key(text, str(path))


def collect(args: argparse.Namespace) -> int:
    from ..collector import Collector

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.keys and args.insecure:
        raise UplinkError("--keys and --insecure exclude each other")
    if args.group_messages < 1:
        raise UplinkError(f"--group-messages {args.group_messages}: must be an integer >= 1")
    if not 0 <= args.group_linger_ms <= 1000:
        raise UplinkError(f"--group-linger-ms {args.group_linger_ms}: must be between 0 and 1000")
    secret = _secret_key(args.keys) if args.keys else None
    collector = Collector(args.bind, args.store, allow_dir=args.allow, secret_key=secret, insecure=args.insecure,
                          credit=args.credit, max_message_bytes=args.max_message_bytes,
                          synchronous=args.synchronous, features_layout=args.features_layout,
                          group_messages=args.group_messages, group_linger_s=args.group_linger_ms / 1000)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: collector.request_reload())
    if args.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port, addr="127.0.0.1", registry=collector.registry)
    collector.serve(stop)
    log.info("collector stopped: %s", collector.counters())
    return 0
