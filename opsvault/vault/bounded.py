"""Bounds every parsed document must keep (security invariant I5: parsing is total and bounded).

Proposers write bytes that opsvault parses; the parsers below them (``tomllib``,
``json``) and everything that walks the data afterwards (schema checks, reprs,
re-rendering a claim) recurse once per nesting level, and Python refuses to
turn integers of more than 4300 digits into text. So a parsed document is
checked here before anyone else looks at it: at most :data:`MAX_DEPTH` levels
of arrays and tables, and integers within TOML's 64-bit range. The walk is
iterative, so it cannot itself run out of stack.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from opsvault.errors import InvalidFileError, Problem

# No file opsvault reads is bigger (action files, policy and formulas stop at 64 KiB):
# the most any reader takes of a blob or file (policy.change re-exports it for
# the change model; here so that reading one file imports nothing of changes).
MAX_BLOB_BYTES = 1024 * 1024
# Nothing opsvault reads nests more than five levels (policy rules: $.rules[0].when.params.x[0]).
MAX_DEPTH = 32
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1

TOO_DEEP = (
    f"arrays and tables nest deeper than {MAX_DEPTH} levels; flatten the document"
)
TOO_LONG_NUMBER = (
    "a number has too many digits; integers must fit in 64 bits (TOML's range)"
)


def shape_problems(data: Any) -> list[Problem]:
    """Return where *data* nests deeper than MAX_DEPTH or holds an integer outside 64 bits.

    One problem per offending place, outermost first; nothing below an
    over-deep container is looked at.
    """
    problems: list[Problem] = []
    stack: list[tuple[Any, str, int]] = [(data, "$", 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            if not INT_MIN <= value <= INT_MAX:
                problems.append(
                    Problem(path, "integer outside the 64-bit range; use a string")
                )
            continue
        if isinstance(value, dict | list):
            if depth >= MAX_DEPTH:
                problems.append(Problem(path, TOO_DEEP))
                continue
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                stack.append((item, _child(path, key), depth + 1))
    return sorted(problems, key=lambda p: (p.path, p.message))


def _child(path: str, key: object) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    text = str(key)
    if text.isidentifier() and len(text) <= 64:
        return f"{path}.{text}"
    return f"{path}[{text[:64]!r}]"


def parse_json_object(
    content: bytes,
    where: str,
    max_bytes: int,
    error: Callable[[str, list[Problem]], InvalidFileError] = InvalidFileError,
) -> dict[str, Any]:
    """Return the JSON object in *content*; raise *error* for anything else, whatever the bytes.

    Refused: more than *max_bytes*, invalid UTF-8 or JSON, a top level that is
    not an object, and documents :func:`shape_problems` objects to.
    """
    if len(content) > max_bytes:
        raise error(
            where,
            [
                Problem(
                    "$", f"file is {len(content)} bytes, over the limit of {max_bytes}"
                )
            ],
        )
    try:
        data = json.loads(content.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise error(
            where, [Problem("$", f"not valid UTF-8 at byte {exc.start}")]
        ) from exc
    except RecursionError as exc:
        raise error(where, [Problem("$", TOO_DEEP)]) from exc
    except ValueError as exc:  # JSONDecodeError, and Python's int-str digit limit
        message = str(exc).splitlines()[0][:200]
        if "digits" in message:
            message = TOO_LONG_NUMBER
        raise error(where, [Problem("$", f"not valid JSON: {message}")]) from exc
    if not isinstance(data, dict):
        raise error(where, [Problem("$", "expected a JSON object")])
    problems = shape_problems(data)
    if problems:
        raise error(where, problems)
    return data
