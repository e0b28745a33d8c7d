"""Modbus address notations: turn what a device manual says into a 0-based protocol address.

Accepted forms (the table a notation implies must agree with the tag's ``table``):

* an integer ``N`` (decimal or TOML hex ``0x1F``): the 0-based protocol address, ``0..65535``;
* ``"0-based:N"``: the same, spelled out;
* ``"1-based:N"``: a 1-based register number from a manual, protocol address ``N - 1``;
* Modicon 5-digit ``"40001"`` (``N`` = 1..9999) or 6-digit ``"400001"`` (``N`` = 1..65536), and the
  ``"4x0001"`` / ``"4x00001"`` form: the first digit names the table (``0`` coil, ``1`` discrete
  input, ``3`` input register, ``4`` holding register) and the rest is 1-based, so ``"40001"`` is
  holding register 0 and ``"30101"`` is input register 100.

Plain digit strings of other lengths and hex strings are rejected (``"0x0001"`` would be ambiguous
with the Modicon coil notation ``0x``); write hex as a TOML integer instead.
"""

from __future__ import annotations

import re
from typing import Literal

from ...errors import ConfigError

__all__ = ["MODICON_TABLES", "Table", "parse_address"]

Table = Literal["coil", "discrete_input", "input_register", "holding_register"]

MODICON_TABLES: dict[str, Table] = {
    "0": "coil",
    "1": "discrete_input",
    "3": "input_register",
    "4": "holding_register",
}

_BASED = re.compile(r"^\s*([01])-based:\s*(\d+)\s*$")
_X_FORM = re.compile(r"^\s*([0134])[xX](\d{1,5})\s*$")
_DIGITS = re.compile(r"^\s*(\d{5,6})\s*$")

_HELP = (
    'use a 0-based integer 0..65535, "0-based:N", "1-based:N" (N = 1..65536), '
    'Modicon "40001" (5 digits) / "400001" (6 digits) or "4x0001"'
)


def parse_address(value: int | str, path: str = "address") -> tuple[int, Table | None]:
    """Return ``(protocol_address, implied_table)``; the table is ``None`` unless the notation names it."""
    if isinstance(value, bool):
        raise ConfigError(path, f"{value!r} is not an address; {_HELP}")
    if isinstance(value, int):
        if not 0 <= value <= 65535:
            raise ConfigError(path, f"{value!r} is out of range; protocol addresses are 0..65535")
        return value, None
    if not isinstance(value, str):
        raise ConfigError(path, f"{value!r} is not an address; {_HELP}")
    if m := _BASED.match(value):
        base, n = int(m.group(1)), int(m.group(2))
        addr = n - base
        if not 0 <= addr <= 65535:
            lo, hi = (1, 65536) if base else (0, 65535)
            raise ConfigError(path, f"{value!r} is out of range; {base}-based numbers are {lo}..{hi}")
        return addr, None
    if m := _X_FORM.match(value):
        table = MODICON_TABLES[m.group(1)]
        n = int(m.group(2))
        if not 1 <= n <= 65536:
            raise ConfigError(path, f"{value!r} is out of range; the number after 'x' is 1-based, 1..65536")
        return n - 1, table
    if m := _DIGITS.match(value):
        digits = m.group(1)
        if digits[0] not in MODICON_TABLES:
            raise ConfigError(
                path, f"{value!r}: Modicon notation starts with 0, 1, 3 or 4 (coil, discrete input, "
                "input register, holding register)"
            )
        n = int(digits[1:])
        hi = 9999 if len(digits) == 5 else 65536
        if not 1 <= n <= hi:
            raise ConfigError(path, f"{value!r} is out of range; register numbers are 1..{hi} in this notation")
        return n - 1, MODICON_TABLES[digits[0]]
    raise ConfigError(path, f"{value!r} is not an address; {_HELP}")
