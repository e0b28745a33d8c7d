"""Structured logging for the gateway.

Levels mean something: ERROR = data was lost or an operator must act; WARNING = degraded but
self-healing (device down, task restarted); INFO = lifecycle (start, stop, connect); DEBUG =
everything else. Nothing per sample or per block at INFO. ``json`` format writes one object per
line with ``ts``, ``level``, ``logger``, ``msg`` and any ``extra`` fields.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

__all__ = ["setup_logging"]

_STD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STD:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup_logging(level: str = "info", fmt: str = "text", stream: Any = None) -> None:
    """Configure the ``edgekit`` logger tree (idempotent)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        formatter.converter = time.gmtime
        handler.setFormatter(formatter)
    root = logging.getLogger("edgekit")
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False
    # third-party libraries are chatty at INFO (asyncua logs every request); keep them at WARNING
    for noisy in ("asyncua", "pymodbus", "opcua"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
