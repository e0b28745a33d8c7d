"""``edgekit models check|score|list``: the ONNX model contract from the command line.

* ``check MODEL.onnx [--config C]`` verifies the contract against the feature names of the configured
  pipeline (``edgekit.pipeline.build(cfg.pipeline).names``; without ``--config``, the default pipeline)
  and test-runs the model. Exit 0 if it would load, 2 with the specific reason if not.
* ``score MODEL FILE`` scores a recording (.mat, .npy, .csv, .wav) block by block through the pipeline,
  the baseline and the alarm logic, exactly as the gateway does. A baseline-normalised model needs a
  baseline: ``--baseline FILE.json`` (a stored one), else the first ``--learn`` blocks of the file.
* ``list`` shows the shipped zoo (inputs, threshold, version).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, ModelContractError
from ..types import EventKind, FeatureFrame

__all__ = ["pipeline_for", "register"]


def pipeline_for(config: str | None, *, rpm: float | None = None) -> Any:
    """The FeatureExtractor of ``config``'s [pipeline] section (default section without a config)."""
    import dataclasses

    from ..pipeline import PipelineConfig, build

    logging.getLogger("edgekit.pipeline").setLevel(logging.ERROR)  # omissions are reported by callers
    if config:
        from ..config import load

        section = load(config).pipeline
    else:
        section = PipelineConfig()
    if rpm:
        section = dataclasses.replace(section, rpm=float(rpm))
    return build(section)


