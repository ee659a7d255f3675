"""Durations on the command line: `7d`, `12h`, `30m`, `45s`, `2w`, combined (`1d12h`), or a
plain number of seconds."""

from __future__ import annotations

import re

UNIT_S = {"w": 7 * 86_400, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_PART = re.compile(r"([0-9]+)([wdhms])")
_WHOLE = re.compile(r"^(?:[0-9]+[wdhms])+$")


def parse_duration_s(text: str) -> int:
    """Seconds; ValueError naming the accepted forms otherwise."""
    value = text.strip().lower()
    if value.isascii() and value.isdigit():
        return int(value)
    if not _WHOLE.fullmatch(value):
        raise ValueError(f"{text!r} is not a duration: use e.g. 7d, 12h, 30m, 45s or 1d12h")
    return sum(int(number) * UNIT_S[unit] for number, unit in _PART.findall(value))
