"""``edgekit features FILE``: the pipeline's features for a recording, as a table or JSON.

Each channel of the file is analysed as one block (whole record). JSON output is a list with one
object per channel: ``{"channel": name, "features": {feature: value}}`` (NaN becomes null). Notes on
features left out (no speed, no bearing) and bad channels go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from typing import Any

from ..config.parse import parse
from ..errors import ConfigError
from ..pipeline import PipelineConfig, build
from ..pipeline.recording import load_recording
from ..types import Quality

__all__ = ["register", "run"]


def _band(text: str) -> list[float]:
    try:
        lo, hi = (float(v) for v in text.replace(":", "-").split("-"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a band LO-HI in Hz (like 2000-5500)") from None
    if not 0 <= lo < hi:
        raise argparse.ArgumentTypeError(f"{text!r}: need 0 <= LO < HI")
    return [lo, hi]


def register(sub: Any) -> None:
    p = sub.add_parser("features", help="compute vibration features of a recording (.mat, .npy, .csv, .wav)",
                       description=__doc__)
    p.add_argument("file", help="recording: .mat (MATLAB v5), .npy, .csv (one column per channel) or .wav")
    p.add_argument("--key", default="", help="variable(s) in a .mat file, comma-separated (default: *_DE/FE/BA_time)")
    p.add_argument("--fs", type=float, default=0.0, help="sample rate in Hz (required unless the file states it)")
    p.add_argument("--rpm", type=float, default=None, help="shaft speed in r/min (default: the file's *RPM, if any)")
    p.add_argument("--bearing", default="", help="catalogue bearing for defect lines (6205, 6203, 6204, 6206, 6305, 6308)")
    p.add_argument("--units", choices=("g", "m/s2"), default="g", help="unit of the samples (default g)")
    p.add_argument("--band", type=_band, default=None, help="envelope band LO-HI in Hz (default fs/8 .. 0.45 fs)")
    p.add_argument("--squared", action="store_true", help="squared envelope")
    p.add_argument("--full", action="store_true", help="add spectral kurtosis and cepstrum features")
    p.add_argument("--json", action="store_true", help="print JSON: [{channel, features}]")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    rec = load_recording(args.file, key=args.key, fs=args.fs)
    rpm = rec.rpm if args.rpm is None else args.rpm
    if rpm < 0:
        raise ConfigError("--rpm", f"{rpm!r} must be >= 0")
    section: dict[str, Any] = {"units": args.units, "rpm": float(rpm), "bearing": args.bearing,
                               "squared_envelope": args.squared}
    if args.band:
        section["envelope_band_hz"] = args.band
    if args.full:
        section.update(spectral_kurtosis=True, cepstrum=True)
    cfg = parse(PipelineConfig, section, "features")
    logging.getLogger("edgekit.pipeline").setLevel(logging.ERROR)  # reported below instead
    ex = build(cfg)
    result = ex.compute(rec.data, rec.fs, units=(args.units,) * rec.data.shape[0])
    for msg in ex.messages:
        print(f"note: {msg}", file=sys.stderr)
    for ch, q, why in zip(rec.channels, result.quality, result.reasons, strict=True):
        if q != Quality.GOOD:
            print(f"note: channel {ch}: {Quality(int(q)).name.lower()}: {why}", file=sys.stderr)
    rows: list[dict[str, Any]] = [
        {"channel": ch, "features": {n: (None if math.isnan(v) else float(v)) for n, v in zip(ex.names, vals.tolist(), strict=True)}}
        for ch, vals in zip(rec.channels, result.values, strict=True)
    ]
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"# {args.file}: {rec.data.shape[1]} samples at {rec.fs:g} Hz, rpm {rpm:g}")
    width = max(len(n) for n in ex.names)
    cols = [max(12, len(r["channel"])) for r in rows]
    print(f"{'feature':<{width}}  " + "  ".join(f"{r['channel']:>{w}}" for r, w in zip(rows, cols, strict=True)))
    for n in ex.names:
        cells = []
        for r, w in zip(rows, cols, strict=True):
            v = r["features"][n]
            cells.append(f"{'nan' if v is None else format(v, '.6g'):>{w}}")
        print(f"{n:<{width}}  " + "  ".join(cells))
    return 0
