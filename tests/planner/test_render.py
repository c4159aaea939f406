from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opsvault.planner.model import (
    DateLine,
    HeadingLine,
    IssueRef,
    IssueState,
    ItemLine,
    MilestoneLine,
    ObjectiveLine,
    RawLine,
    StatusLine,
    StatusWord,
    VaultFacts,
    VaultMarker,
    objectives,
    refs,
)
from opsvault.planner.render import (
    parse_line,
    parse_plan,
    render_plan,
    with_annotations,
    with_checked,
    with_date,
    with_status,
    without_markers,
)
from opsvault.planner.update import update_plan

from .strategies import issue_states, plan_texts, vault_facts

CLOSED = IssueState.CLOSED


def item(text: str) -> ItemLine:
    line = parse_line(text)
    assert isinstance(line, ItemLine), line
    return line


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n",
        "\r\n\r\n",
        "\r",
        "no final newline",
        "- [ ] item (#1)   \r\n- [x] done\r\n",
        "Status: DONE  \n\n\n",
        "a\u2028b\x0bc\x0cd\x1ce\x85f\n",
        "```\n- [ ] in a fence (#1)\n```",
        "\ufeff# Prerequisite Tree\n",
    ],
)
def test_render_gives_back_the_exact_text(text: str) -> None:
    assert render_plan(parse_plan(text)) == text


@settings(max_examples=300)
@given(st.text())
def test_render_parse_round_trips_any_text(text: str) -> None:
    assert render_plan(parse_plan(text)) == text


@settings(max_examples=150)
@given(plan_texts())
def test_render_parse_round_trips_plan_like_text(text: str) -> None:
    plan = parse_plan(text)
    assert render_plan(plan) == text
    assert parse_plan(render_plan(plan)) == plan


@settings(max_examples=100)
@given(plan_texts(), issue_states, vault_facts)
def test_updated_plans_parse_back_to_themselves(
    text: str, issues: dict[IssueRef, IssueState], vault: VaultFacts
) -> None:
    updated, _ = update_plan(parse_plan(text), issues, vault, date(2026, 5, 2))
    assert parse_plan(render_plan(updated)) == updated


def test_line_endings_are_kept_per_line() -> None:
    plan = parse_plan("a\r\nb\nc\rd")
    assert [(line.text, line.eol) for line in plan.lines] == [
        ("a", "\r\n"),
        ("b", "\n"),
        ("c", "\r"),
        ("d", ""),
    ]


@pytest.mark.parametrize(
    ("text", "checked"),
    [
        ("- [ ] open", False),
        ("- [x] done", True),
        ("- [X] done", True),
        ("* [ ] star bullet", False),
        ("  - [x] nested", True),
        ("1. [ ] numbered", False),
        ("- [ ]", False),
    ],
)
def test_items_in_their_variants(text: str, checked: bool) -> None:
    assert item(text).checked is checked


def test_references_anywhere_in_an_item() -> None:
    line = item(
        "- [ ] #1 first (acme/app#12 — open) and owner/repo#3, see #1 again; "
        "not x#4, &#5; or https://forge/acme/app/issues/6#issuecomment-7"
    )
    assert line.refs == (
        IssueRef(None, 1),
        IssueRef("acme/app", 12),
        IssueRef("owner/repo", 3),
    )
    assert str(line.refs[1]) == "acme/app#12"


@pytest.mark.parametrize(
    ("text", "targets"),
    [
        ("- [ ] a blocked-on-vault (vault/pending/x.md)", ["vault/pending/x.md"]),
        ("- [ ] a blocked-on-vault(publish-1)", ["publish-1"]),
        ("- [ ] a blocked-on-vault: publish-1.", ["publish-1"]),
        (
            "- [ ] a blocked-on-vault vault/actions/x.toml, then",
            ["vault/actions/x.toml"],
        ),
        ("- [ ] a `blocked-on-vault` `x-1`", ["x-1"]),
        ("- [ ] a blocked-on-vault (`x-1`)", ["x-1"]),
        ("- [ ] a blocked-on-vault", [None]),
        ("- [ ] a blocked-on-vault until the key exists", [None]),
        ("- [ ] a not-blocked-on-vault, blocked-on-vaults", []),
        ("- [ ] blocked-on-vault (a) and blocked-on-vault (b)", ["a", "b"]),
    ],
)
def test_vault_markers_with_a_path_an_id_or_nothing(
    text: str, targets: list[str | None]
) -> None:
    assert [marker.target for marker in item(text).markers] == targets


@pytest.mark.parametrize(
    ("target", "action_id"),
    [
        ("vault/pending/x.md", "x"),
        ("vault/actions/publish-1.toml", "publish-1"),
        ("vault/fired/2026/04/publish-1.result.json", "publish-1"),
        ("publish-1", "publish-1"),
        (None, None),
    ],
)
def test_marker_names_its_action_by_file_stem(
    target: str | None, action_id: str | None
) -> None:
    assert VaultMarker(target).action_id == action_id


