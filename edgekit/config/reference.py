"""Render the configuration reference (docs/configuration.md) from the config types.

``python -m edgekit.config.reference > docs/configuration.md``; a test fails when the file in
docs/ differs from what the types say, so the reference cannot drift.
"""

from __future__ import annotations

import sys

from .parse import describe
from .schema import GatewayConfig

HEADER = """# Configuration reference

A gateway is configured by one TOML file, validated once at start (`edgekit check CONFIG` runs the
same validation). Unknown keys are errors, and every error names the dotted key path, the bad value
and what is allowed, for example:

    edgekit: config error: modbus[0].devices[2].tags[5].byte_order: 'XYZW' is not one of ABCD, BADC, CDAB, DCBA

Durations are strings like `"250ms"`, `"5s"`, `"2m"`, `"1h"` (or a number of seconds); sizes like
`"64MiB"`, `"1GB"` (or a number of bytes). Secrets (passwords, secret keys) are written as
`{ env = "NAME" }` (read from an environment variable), `{ file = "/path" }` (read from a file) or a
literal string; they are resolved once at start and never logged.

`[]` in a key means "every element of this list"; `.<name>` means "every key of this table".
This page is generated from the config types (`python -m edgekit.config.reference`); a test keeps
it current.

| key | type | default | meaning |
|---|---|---|---|
"""


def render() -> str:
    rows = []
    for key, typ, default, doc in describe(GatewayConfig):
        cells = [f"`{key}`", typ, f"`{default}`" if default not in ("required", "(table)") else default, doc]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return HEADER + "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
