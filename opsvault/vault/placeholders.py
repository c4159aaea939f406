"""Render ``{name}`` placeholders inside argv templates (pure).

Grammar of one template element::

    element     := (text | "{{" | "}}" | placeholder)*
    placeholder := "{" name "}"
    name        := segment ("." segment)*      segment := [A-Za-z_][A-Za-z0-9_-]*

``{{`` and ``}}`` are literal braces. Any other ``{`` or ``}`` is malformed.

Substitution is a single pass: a value is inserted into the element it appears
in and is never split into several arguments nor scanned again, so a value that
contains ``{workspace}`` stays literal. The one exception is an element that is
*exactly* ``{params.NAME}`` where NAME is an array-of-string param (passed in
*lists*): it expands to one argument per item. An array param anywhere else is
an error, because joining items would hide argument boundaries.

There are no secret placeholders on purpose: secrets reach a step only through
its environment, so they can never appear in argv (which any local user can read
from ``/proc``). ``{secrets.X}`` is an unknown placeholder like any other.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence

from opsvault.errors import InvalidFormulaError, Problem

KNOWN_NAMES = frozenset({"workspace", "action.id", "python"})
"""Placeholders that are not params: the execution's workspace, the action id and
the interpreter running opsvault (so steps can run ``{python} -m opsvault.steps.X``)."""

PARAM_PREFIX = "params."
SECRET_PREFIX = "secrets."

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*")


class _Malformed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _tokens(element: str) -> Iterator[tuple[bool, str]]:
    """Yield ``(is_placeholder, text)`` pieces of *element*; raise _Malformed."""
    i = 0
    literal: list[str] = []
    while i < len(element):
        char = element[i]
        if char == "{":
            if element.startswith("{{", i):
                literal.append("{")
                i += 2
                continue
            end = element.find("}", i + 1)
            name = element[i + 1 : end] if end != -1 else ""
            if end == -1 or not _NAME.fullmatch(name):
                raise _Malformed(
                    f"malformed placeholder at offset {i} in {element!r}; "
                    "write '{{' for a literal brace"
                )
            if literal:
                yield False, "".join(literal)
                literal = []
            yield True, name
            i = end + 1
        elif char == "}":
            if not element.startswith("}}", i):
                raise _Malformed(
                    f"unmatched '}}' at offset {i} in {element!r}; "
                    "write '}}' for a literal brace"
                )
            literal.append("}")
            i += 2
        else:
            literal.append(char)
            i += 1
    if literal:
        yield False, "".join(literal)


def placeholders_in(
    template: Sequence[str], where: str = "<template>", path: str = "$.run"
) -> frozenset[str]:
    """Return every placeholder name used in *template* (e.g. ``params.site``).

    Lets formula validation check that each name is a declared param or one of
    KNOWN_NAMES. Raise InvalidFormulaError listing every malformed element, with
    problem paths ``<path>[<index>]``.
    """
    names: set[str] = set()
    problems: list[Problem] = []
    for index, element in enumerate(template):
        try:
            names.update(text for is_name, text in _tokens(element) if is_name)
        except _Malformed as exc:
            problems.append(Problem(f"{path}[{index}]", exc.message))
    if problems:
        raise InvalidFormulaError(where, problems)
    return frozenset(names)


def render_argv(
    template: Sequence[str],
    values: Mapping[str, str],
    where: str,
    *,
    lists: Mapping[str, Sequence[str]] | None = None,
    path: str = "$.run",
) -> tuple[str, ...]:
    """Return *template* with every placeholder replaced, one element per argument.

    *values* maps full placeholder names (``workspace``, ``action.id``,
    ``params.site``) to strings; *lists* maps full names of array params
    (``params.hosts``) to their items. Deterministic and single-pass; see the
    module docstring for the one array exception. Raise InvalidFormulaError
    listing every unknown placeholder, malformed brace or misplaced array param,
    with problem paths ``<path>[<index>]``.
    """
    arrays = lists or {}
    argv: list[str] = []
    problems: list[Problem] = []
    for index, element in enumerate(template):
        where_in = f"{path}[{index}]"
        try:
            tokens = list(_tokens(element))
        except _Malformed as exc:
            problems.append(Problem(where_in, exc.message))
            continue
        if len(tokens) == 1 and tokens[0][0] and tokens[0][1] in arrays:
            argv.extend(arrays[tokens[0][1]])
            continue
        pieces: list[str] = []
        for is_name, text in tokens:
            if not is_name:
                pieces.append(text)
            elif text.startswith(SECRET_PREFIX):
                problems.append(
                    Problem(
                        where_in,
                        f"unknown placeholder {{{text}}}; secrets reach steps only as "
                        "environment variables, never in argv",
                    )
                )
            elif text in values:
                pieces.append(values[text])
            elif text in arrays:
                problems.append(
                    Problem(
                        where_in,
                        f"array placeholder {{{text}}} must be a whole argument, "
                        f"not part of {element!r}",
                    )
                )
            else:
                problems.append(Problem(where_in, f"unknown placeholder {{{text}}}"))
        argv.append("".join(pieces))
    if problems:
        raise InvalidFormulaError(where, problems)
    return tuple(argv)