@pytest.mark.parametrize(
    ("text", "word", "detail"),
    [
        ("Status: DONE", StatusWord.DONE, "DONE"),
        (
            "Status: DONE — all 10 sub-issues closed",
            StatusWord.DONE,
            "DONE — all 10 sub-issues closed",
        ),
        ("Status: DONE (code merged)", StatusWord.DONE, "DONE (code merged)"),
        ("Status: IN PROGRESS", StatusWord.IN_PROGRESS, "IN PROGRESS"),
        ("**Status:** BLOCKED — on #758", StatusWord.BLOCKED, "BLOCKED — on #758"),
        ("Status:READY", StatusWord.READY, "READY"),
        ("Status: DONE-ish", None, "DONE-ish"),
        ("Status: WIP", None, "WIP"),
        ("Status: in progress", None, "in progress"),
        ("Status:", None, ""),
    ],
)
def test_status_lines(text: str, word: StatusWord | None, detail: str) -> None:
    assert parse_line(text) == StatusLine(text, "\n", word, detail)


def test_other_line_kinds() -> None:
    assert parse_line("<!-- Last updated: 2026-04-15 by the planner -->") == DateLine(
        "<!-- Last updated: 2026-04-15 by the planner -->", "\n", "2026-04-15"
    )
    assert isinstance(parse_line("## Objective: A — b"), ObjectiveLine)
    assert parse_line("## --- ADOPTION MILESTONE: IN PROGRESS ---") == MilestoneLine(
        "## --- ADOPTION MILESTONE: IN PROGRESS ---",
        "\n",
        2,
        "ADOPTION MILESTONE: IN PROGRESS",
    )
    assert parse_line("### Notes") == HeadingLine("### Notes", "\n", 3)
    assert isinstance(parse_line("#12 is not a heading"), RawLine)


def test_fenced_code_is_raw() -> None:
    plan = parse_plan("```md\n- [ ] example (#1)\nStatus: WIP\n```\n- [ ] real (#2)\n")
    assert [type(line) for line in plan.lines] == [
        RawLine,
        RawLine,
        RawLine,
        RawLine,
        ItemLine,
    ]
    assert refs(plan) == frozenset({IssueRef(None, 2)})


def test_objectives_end_at_headings_of_their_level() -> None:
    plan = parse_plan(
        "## Objective: A\n- [ ] a1\n### Notes\n- [ ] a2\nStatus: READY\n"
        "## --- MILESTONE ---\n- [ ] loose\n## Objective: B\nStatus: DONE\n"
    )
    a, b = objectives(plan)
    assert (a.title, a.line, a.end, a.items, a.status) == ("A", 1, 5, (2, 4), 5)
    assert (b.title, b.line, b.end, b.items, b.status) == ("B", 8, 9, (), 9)


@pytest.mark.parametrize("sep", [" — ", " \u2013 ", " -- ", " - ", ": ", "—"])
def test_annotation_keeps_the_separator_a_human_used(sep: str) -> None:
    line = item(f"- [ ] x (#12{sep}open, bug-report)")
    new = with_annotations(line, {IssueRef(None, 12): CLOSED})
    assert new.text == f"- [ ] x (#12{sep}closed, bug-report)"


@pytest.mark.parametrize(
    "annotation",
    ["(#12 — blocked)", "(#12 — reopened)", "(#12 — open slot)", "(#12 — Open)"],
)
def test_annotation_words_other_than_open_or_closed_are_kept(annotation: str) -> None:
    line = item(f"- [ ] x {annotation}")
    assert with_annotations(line, {IssueRef(None, 12): CLOSED}) == line


def test_annotation_of_an_unknown_or_missing_issue_is_kept() -> None:
    line = item("- [ ] x (#12 — open)")
    assert with_annotations(line, {}) == line
    assert with_annotations(line, {IssueRef(None, 12): IssueState.MISSING}) == line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- [ ] a blocked-on-vault (x) b", "- [ ] a b"),
        ("- [ ] a (#1)  blocked-on-vault: x", "- [ ] a (#1)"),
        ("- [ ] blocked-on-vault (x) first", "- [ ] first"),
        ("- [ ] a blocked-on-vault (x)  ", "- [ ] a  "),
    ],
)
def test_removing_a_marker_takes_its_blanks(text: str, expected: str) -> None:
    assert without_markers(item(text), {0}).text == expected


def test_edits_keep_everything_else() -> None:
    assert with_checked(item("  * [ ] a"), True).text == "  * [x] a"
    assert with_checked(item("- [X] a"), False).text == "- [ ] a"
    status = parse_line("**Status:** BLOCKED — waits", "\r\n")
    assert isinstance(status, StatusLine)
    assert with_status(status, StatusWord.BLOCKED) is status
    assert with_status(status, StatusWord.IN_PROGRESS) == StatusLine(
        "**Status:** IN PROGRESS", "\r\n", StatusWord.IN_PROGRESS, "IN PROGRESS"
    )
    day = parse_line("<!-- Last updated: 2026-04-15 (by hand) -->")
    assert isinstance(day, DateLine)
    assert (
        with_date(day, date(2026, 5, 2)).text
        == "<!-- Last updated: 2026-05-02 (by hand) -->"
    )
