"""Lint a plan against the facts (pure): what `vault plan --check` reports.

Errors are what only a person can fix: unknown status words, references to
issues that do not exist, DONE objectives with open items, and markers pointing
at vault items that do not exist. Warnings are what is unverifiable or merely
out of date: a marker without a target, a rejected action, an extra Status
line, a checked item whose issue is open, and every edit ``vault plan`` would
make.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from opsvault.layout import PLAN
from opsvault.planner.model import (
    EditKind,
    IssueRef,
    IssueState,
    ItemLine,
    Plan,
    StatusLine,
    StatusWord,
    VaultFacts,
    join_refs,
    objectives,
)
from opsvault.planner.update import (
    MarkerVerdict,
    apply_facts,
    judge_marker,
    marker_reason,
    open_items_phrase,
)

_WORDS = ", ".join(str(word) for word in StatusWord)


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem at one line of the plan file."""

    path: str
    line: int
    severity: Severity
    message: str

    def render(self) -> str:
        """Return ``path:line: severity: message``."""
        return f"{self.path}:{self.line}: {self.severity}: {self.message}"


def check_plan(
    plan: Plan,
    issues: Mapping[IssueRef, IssueState],
    vault: VaultFacts,
    path: str = PLAN,
) -> tuple[Finding, ...]:
    """Return the findings for *plan*, ordered by line (errors before warnings on a line).

    Issues absent from *issues* are unknown and produce no finding. A plan that
    ``update_plan`` leaves unchanged and that has no errors is consistent.
    """
    found: list[tuple[int, Severity, str]] = []
    # Out-of-date edits an error already names.
    covered: set[tuple[int, EditKind]] = set()

    def error(line: int, message: str) -> None:
        found.append((line, Severity.ERROR, message))

    def warning(line: int, message: str) -> None:
        found.append((line, Severity.WARNING, message))

    updated, changes = apply_facts(plan, issues, vault)
    for number, line in enumerate(plan.lines, start=1):
        if isinstance(line, StatusLine) and line.word is None:
            shown = line.detail.strip()
            what = f"unknown status {shown!r}" if shown else "empty status"
            error(number, f"{what}; use one of {_WORDS}")
        if not isinstance(line, ItemLine):
            continue
        missing = [ref for ref in line.refs if issues.get(ref) is IssueState.MISSING]
        if missing:
            verb = "does" if len(missing) == 1 else "do"
            error(number, f"{join_refs(missing)} {verb} not exist")
        for marker in line.markers:
            verdict = judge_marker(marker, vault)
            shown = f"blocked-on-vault {marker.target!r}"
            if verdict is MarkerVerdict.UNKNOWN:
                error(number, f"{shown}: {marker_reason(marker, verdict)}")
            elif verdict is MarkerVerdict.GONE:
                reason = marker_reason(marker, verdict)
                error(number, f"{shown}: {reason}; `vault plan` clears it")
                covered.add((number, EditKind.MARKER))
            elif verdict is MarkerVerdict.REJECTED:
                warning(
                    number,
                    f"{shown}: {marker_reason(marker, verdict)}; propose it again or drop the marker",
                )
            elif verdict is MarkerVerdict.NO_TARGET:
                warning(
                    number,
                    "blocked-on-vault without a target cannot be verified; "
                    "name the action id or its path",
                )

    for objective in objectives(plan):
        for extra in objective.statuses[1:]:
            warning(
                extra,
                f"objective {objective.title!r} has more than one Status line; "
                "only the first is maintained",
            )
        status = objective.status
        if status is None:
            continue
        line = plan.line(status)
        assert isinstance(line, StatusLine)
        still_open = [
            n
            for n in objective.items
            if isinstance(item := updated.line(n), ItemLine) and not item.checked
        ]
        if line.word is StatusWord.DONE and still_open:
            error(status, f"status DONE but {open_items_phrase(still_open)}")
            covered.add((status, EditKind.STATUS))

    for number, line in enumerate(updated.lines, start=1):
        if isinstance(line, ItemLine) and line.checked:
            still = [ref for ref in line.refs if issues.get(ref) is IssueState.OPEN]
            if still:
                verb = "is" if len(still) == 1 else "are"
                warning(number, f"checked, but {join_refs(still)} {verb} open")

    for change in changes:
        if (change.line, change.kind) not in covered:
            warning(change.line, f"out of date: {change.reason}; run `vault plan`")

    order = {Severity.ERROR: 0, Severity.WARNING: 1}
    found.sort(key=lambda f: (f[0], order[f[1]]))
    return tuple(
        Finding(path, line, severity, message) for line, severity, message in found
    )
