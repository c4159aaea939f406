"""Hypothesis strategies for planner tests: small domain alphabets that shrink readably."""

from __future__ import annotations

from hypothesis import strategies as st

from opsvault.planner.model import IssueRef, IssueState, VaultFacts

REFS = (IssueRef(None, 1), IssueRef(None, 2), IssueRef("acme/app", 1))
IDS = ("aa1", "bb2", "cc3")
PATHS = (
    "vault/actions/aa1.toml",
    "vault/pending/bb2.md",
    "vault/fired/2026/04/cc3.toml",
)

_FRAGMENTS = (
    "#1",
    "#2",
    "acme/app#1",
    "x#1",
    "&#2;",
    "(#1 — open)",
    "(#2 -- closed)",
    "(acme/app#1 - open, bug-report)",
    "(#1 \u2013 closed)",
    "(#2: open)",
    "(#1 — blocked)",
    "blocked-on-vault",
    " blocked-on-vault (vault/actions/aa1.toml)",
    "blocked-on-vault: bb2",
    "`blocked-on-vault` `cc3`",
    "blocked-on-vault vault/pending/bb2.md",
    "blocked-on-vault (aa1)",
    "blocked-on-vault:",
    "blocked-on-",
    "vault",
    " ",
    "  ",
    "\t",
    "word",
    "é",
    "—",
    "(",
    ")",
    ",",
    ":",
    "`",
    "\u2028",
    "\x0b",
    "x",
)
_STATUS_TEXT = (
    "DONE",
    "BLOCKED",
    "READY",
    "IN PROGRESS",
    "WIP",
    "",
    "done",
    "IN  PROGRESS",
)
_SUFFIX = (
    "",
    " — all 10 sub-issues closed",
    " (code merged)",
    "  ",
    " — #1 waits",
    "ISH",
)

fragment_text = st.lists(st.sampled_from(_FRAGMENTS), max_size=6).map("".join)

item_line = st.builds(
    lambda indent, bullet, mark, body: f"{indent}{bullet} [{mark}]{body}",
    st.sampled_from(("", "  ", "\t")),
    st.sampled_from(("-", "*", "+", "1.", "2)")),
    st.sampled_from((" ", "x", "X")),
    fragment_text.map(lambda body: " " + body),
)
status_line = st.builds(
    lambda prefix, word, suffix: f"{prefix}{word}{suffix}",
    st.sampled_from(("Status: ", "**Status:** ", "Status:", "  Status: ")),
    st.sampled_from(_STATUS_TEXT),
    st.sampled_from(_SUFFIX),
)
plan_line = st.one_of(
    item_line,
    item_line,
    status_line,
    st.sampled_from(
        (
            "# Prerequisite Tree",
            "<!-- Last updated: 2026-04-15 -->",
            "<!-- Last updated: 2026-04-15 by hand -->",
            "## Objective: A",
            "## Objective: B — with (#1)",
            "### Objective: nested",
            "### Notes",
            "## --- ADOPTION MILESTONE: IN PROGRESS ---",
            "```",
            "~~~",
            "",
            "prose with #1",
        )
    ),
    fragment_text,
)


@st.composite
def plan_texts(draw: st.DrawFn) -> str:
    """Return a plausible ``prerequisites.md``: known line kinds and noise, mixed endings."""
    lines = draw(st.lists(plan_line, max_size=14))
    eols = draw(
        st.lists(
            st.sampled_from(("\n", "\r\n", "\r")),
            min_size=len(lines),
            max_size=len(lines),
        )
    )
    text = "".join(line + eol for line, eol in zip(lines, eols, strict=True))
    if draw(st.booleans()) and text:
        text = text.rstrip("\r\n")
    return text


def _subset(items: tuple[str, ...]) -> st.SearchStrategy[frozenset[str]]:
    return st.frozensets(st.sampled_from(items))


vault_facts = st.builds(
    VaultFacts,
    pending=_subset(IDS),
    running=_subset(IDS),
    fired=_subset(IDS),
    rejected=_subset(IDS),
    existing_paths=_subset(PATHS),
)
issue_states = st.dictionaries(
    st.sampled_from(REFS), st.sampled_from(tuple(IssueState))
)
