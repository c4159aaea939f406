from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import pytest
from hypothesis import given, settings

from opsvault.planner.model import (
    DateLine,
    EditKind,
    IssueRef,
    IssueState,
    ItemLine,
    StatusLine,
    VaultFacts,
    VaultMarker,
    refs,
)
from opsvault.planner.render import item_annotations, parse_plan, render_plan
from opsvault.planner.update import MarkerVerdict, judge_marker, update_plan

from .strategies import issue_states, plan_texts, vault_facts

TODAY = date(2026, 5, 2)
OPEN, CLOSED, MISSING = IssueState.OPEN, IssueState.CLOSED, IssueState.MISSING
NO_VAULT = VaultFacts()
HEAD = "# Prerequisite Tree\n<!-- Last updated: 2026-04-15 -->\n\n## Objective: A\n"


def ref(number: int, repo: str | None = None) -> IssueRef:
    return IssueRef(repo, number)


def run(
    body: str,
    issues: Mapping[IssueRef, IssueState] | None = None,
    vault: VaultFacts = NO_VAULT,
) -> tuple[str, list[str]]:
    plan, changes = update_plan(parse_plan(HEAD + body), issues or {}, vault, TODAY)
    text = render_plan(plan)
    assert text.startswith(
        HEAD.replace("2026-04-15", TODAY.isoformat() if changes else "2026-04-15")
    )
    return text[len(HEAD) :], [
        change.reason for change in changes if change.kind is not EditKind.DATE
    ]


def test_item_is_checked_when_all_its_references_are_closed() -> None:
    body, reasons = run(
        "- [ ] a (#1 — open) and acme/app#2\nStatus: READY\n",
        {ref(1): CLOSED, ref(2, "acme/app"): CLOSED},
    )
    assert body == "- [x] a (#1 — closed) and acme/app#2\nStatus: DONE\n"
    assert reasons == [
        "checked: #1, acme/app#2 closed",
        "annotation #1 open → closed",
        "status READY → DONE: every item checked",
    ]


@pytest.mark.parametrize(
    "issues",
    [
        {ref(1): CLOSED, ref(2): OPEN},
        {ref(1): CLOSED, ref(2): MISSING},
        {ref(1): CLOSED},  # #2 unknown: not fetched, never guessed
    ],
)
def test_item_stays_open_unless_every_reference_is_closed(
    issues: dict[IssueRef, IssueState],
) -> None:
    body, reasons = run("- [ ] a #1 #2\n", issues)
    assert body == "- [ ] a #1 #2\n"
    assert reasons == []


def test_item_without_references_is_never_checked() -> None:
    assert run("- [ ] write the runbook\nStatus: READY\n", {ref(1): CLOSED}) == (
        "- [ ] write the runbook\nStatus: READY\n",
        [],
    )


def test_hand_checked_item_with_an_open_issue_stays_checked() -> None:
    assert (
        run("- [x] a (#1)\n- [x] b (#2 — blocked)\n", {ref(1): OPEN, ref(2): OPEN})[1]
        == []
    )


def test_reopened_issue_unchecks_an_item_annotated_closed() -> None:
    body, reasons = run(
        "- [x] a (#1 — closed, security) #2\nStatus: DONE — shipped\n",
        {ref(1): OPEN, ref(2): CLOSED},
    )
    assert body == "- [ ] a (#1 — open, security) #2\nStatus: IN PROGRESS\n"
    assert reasons == [
        "unchecked: #1 reopened",
        "annotation #1 closed → open",
        "status DONE → IN PROGRESS: open item on line 5",
    ]


VAULT = VaultFacts(
    pending=frozenset({"waiting"}),
    running=frozenset({"busy"}),
    fired=frozenset({"done", "busy"}),
    rejected=frozenset({"refused"}),
    existing_paths=frozenset({"vault/pending/still.md"}),
)


@pytest.mark.parametrize(
    ("target", "verdict"),
    [
        ("done", MarkerVerdict.FIRED),
        ("vault/actions/done.toml", MarkerVerdict.FIRED),
        ("waiting", MarkerVerdict.WAITING),
        ("vault/pending/waiting.md", MarkerVerdict.WAITING),
        ("busy", MarkerVerdict.WAITING),  # running wins over a stale fired entry
        ("vault/pending/still.md", MarkerVerdict.WAITING),
        ("vault/pending/gone.md", MarkerVerdict.GONE),
        ("refused", MarkerVerdict.REJECTED),
        ("vault/actions/refused.toml", MarkerVerdict.REJECTED),
        ("never-heard-of", MarkerVerdict.UNKNOWN),
        (None, MarkerVerdict.NO_TARGET),
    ],
)
def test_marker_verdicts(target: str | None, verdict: MarkerVerdict) -> None:
    assert judge_marker(VaultMarker(target), VAULT) is verdict
    assert verdict.clears is (verdict in (MarkerVerdict.FIRED, MarkerVerdict.GONE))


def test_clearing_the_last_marker_moves_blocked_to_in_progress() -> None:
    body, reasons = run(
        "- [ ] a blocked-on-vault (done)\n- [ ] b\nStatus: BLOCKED — a waits on the vault\n",
        vault=VAULT,
    )
    assert body == "- [ ] a\n- [ ] b\nStatus: IN PROGRESS\n"
    assert reasons == [
        "cleared blocked-on-vault: vault action 'done' fired",
        "status BLOCKED → IN PROGRESS: last vault marker cleared",
    ]


