"""Path globs for ``[[paths]]`` and the built-in floors.

``*`` matches within one path segment, ``?`` one character of a segment, and a
``**`` segment any number of segments (including none). Everything else is
literal: no character classes, no regular expressions.
"""

from __future__ import annotations

import re
from functools import cache


@cache
def _compile(pattern: str) -> re.Pattern[str]:
    # Runs of '**' segments and of '*' within a segment mean the same as one, and
    # each extra one multiplies the backtracking on a long path (review R-6).
    segments: list[str] = []
    for segment in pattern.split("/"):
        if segment == "**" and segments and segments[-1] == "**":
            continue
        segments.append(segment if segment == "**" else re.sub(r"\*+", "*", segment))
    parts: list[str] = []
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == "**":
            parts.append("[^/].*" if last else "(?:[^/]+/)*")
            continue
        text = "".join(
            "[^/]*" if ch == "*" else "[^/]" if ch == "?" else re.escape(ch)
            for ch in segment
        )
        parts.append(text if last else text + "/")
    return re.compile("".join(parts))


def glob_match(pattern: str, path: str) -> bool:
    """Return whether *path* (repo-relative, posix) matches glob *pattern* in full."""
    return _compile(pattern).fullmatch(path) is not None


def name_match(pattern: str, name: str) -> bool:
    """Return whether a secret *name* matches *pattern* with ``*`` and ``?`` wildcards."""
    return glob_match(pattern.replace("/", ""), name)
