"""The pure steps of a planner run: names and messages of the write flow."""

from __future__ import annotations

from datetime import date

from opsvault.planner.evaluate import (
    commit_message,
    evaluate,
    plan_branch,
    proposal_body,
)
from opsvault.planner.model import EditKind, IssueRef, IssueState, VaultFacts
from opsvault.planner.render import parse_plan

TREE = (
    "<!-- Last updated: 2026-01-01 -->\n## Objective: A\n- [ ] a (#1)\nStatus: READY\n"
)


def test_same_content_same_branch() -> None:
    day = date(2026, 5, 2)
    branch = plan_branch(day, b"x\n")
    assert branch == plan_branch(day, b"x\n")
    assert (
        branch.startswith("plan/2026-05-02-")
        and len(branch) == len("plan/2026-05-02-") + 12
    )
    assert plan_branch(day, b"y\n") != branch


def test_messages_carry_every_change_and_its_reason() -> None:
    issues = {IssueRef(None, 1): IssueState.CLOSED}
    report, _ = evaluate(
        "prerequisites.md", parse_plan(TREE), issues, VaultFacts(), date(2026, 5, 2)
    )
    assert [c.kind for c in report.changes] == [
        EditKind.DATE,
        EditKind.CHECK,
        EditKind.STATUS,
    ]
    message = commit_message(report)
    assert message.splitlines()[0] == "planner: update prerequisites.md (3 change(s))"
    assert "- line 3: checked: #1 closed" in message
    body = proposal_body(report)
    assert "- line 4: status READY → DONE: every item checked" in body
    assert "```diff\n--- a/prerequisites.md\n" in body
    assert report.summary() == "prerequisites.md: 3 change(s) not written (dry run)"


def test_without_issue_states_the_report_says_so() -> None:
    report, updated = evaluate(
        "p.md", parse_plan(TREE), None, VaultFacts(), date(2026, 5, 2)
    )
    assert (report.changes, report.issues_checked) == ((), False)
    assert report.summary() == "p.md is up to date"
    assert updated == parse_plan(TREE)