def test_blocked_stays_while_a_marker_remains() -> None:
    body, _ = run(
        "- [ ] a blocked-on-vault (done)\n- [ ] b blocked-on-vault\nStatus: BLOCKED — two waits\n",
        vault=VAULT,
    )
    assert body == "- [ ] a\n- [ ] b blocked-on-vault\nStatus: BLOCKED — two waits\n"


def test_blocked_without_markers_is_a_human_call_and_kept() -> None:
    assert run("- [ ] a\nStatus: BLOCKED — upstream\n", vault=VAULT)[1] == []


@pytest.mark.parametrize("word", ["READY", "IN PROGRESS"])
def test_open_item_blocked_on_the_vault_makes_the_objective_blocked(word: str) -> None:
    body, reasons = run(
        f"- [ ] a blocked-on-vault (waiting)\nStatus: {word} — soon\n", vault=VAULT
    )
    assert body == "- [ ] a blocked-on-vault (waiting)\nStatus: BLOCKED\n"
    assert reasons == [
        f"status {word} → BLOCKED: open item on line 5 is blocked on the vault"
    ]


@pytest.mark.parametrize(
    "status", ["Status: WIP", "Status: whenever — ask Kim", "Status:"]
)
def test_unknown_status_text_is_kept(status: str) -> None:
    assert run(f"- [x] a\n{status}\n")[0] == f"- [x] a\n{status}\n"


def test_status_suffix_is_kept_when_the_word_stays() -> None:
    text = "- [x] a (#1 — open)\nStatus: DONE — all 10 sub-issues closed\n"
    assert run(text, {ref(1): CLOSED})[0] == text.replace("open", "closed")


def test_objective_without_items_keeps_its_status() -> None:
    assert run("Status: DONE\n")[1] == []


def test_date_moves_only_with_another_change() -> None:
    plan = parse_plan(HEAD + "- [x] a (#1 — closed)\nStatus: DONE\n")
    assert update_plan(plan, {ref(1): CLOSED}, NO_VAULT, TODAY) == (plan, ())
    updated, changes = update_plan(plan, {ref(1): OPEN}, NO_VAULT, TODAY)
    assert isinstance(updated.line(2), DateLine)
    assert updated.line(2).text == "<!-- Last updated: 2026-05-02 -->"
    assert changes[0].line == 2
    assert changes[0].reason == "last updated 2026-04-15 → 2026-05-02"


def test_date_already_today_and_no_date_line_are_fine() -> None:
    text = "<!-- Last updated: 2026-05-02 -->\n- [ ] a #1\n"
    updated, changes = update_plan(parse_plan(text), {ref(1): CLOSED}, NO_VAULT, TODAY)
    assert [c.kind for c in changes] == [EditKind.CHECK]
    updated, changes = update_plan(
        parse_plan("- [ ] a #1"), {ref(1): CLOSED}, NO_VAULT, TODAY
    )
    assert render_plan(updated) == "- [x] a #1"


def test_refs_lists_what_the_shell_must_fetch() -> None:
    plan = parse_plan(
        HEAD + "- [ ] a #1 acme/app#1\nprose #9\n```\n- [ ] #8\n```\n- [x] b #1\n"
    )
    assert refs(plan) == frozenset({ref(1), ref(1, "acme/app")})


@settings(max_examples=150)
@given(plan_texts(), issue_states, vault_facts)
def test_update_is_idempotent_and_touches_only_what_it_owns(
    text: str, issues: dict[IssueRef, IssueState], vault: VaultFacts
) -> None:
    plan = parse_plan(text)
    once, changes = update_plan(plan, issues, vault, TODAY)
    assert update_plan(once, issues, vault, TODAY) == (once, ())
    assert len(once.lines) == len(plan.lines)
    changed = {
        n
        for n, (a, b) in enumerate(zip(plan.lines, once.lines, strict=True), 1)
        if a != b
    }
    assert changed == {change.line for change in changes}
    for number in changed:
        before, after = plan.line(number), once.line(number)
        assert type(before) is type(after)
        assert isinstance(before, ItemLine | StatusLine | DateLine)
        assert before.eol == after.eol
        if (
            isinstance(before, ItemLine)
            and isinstance(after, ItemLine)
            and before.checked
            and not after.checked
        ):
            annotated = {
                r for r, words in item_annotations(before) if "closed" in words
            }
            assert any(issues.get(r) is OPEN for r in annotated)
        if (
            isinstance(after, ItemLine)
            and isinstance(before, ItemLine)
            and after.checked
            and not before.checked
        ):
            assert all(issues.get(r) is CLOSED for r in after.refs)
    if not changes:
        assert once == plan


def test_clearing_a_marker_that_reveals_another_is_done_in_one_run() -> None:
    # Clearing the first marker turns the rest into a second, fired, marker.
    text = "- [ ] blocked-on-vault:vault/pending/x.md`blocked-on-vault` `done`\n"
    once, changes = update_plan(parse_plan(text), {}, VAULT, TODAY)
    assert render_plan(once) == "- [ ] \n"
    assert [c.kind for c in changes] == [EditKind.MARKER, EditKind.MARKER]
    assert update_plan(once, {}, VAULT, TODAY) == (once, ())
