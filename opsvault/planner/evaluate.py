"""What one planner run found and did, and the pure steps that produce it.

No I/O here: text and facts in, a :class:`PlanReport` and the new plan out,
plus the names and messages the write flow uses (``plan_branch``,
``commit_message``, ``proposal_body``).
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from opsvault.errors import InvalidFileError, Problem
from opsvault.layout import PLAN as PLAN_FILE
from opsvault.layout import PLAN_PREFIX
from opsvault.planner.check import Finding, Severity, check_plan
from opsvault.planner.model import Change, IssueRef, IssueState, Plan, VaultFacts
from opsvault.planner.render import parse_plan
from opsvault.planner.update import update_plan

NO_FORGE = "issue states not checked: no forge configured"
PLAN_BRANCH_PREFIX = PLAN_PREFIX


@dataclass(frozen=True, slots=True)
class PlanReport:
    """What one planner run found and did."""

    path: str
    changes: tuple[Change, ...]
    findings: tuple[Finding, ...]
    diff: str
    written: bool
    notes: tuple[str, ...]
    base: str | None = None  # the main commit the plan was read from (git only)
    commit: str | None = None  # the commit now on main (direct write)
    branch: str | None = None  # the proposal branch (proposal write)
    pull_number: int | None = None
    pull_url: str = ""
    superseded: tuple[int, ...] = ()  # older planner PRs closed in favour of this one

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity is Severity.ERROR)

    @property
    def issues_checked(self) -> bool:
        return NO_FORGE not in self.notes

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "changed": self.changed,
            "written": self.written,
            "issues_checked": self.issues_checked,
            "notes": list(self.notes),
            "base": self.base,
            "commit": self.commit,
            "proposal": (
                None
                if self.branch is None
                else {
                    "branch": self.branch,
                    "number": self.pull_number,
                    "url": self.pull_url,
                    "superseded": list(self.superseded),
                }
            ),
            "changes": [
                {"line": c.line, "kind": str(c.kind), "reason": c.reason}
                for c in self.changes
            ],
            "findings": [
                {
                    "path": f.path,
                    "line": f.line,
                    "severity": str(f.severity),
                    "message": f.message,
                }
                for f in self.findings
            ],
            "diff": self.diff,
        }

    def summary(self) -> str:
        """Return one line saying what the run did, for logs."""
        count = f"{len(self.changes)} change(s)"
        if not self.changes:
            return f"{self.path} is up to date"
        if self.pull_number is not None:
            return f"{self.path}: {count} proposed in PR #{self.pull_number} {self.pull_url}".rstrip()
        if self.commit is not None:
            return f"{self.path}: {count} committed to main as {self.commit[:12]}"
        if self.written:
            return f"{self.path}: {count} written"
        return f"{self.path}: {count} not written (dry run)"


MAX_PLAN_BYTES = 1024 * 1024


def decode_plan(data: bytes, where: str) -> Plan:
    """Return the plan in UTF-8 *data*; raise InvalidFileError naming *where* otherwise.

    Total (security invariant I5): any bytes give a plan, or the error for a
    file over MAX_PLAN_BYTES or not UTF-8.
    """
    if len(data) > MAX_PLAN_BYTES:
        raise InvalidFileError(
            where,
            [
                Problem(
                    "$",
                    f"file is {len(data)} bytes, over the limit of {MAX_PLAN_BYTES}; split it",
                )
            ],
        )
    try:
        return parse_plan(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InvalidFileError(
            where, [Problem("$", f"not UTF-8 at byte {exc.start}; save it as UTF-8")]
        ) from exc


def plan_diff(name: str, before: Plan, after: Plan) -> str:
    """Return a unified diff of two plans, line endings as they are in the file."""
    old = [line.text + line.eol for line in before.lines]
    new = [line.text + line.eol for line in after.lines]
    out = []
    for line in difflib.unified_diff(old, new, f"a/{name}", f"b/{name}"):
        if not line.endswith(("\n", "\r")):
            line += "\n\\ No newline at end of file\n"
        out.append(line)
    return "".join(out)


def evaluate(
    path: str,
    plan: Plan,
    issues: Mapping[IssueRef, IssueState] | None,
    vault: VaultFacts,
    today: date,
) -> tuple[PlanReport, Plan]:
    """Return the report (nothing written yet) and the updated plan.

    *issues* None means no forge: issue states are unknown, and the report notes it.
    """
    known = issues if issues is not None else {}
    updated, changes = update_plan(plan, known, vault, today)
    report = PlanReport(
        path=path,
        changes=changes,
        findings=check_plan(plan, known, vault, path=path),
        diff=plan_diff(PLAN_FILE, plan, updated),
        written=False,
        notes=() if issues is not None else (NO_FORGE,),
    )
    return report, updated


def plan_branch(today: date, content: bytes) -> str:
    """Return ``plan/<today>-<12 hex of sha256(content)>``: same content, same branch."""
    digest = hashlib.sha256(content).hexdigest()[:12]
    return f"{PLAN_BRANCH_PREFIX}{today.isoformat()}-{digest}"


def change_lines(changes: tuple[Change, ...]) -> str:
    """Return one ``- line N: reason`` line per change."""
    return "\n".join(f"- line {c.line}: {c.reason}" for c in changes)


def commit_message(report: PlanReport) -> str:
    return (
        f"planner: update {PLAN_FILE} ({len(report.changes)} change(s))\n\n"
        f"{change_lines(report.changes)}\n"
    )


def proposal_body(report: PlanReport) -> str:
    base = f" at `{report.base[:12]}`" if report.base else ""
    return (
        f"Bookkeeping by the planner on `{PLAN_FILE}` from main{base} "
        "(docs/planner.md). It only touches that file, so the dispatcher merges "
        "it as low tier.\n\n"
        f"{change_lines(report.changes)}\n\n"
        f"```diff\n{report.diff}```\n"
    )
