"""``edgekit baseline learn|show``: commission per-asset healthy baselines (see docs/models.md).

* ``learn --config C --file REC [--asset A]`` learns from a healthy recording (cut into
  ``pipeline.window`` blocks);
* ``learn --config C --duration 10m`` runs the configured connectors (Modbus, OPC UA, replay) for that
  long without spooling anything, and learns one baseline per asset that delivered waveform blocks;
* both save ``<baseline dir>/<asset>.json`` (``[baseline].dir``, default ``<gateway.data_dir>/baselines``)
  and print the threshold each configured model gets on it. A running gateway picks a new file up
  on its next start (or commissions automatically when ``[baseline].commission_blocks`` > 0).
* ``show --config C ASSET`` prints a stored baseline's statistics.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..config.parse import parse_duration
from ..errors import ConfigError, EdgekitError
from ..types import Event, FeatureFrame, PointBatch, WaveformBlock

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("baseline", help="learn or show per-asset healthy baselines", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    bsub = p.add_subparsers(dest="baseline_command", metavar="ACTION")
    lp = bsub.add_parser("learn", help="learn baselines from a recording or from the live connectors")
    lp.add_argument("--config", required=True, help="gateway config (pipeline, models, baseline sections)")
    src = lp.add_mutually_exclusive_group(required=True)
    src.add_argument("--file", help="healthy recording (.mat, .npy, .csv, .wav)")
    src.add_argument("--duration", help="read the configured connectors this long (like 10m, 1h)")
    lp.add_argument("--asset", default="", help="asset name for --file (default: the file name)")
    lp.add_argument("--key", default="", help="variable(s) in a .mat file")
    lp.add_argument("--fs", type=float, default=0.0, help="sample rate for --file (unless the file states it)")
    lp.add_argument("--out", default="", help="baseline folder (default: from the config)")
    lp.set_defaults(func=run_learn)
    sp = bsub.add_parser("show", help="print a stored baseline")
    sp.add_argument("asset")
    sp.add_argument("--config", required=True)
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=run_show)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _baseline_dir(cfg: Any, out: str) -> Path:
    if out:
        return Path(out)
    return Path(cfg.baseline.dir) if cfg.baseline.dir else Path(cfg.gateway.data_dir) / "baselines"


class _Collector:
    """A connector sink that keeps feature frames per asset and discards everything else."""

    def __init__(self, extractor: Any) -> None:
        self.extractor = extractor
        self.frames: dict[str, list[FeatureFrame]] = {}
        self.events = 0

    async def points(self, batch: PointBatch) -> None:
        return None

    async def waveform(self, block: WaveformBlock) -> None:
        frame = self.extractor.transform(block)
        self.frames.setdefault(block.asset, []).append(frame)
        await asyncio.sleep(0)  # a replay catching up never sleeps itself: let the --duration timeout fire

    def event(self, event: Event) -> None:
        self.events += 1


async def _collect_live(cfg: Any, extractor: Any, seconds: float) -> dict[str, list[FeatureFrame]]:
    connectors: dict[str, Any] = {}
    for mcfg in cfg.modbus:
        from ..connectors import modbus

        connectors[mcfg.name] = modbus.build(mcfg)
    for ocfg in cfg.opcua:
        from ..connectors import opcua

        connectors[ocfg.name] = opcua.build(ocfg)
    for rcfg in cfg.replay:
        from ..connectors.replay import ReplayConnector

        connectors[rcfg.name] = ReplayConnector(rcfg)
    if not connectors:
        raise ConfigError("", "no connectors configured: nothing to learn from (use --file)")
    sink = _Collector(extractor)
    tasks = [asyncio.create_task(c.run(sink), name=n) for n, c in connectors.items()]
    done, _ = await asyncio.wait(tasks, timeout=seconds, return_when=asyncio.FIRST_EXCEPTION)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for t in done:
        if not t.cancelled() and t.exception() is not None:
            raise EdgekitError(f"connector {t.get_name()} failed: {t.exception()!r}")
    return sink.frames


def run_learn(args: argparse.Namespace) -> int:
    from ..config import load
    from ..models import build_detector, fit_baseline
    from .models import _blocks, pipeline_for

    cfg = load(args.config)
    ex = pipeline_for(args.config)
    logging.getLogger("edgekit.pipeline").setLevel(logging.ERROR)
    frames: dict[str, list[FeatureFrame]] = {}
    if args.file:
        from ..pipeline.recording import load_recording

        rec = load_recording(args.file, key=args.key, fs=args.fs)
        if rec.rpm and not cfg.pipeline.rpm:
            ex = pipeline_for(args.config, rpm=rec.rpm)
        asset = args.asset or Path(args.file).stem
        frames[asset] = [
            FeatureFrame(asset=asset, values=(r := ex.compute(b, rec.fs)).values, names=ex.names,
                         channels=rec.channels, t0=i * b.shape[1] / rec.fs, seq=i, quality=r.quality)
            for i, b in enumerate(_blocks(rec.data, cfg.pipeline.window or 8192))
        ]
    else:
        seconds = parse_duration(args.duration, "--duration")
        frames = asyncio.run(_collect_live(cfg, ex, seconds))
    if not frames:
        print("edgekit: no waveform blocks arrived: no baseline learned", file=sys.stderr)
        return 1
    out = _baseline_dir(cfg, args.out)
    b = cfg.baseline
    det = build_detector(cfg.models, ex.names, out, baseline=b) if cfg.models else None
    status = 0
    for asset, fl in sorted(frames.items()):
        layouts = {f.channels for f in fl}
        if len(fl) < b.min_blocks or len(layouts) != 1:
            print(f"{asset}: {len(fl)} blocks (need {b.min_blocks}, one channel layout): not learned", file=sys.stderr)
            status = 1
            continue
        values = np.stack([np.where((f.quality >= 2)[:, None], np.nan, f.values) for f in fl]).astype(np.float32)
        base = fit_baseline(asset, values, ex.names, fl[0].channels, scale_floor=b.scale_floor,
                            scale_floor_abs=b.scale_floor_abs, sample_rows=b.sample_rows)
        path = base.save(out)
        print(f"{asset}: baseline from {len(fl)} blocks x {len(fl[0].channels)} channels -> {path}")
        if det is not None:
            det.set_baseline(base, save=False)
            for m in cfg.models:
                thr = det.threshold(asset, m.model_name)
                shown = "none" if thr is None else f"{thr.value:.4g} ({thr.source}, healthy median {thr.centre:.4g})"
                print(f"  model {m.model_name}: threshold {shown}")
    return status


def run_show(args: argparse.Namespace) -> int:
    from ..config import load
    from ..models import load_baseline

    cfg = load(args.config)
    base = load_baseline(_baseline_dir(cfg, ""), args.asset)
    if base is None:
        print(f"edgekit: no baseline for {args.asset!r} in {_baseline_dir(cfg, '')}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(base.to_json()))
        return 0
    print(f"# {args.asset}: {base.n_blocks} blocks, channels {', '.join(base.channels)}, "
          f"{base.sample_values.shape[0]} sample rows")
    width = max(len(n) for n in base.names)
    for j, n in enumerate(base.names):
        cells = "  ".join(f"{base.location[c, j]:11.4g} ±{base.scale[c, j]:<10.3g}" for c in range(len(base.channels)))
        print(f"{n:<{width}}  {cells}")
    return 0
