from __future__ import annotations

from opsvault.planner.check import Finding, Severity, check_plan
from opsvault.planner.model import IssueRef, IssueState, VaultFacts
from opsvault.planner.render import parse_plan

TREE = """\
# Prerequisite Tree
<!-- Last updated: 2026-04-15 -->

## Objective: A
- [x] shipped (#1 — closed)
- [ ] typo (#404)
- [ ] waits blocked-on-vault (publish-1)
- [ ] waits on something blocked-on-vault
Status: DONE — all done
Status: DONE

## Objective: B
- [ ] docs (#2)
Status: WIP (code merged)
"""
ISSUES = {IssueRef(None, 1): IssueState.CLOSED, IssueRef(None, 404): IssueState.MISSING}


def test_findings_name_file_and_line() -> None:
    findings = check_plan(
        parse_plan(TREE), ISSUES, VaultFacts(), path="ops/prerequisites.md"
    )
    assert [f.render() for f in findings] == [
        "ops/prerequisites.md:6: error: #404 does not exist",
        "ops/prerequisites.md:7: error: blocked-on-vault 'publish-1': "
        "no vault action 'publish-1' (not pending, running, fired or rejected)",
        "ops/prerequisites.md:8: warning: blocked-on-vault without a target cannot be "
        "verified; name the action id or its path",
        "ops/prerequisites.md:9: error: status DONE but open items on lines 6, 7, 8",
        "ops/prerequisites.md:10: warning: objective 'A' has more than one Status line; "
        "only the first is maintained",
        "ops/prerequisites.md:14: error: unknown status 'WIP (code merged)'; "
        "use one of DONE, BLOCKED, READY, IN PROGRESS",
    ]
    assert any(f.severity is Severity.ERROR for f in findings)


def test_done_is_judged_after_bookkeeping() -> None:
    text = "## Objective: A\n- [ ] a (#1)\nStatus: DONE\n"
    findings = check_plan(
        parse_plan(text), {IssueRef(None, 1): IssueState.CLOSED}, VaultFacts()
    )
    assert findings == (
        Finding(
            "prerequisites.md",
            2,
            Severity.WARNING,
            "out of date: checked: #1 closed; run `vault plan`",
        ),
    )
    assert all(f.severity is Severity.WARNING for f in findings)


def test_checked_item_with_an_open_issue_is_a_warning() -> None:
    text = "- [x] a (#1)\n"
    findings = check_plan(
        parse_plan(text), {IssueRef(None, 1): IssueState.OPEN}, VaultFacts()
    )
    assert [f.render() for f in findings] == [
        "prerequisites.md:1: warning: checked, but #1 is open"
    ]


def test_gone_path_is_an_error_not_repeated_as_out_of_date() -> None:
    text = "## Objective: A\n- [ ] a blocked-on-vault (vault/pending/x.md)\n- [ ] b\nStatus: BLOCKED\n"
    findings = check_plan(parse_plan(text), {}, VaultFacts())
    assert [(f.line, f.severity) for f in findings] == [
        (2, Severity.ERROR),
        (4, Severity.WARNING),
    ]
    assert "`vault plan` clears it" in findings[0].message
    assert findings[1].message.startswith("out of date: status BLOCKED → IN PROGRESS")


def test_consistent_plan_has_no_findings() -> None:
    text = "## Objective: A\n- [x] a (#1 — closed)\n- [ ] b blocked-on-vault (x)\nStatus: BLOCKED\n"
    vault = VaultFacts(pending=frozenset({"x"}))
    assert (
        check_plan(parse_plan(text), {IssueRef(None, 1): IssueState.CLOSED}, vault)
        == ()
    )