def register(sub: Any) -> None:
    p = sub.add_parser("models", help="check, score and list ONNX anomaly models", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    msub = p.add_subparsers(dest="models_command", metavar="ACTION")
    c = msub.add_parser("check", help="verify a model's contract against the pipeline's features")
    c.add_argument("model", help="ONNX model file")
    c.add_argument("--config", help="gateway config whose [pipeline] gives the feature names")
    c.add_argument("--json", action="store_true", help="print the model info as JSON")
    c.set_defaults(func=run_check)
    s = msub.add_parser("score", help="score a recording with a model (pipeline + baseline + alarms)")
    s.add_argument("model", help="ONNX model file")
    s.add_argument("file", help="recording: .mat, .npy, .csv (one column per channel) or .wav")
    s.add_argument("--config", help="gateway config whose [pipeline] section is used")
    s.add_argument("--key", default="", help="variable(s) in a .mat file, comma-separated")
    s.add_argument("--fs", type=float, default=0.0, help="sample rate in Hz (unless the file states it)")
    s.add_argument("--rpm", type=float, default=None, help="shaft speed in r/min (default: the file's, if any)")
    s.add_argument("--block", type=int, default=0, help="samples per block (default: pipeline.window)")
    s.add_argument("--baseline", help="baseline JSON file to normalise with (from `edgekit baseline learn`)")
    s.add_argument("--learn", type=int, default=0,
                   help="learn the baseline from the first N blocks (default: a quarter of the file, >= 4)")
    s.add_argument("--threshold", type=float, default=None, help="alarm threshold (default: calibrated)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=run_score)
    lst = msub.add_parser("list", help="list the shipped model zoo")
    lst.set_defaults(func=run_list)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_check(args: argparse.Namespace) -> int:
    from ..models import load_scorer

    ex = pipeline_for(args.config)
    if not args.config:
        print("note: no --config: checking against the default pipeline's features", file=sys.stderr)
    try:
        info = load_scorer(args.model, ex.names).info
    except ModelContractError as exc:
        print(f"edgekit: REFUSED: {exc}", file=sys.stderr)
        return 2
    data = {
        "model": args.model, "ok": True, "version": info.version, "inputs": list(info.inputs),
        "normalise": info.normalise, "threshold": info.threshold, "input": info.input_name,
        "output": info.output_name, "sha256": info.sha256,
    }
    if args.json:
        print(json.dumps(data))
    else:
        print(f"OK {args.model}: version {info.version!r}, {info.n_inputs} inputs ({', '.join(info.inputs)}), "
              f"normalise={info.normalise}, threshold={info.threshold}")
    return 0


def _blocks(data: np.ndarray, block: int) -> list[np.ndarray]:
    n = data.shape[1] // block
    return [np.ascontiguousarray(data[:, i * block:(i + 1) * block], dtype=np.float32) for i in range(n)]


def run_score(args: argparse.Namespace) -> int:
    from ..models import BaselineConfig, ModelConfig, build_detector, fit_baseline
    from ..models.baseline import Baseline
    from ..pipeline.recording import load_recording

    rec = load_recording(args.file, key=args.key, fs=args.fs)
    rpm = rec.rpm if args.rpm is None else args.rpm
    ex = pipeline_for(args.config, rpm=rpm)
    block = args.block or _window(args.config) or 8192
    blocks = _blocks(rec.data, block)
    if len(blocks) < 2:
        raise ConfigError("--block", f"{block} samples per block leaves {len(blocks)} block(s) in the file")
    asset = Path(args.file).stem
    frames = []
    for i, b in enumerate(blocks):
        r = ex.compute(b, rec.fs)
        frames.append(FeatureFrame(asset=asset, values=r.values, names=ex.names, channels=rec.channels,
                                   t0=i * block / rec.fs, seq=i, quality=r.quality, reasons=r.reasons))
    mcfg = ModelConfig(path=args.model, reload=False, threshold=args.threshold)
    learned = 0
    with tempfile.TemporaryDirectory() as tmp:
        try:
            det = build_detector([mcfg], ex.names, Path(tmp), baseline=BaselineConfig(commission_blocks=0))
        except ModelContractError as exc:
            print(f"edgekit: REFUSED: {exc}", file=sys.stderr)
            return 2
        if args.baseline:
            try:
                data = json.loads(Path(args.baseline).read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise ConfigError("--baseline", f"cannot read {args.baseline!r}: {exc}") from None
            base = Baseline.from_json(data, where=args.baseline)
            base = Baseline(asset=asset, names=base.names, channels=rec.channels if len(base.channels) ==
                            len(rec.channels) else base.channels, location=base.location, scale=base.scale,
                            n_blocks=base.n_blocks, sample_values=base.sample_values,
                            sample_channel=base.sample_channel)
        else:
            learned = args.learn or max(4, len(frames) // 4)
            learned = min(learned, len(frames) - 1)
            base = fit_baseline(asset, np.stack([f.values for f in frames[:learned]]), ex.names, rec.channels)
            print(f"note: baseline learned from the first {learned} of {len(frames)} blocks "
                  "(scores of those blocks are in-sample)", file=sys.stderr)
        det.set_baseline(base, save=False)
        name = mcfg.model_name
        thr = det.threshold(asset, name)
        rows, events = [], []
        for f in frames:
            scored, evs = det.score(f)
            rows.append(scored.column("anomaly_score"))
            events.extend(evs)
    scores = np.stack(rows)
    above = float(np.mean(scores[learned:] >= thr.value)) if thr is not None else math.nan
    raised = [e for e in events if e.kind is EventKind.ALARM_RAISED]
    if args.json:
        print(json.dumps({
            "model": args.model, "file": args.file, "block": block, "fs": rec.fs, "channels": list(rec.channels),
            "threshold": None if thr is None else thr.value, "threshold_source": None if thr is None else thr.source,
            "baseline_blocks": learned,
            "scores": [[None if not math.isfinite(v) else float(v) for v in row] for row in scores.tolist()],
            "events": [{"kind": e.kind.value, "severity": e.severity.name, "message": e.message, **e.data}
                       for e in events],
        }))
        return 0
    print(f"# {args.file}: {len(frames)} blocks of {block} samples at {rec.fs:g} Hz; model {name}; "
          + (f"threshold {thr.value:.4g} ({thr.source})" if thr else "no threshold"))
    print("block  t0_s     " + "  ".join(f"{c:>14}" for c in rec.channels))
    for i, row in enumerate(scores):
        mark = "*" if i < learned else " "
        print(f"{i:>5}{mark} {i * block / rec.fs:7.2f}  " + "  ".join(f"{v:14.5g}" for v in row))
    for e in events:
        print(f"{e.kind.value}: {e.message}")
    print(f"# blocks after the baseline above threshold: {above:.1%}; alarms raised: {len(raised)}")
    return 0


def _window(config: str | None) -> int:
    if not config:
        return 0
    from ..config import load

    return int(load(config).pipeline.window)


def run_list(args: argparse.Namespace) -> int:
    from ..models.contract import inspect_session, open_session
    from ..resources import models_dir

    zoo = models_dir()
    paths = sorted(zoo.glob("*.onnx"))
    if not paths:
        print(f"no models in {zoo}", file=sys.stderr)
        return 1
    for p in paths:
        sess = open_session(p.read_bytes(), where=str(p))
        meta = dict(sess.get_modelmeta().custom_metadata_map)
        try:
            info = inspect_session(sess, json.loads(meta.get("edgekit.inputs", "[]")), where=str(p))
        except (ModelContractError, ValueError) as exc:
            print(f"{p.name}: not a valid edgekit model: {exc}")
            continue
        card = p.with_suffix(".md")
        print(f"{p.name}: version {info.version}, {info.n_inputs} inputs, normalise={info.normalise}, "
              f"threshold={info.threshold}" + (f", card {card}" if card.exists() else ""))
    return 0
