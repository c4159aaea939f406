"""Strict durations: a positive whole number and one unit of s, m, h or d."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"([1-9][0-9]{0,8})([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Longer than any deadline or timeout needs; keeps `now + duration` far from datetime's end.
MAX_DURATION = timedelta(days=3650)


def parse_duration(text: str) -> timedelta:
    """Return the duration *text* (``30s``, ``15m``, ``2h``, ``7d``); raise ValueError otherwise.

    No fractions, no compound forms (``1h30m``), no spaces, no zero, nothing
    over MAX_DURATION: an operator writes one unambiguous number.
    """
    match = _DURATION.fullmatch(text)
    if not match:
        raise ValueError(
            f"{text[:40]!r} is not a duration like '30s', '15m', '2h' or '7d'"
        )
    value = timedelta(seconds=int(match[1]) * _UNITS[match[2]])
    if value > MAX_DURATION:
        raise ValueError(f"{text!r} is longer than {MAX_DURATION.days}d")
    return value


def render_duration(value: timedelta) -> str:
    """Return the shortest exact duration text for *value* (inverse of parse_duration)."""
    seconds = int(value.total_seconds())
    for unit in ("d", "h", "m"):
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"
