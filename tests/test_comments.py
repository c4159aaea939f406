"""No comment trails a line the formatter made of closing brackets (issue 10 §8).

When ``ruff format`` wraps a statement that had a trailing comment, the comment
ends up behind ``)``, ``]`` or ``) -> T:``, far from what it describes. Such a
comment goes on its own line above the statement instead.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREES = ("opsvault", "testing", "tests", "benchmarks")
# A line that opens with closing brackets and ends in a comment (``# fmt: skip``
# is a formatter directive, not a description).
STRANDED = re.compile(r"^\s*[)\]}].*  # (?!fmt: skip)")


def stranded_comments() -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for tree in TREES:
        for path in sorted((ROOT / tree).rglob("*.py")):
            lines = path.read_text(encoding="utf-8").splitlines()
            numbers = [n for n, line in enumerate(lines, 1) if STRANDED.match(line)]
            if numbers:
                found[path.relative_to(ROOT).as_posix()] = numbers
    return found


def test_no_comment_is_stranded_behind_closing_brackets() -> None:
    found = stranded_comments()
    assert not found, f"move these comments above their statement: {found}"


def test_the_detector_finds_what_the_formatter_leaves() -> None:
    assert STRANDED.match("    )  # the fake forge's clock, shared")
    assert STRANDED.match("    ) -> str:  # never show the token")
    assert not STRANDED.match("    x = f(a)  # a fine trailing comment")
    assert not STRANDED.match("    }  # fmt: skip")
