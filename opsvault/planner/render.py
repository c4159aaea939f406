"""The text format of ``prerequisites.md``: parse, render, and line-level edits.

``render_plan(parse_plan(text)) == text`` for any string: every line keeps its
exact text and ending, and a line is only ever interpreted, never normalised.
The edit functions (``with_checked`` ...) change the one part of a line they are
about and re-parse the result, so the fields of a line always match its text.
See docs/planner.md for the format.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import date

from opsvault.planner.model import (
    DateLine,
    HeadingLine,
    IssueRef,
    IssueState,
    ItemLine,
    Line,
    MilestoneLine,
    ObjectiveLine,
    Plan,
    RawLine,
    StatusLine,
    StatusWord,
    VaultMarker,
)

_EOL = re.compile(r"\r\n|\r|\n")
_FENCE = re.compile(r"[ ]{0,3}(?P<fence>`{3,}|~{3,})(?P<info>.*)")
_DATE = re.compile(
    r"(?P<pre>[ \t]*<!--[ \t]*Last updated:[ \t]*)(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?![0-9])(?P<post>.*)",
    re.IGNORECASE,
)
_HEADING = re.compile(r"(?P<hashes>#{1,6})(?:[ \t]+(?P<rest>.*))?")
_OBJECTIVE = re.compile(r"Objective\b[ \t]*:?[ \t]*(?P<title>.*)")
_MILESTONE = re.compile(r"-{3,}(?P<label>.*)")
_ITEM = re.compile(
    r"(?P<lead>[ \t]*(?:[-*+]|[0-9]{1,9}[.)])[ \t]+\[)(?P<mark>[ xX])\](?P<body>.*)"
)
_STATUS = re.compile(
    r"(?P<prefix>[ \t]*(?:\*\*|__)?Status(?:\*\*|__)?[ \t]*:(?:\*\*|__)?[ \t]*)(?P<rest>.*)"
)
_STATUS_WORD = re.compile(r"(?P<word>IN PROGRESS|DONE|BLOCKED|READY)(?![\w-])")

# `#12` or `owner/repo#12`, not inside a word, a path, a URL fragment or `&#12;`.
_REF = r"(?<![\w&/#.-])(?:(?P<{p}repo>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+))?#(?P<{p}num>[0-9]+)(?!\w)"
_REF_RE = re.compile(_REF.format(p=""))
# `(#12 — closed)`, `(acme/app#3 -- open, bug-report)`: a reference, a separator, words.
_ANNOTATION = re.compile(
    r"\([ \t]*"
    + _REF.format(p="a")
    + r"(?P<sep>[ \t]*(?:\u2014|\u2013|--|-|:)[ \t]*)(?P<words>[^()]*)\)"
)
_TARGET_END = r"[^\s()`,;]*[^\s()`,;.:]"
_MARKER = re.compile(
    r"(?<![\w-])(?P<tick>`?)blocked-on-vault(?P=tick)(?![\w-])"
    r"(?:[ \t]*:[ \t]*(?:`(?P<colon_tick>[^`\s]+)`|(?P<colon>" + _TARGET_END + r"))"
    r"|[ \t]*\([ \t]*`?(?P<paren>[^()\s`]+)`?[ \t]*\)"
    r"|[ \t]+`(?P<tick_target>[^`\s]+)`"
    r"|[ \t]+(?P<path>vault/" + _TARGET_END + r"))?"
)
_TARGET_GROUPS = ("colon_tick", "colon", "paren", "tick_target", "path")


def parse_plan(text: str) -> Plan:
    """Return the plan for *text*; never fails, and ``render_plan`` gives *text* back.

    Lines inside fenced code blocks are raw: an example item in a code block is
    not an item.
    """
    lines: list[Line] = []
    fence: str | None = None
    for content, eol in _split_lines(text):
        match = _FENCE.fullmatch(content)
        if fence is not None:
            lines.append(RawLine(content, eol))
            if (
                match
                and match["fence"][0] == fence[0]
                and len(match["fence"]) >= len(fence)
                and not match["info"].strip()
            ):
                fence = None
            continue
        if match and not (match["fence"][0] == "`" and "`" in match["info"]):
            fence = match["fence"]
            lines.append(RawLine(content, eol))
            continue
        lines.append(parse_line(content, eol))
    return Plan(tuple(lines))


def render_plan(plan: Plan) -> str:
    """Return the text of *plan*: its lines and line endings, concatenated."""
    return "".join(line.text + line.eol for line in plan.lines)


def _split_lines(text: str) -> list[tuple[str, str]]:
    # str.splitlines would also split on \v, \f, \x1c, \u2028 ...; only real line ends count.
    pieces: list[tuple[str, str]] = []
    pos = 0
    for match in _EOL.finditer(text):
        pieces.append((text[pos : match.start()], match.group()))
        pos = match.end()
    if pos < len(text):
        pieces.append((text[pos:], ""))
    return pieces


def parse_line(text: str, eol: str = "\n") -> Line:
    """Return the typed line for *text* (one line, without its ending), outside code blocks."""
    if match := _ITEM.fullmatch(text):
        body = match["body"]
        return ItemLine(
            text, eol, match["mark"] != " ", _parse_refs(body), _parse_markers(body)
        )
    if match := _STATUS.fullmatch(text):
        rest = match["rest"]
        word = _STATUS_WORD.match(rest)
        if word:
            return StatusLine(text, eol, StatusWord(word["word"]), rest)
        return StatusLine(text, eol, None, rest)
    if match := _DATE.fullmatch(text):
        return DateLine(text, eol, match["date"])
    if match := _HEADING.fullmatch(text):
        level = len(match["hashes"])
        rest = match["rest"] or ""
        if objective := _OBJECTIVE.fullmatch(rest):
            return ObjectiveLine(text, eol, level, objective["title"].strip())
        if milestone := _MILESTONE.fullmatch(rest):
            return MilestoneLine(text, eol, level, milestone["label"].strip(" \t-"))
        return HeadingLine(text, eol, level)
    return RawLine(text, eol)


def _parse_refs(body: str) -> tuple[IssueRef, ...]:
    seen: dict[IssueRef, None] = {}
    for match in _REF_RE.finditer(body):
        seen.setdefault(IssueRef(match["repo"], int(match["num"])), None)
    return tuple(seen)


def _marker_target(match: re.Match[str]) -> str | None:
    for group in _TARGET_GROUPS:
        if match[group] is not None:
            return match[group]
    return None


def _parse_markers(body: str) -> tuple[VaultMarker, ...]:
    return tuple(VaultMarker(_marker_target(m)) for m in _MARKER.finditer(body))


def _item_parts(line: ItemLine) -> tuple[str, str, str]:
    match = _ITEM.fullmatch(line.text)
    assert match is not None, "an ItemLine always matches the item pattern"
    return match["lead"], match["mark"], match["body"]


def _reparse_item(line: ItemLine, text: str) -> ItemLine:
    new = parse_line(text, line.eol)
    assert isinstance(new, ItemLine), "an edit keeps an item an item"
    return new


def with_checked(line: ItemLine, checked: bool) -> ItemLine:
    """Return *line* with its box checked (``x``) or unchecked; an ``X`` counts as checked."""
    if line.checked == checked:
        return line
    lead, _, body = _item_parts(line)
    return _reparse_item(line, f"{lead}{'x' if checked else ' '}]{body}")


def item_annotations(line: ItemLine) -> tuple[tuple[IssueRef, tuple[str, ...]], ...]:
    """Return each ``(#12 — word, word)`` annotation as (reference, stripped words)."""
    _, _, body = _item_parts(line)
    return tuple(
        (
            IssueRef(m["arepo"], int(m["anum"])),
            tuple(word.strip() for word in m["words"].split(",")),
        )
        for m in _ANNOTATION.finditer(body)
    )


def with_annotations(line: ItemLine, states: Mapping[IssueRef, IssueState]) -> ItemLine:
    """Return *line* with every annotation word that is exactly ``open`` or ``closed``
    set to the state of its reference; other words and the separator are kept."""

    def replace(match: re.Match[str]) -> str:
        state = states.get(IssueRef(match["arepo"], int(match["anum"])))
        if state not in (IssueState.OPEN, IssueState.CLOSED):
            return match.group()
        words = []
        for word in match["words"].split(","):
            stripped = word.strip()
            if stripped in ("open", "closed"):
                start = word.index(stripped)
                word = word[:start] + str(state) + word[start + len(stripped) :]
            words.append(word)
        start = match.start("words") - match.start()
        return match.group()[:start] + ",".join(words) + ")"

    lead, mark, body = _item_parts(line)
    new_body = _ANNOTATION.sub(replace, body)
    return line if new_body == body else _reparse_item(line, f"{lead}{mark}]{new_body}")


def without_markers(line: ItemLine, indices: Collection[int]) -> ItemLine:
    """Return *line* without the markers at *indices* (positions in ``line.markers``).

    A marker goes with the blanks before it, or after it when it starts the text,
    so ``a blocked-on-vault (x) b`` becomes ``a b``.
    """
    if not indices:
        return line
    lead, mark, body = _item_parts(line)
    spans = [m.span() for i, m in enumerate(_MARKER.finditer(body)) if i in indices]
    for start, end in reversed(spans):
        blanks_before = start - len(body[:start].rstrip(" \t"))
        if blanks_before and start > blanks_before:
            start -= blanks_before
        else:
            end = len(body) - len(body[end:].lstrip(" \t"))
        body = body[:start] + body[end:]
    return _reparse_item(line, f"{lead}{mark}]{body}")


def with_status(line: StatusLine, word: StatusWord) -> StatusLine:
    """Return *line* saying *word*; a suffix is kept only if the word stays the same."""
    if line.word == word:
        return line
    match = _STATUS.fullmatch(line.text)
    assert match is not None, "a StatusLine always matches the status pattern"
    new = parse_line(match["prefix"] + str(word), line.eol)
    assert isinstance(new, StatusLine)
    return new


def with_date(line: DateLine, day: date) -> DateLine:
    """Return *line* with its date set to *day*; the text around the date is kept."""
    match = _DATE.fullmatch(line.text)
    assert match is not None, "a DateLine always matches the date pattern"
    new = parse_line(match["pre"] + day.isoformat() + match["post"], line.eol)
    assert isinstance(new, DateLine)
    return new
