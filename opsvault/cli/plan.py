"""`vault plan`: keep ``prerequisites.md`` true to the vault (and, later, to issue states).

The shell around the pure planner (opsvault.planner): read the file and the
vault directories of an ops repo working tree, call ``update_plan`` or
``check_plan``, print a diff and the reasons, and write the file back. In this
local mode there is no forge, so issue states are unknown and only vault-based
updates apply. The PR-based write flow comes with the dispatcher (docs/planner.md).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import click

from opsvault.cli.options import echo_json, json_option
from opsvault.errors import ConfigError
from opsvault.planner.check import Finding, Severity, check_plan
from opsvault.planner.model import (
    Change,
    IssueRef,
    IssueState,
    Plan,
    VaultFacts,
    marker_paths,
)
from opsvault.planner.render import parse_plan, render_plan
from opsvault.planner.update import update_plan

PLAN_FILE = "prerequisites.md"
NO_FORGE = "issue states not checked: no forge configured"


@dataclass(frozen=True, slots=True)
class PlanReport:
    """What one `vault plan` run found and did."""

    path: str
    changes: tuple[Change, ...]
    findings: tuple[Finding, ...]
    diff: str
    written: bool
    notes: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity is Severity.ERROR)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "changed": self.changed,
            "written": self.written,
            "issues_checked": NO_FORGE not in self.notes,
            "notes": list(self.notes),
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


def load_plan(path: Path) -> Plan:
    """Return the plan in *path*, read as UTF-8 bytes so line endings survive."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            str(path), "no such file", "pass --ops DIR of an ops repo that has one"
        ) from None
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc.strerror}") from exc
    try:
        return parse_plan(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), f"not UTF-8 at byte {exc.start}") from exc


def write_plan(path: Path, plan: Plan) -> None:
    path.write_bytes(render_plan(plan).encode("utf-8"))


def load_vault_facts(ops: Path, paths: Iterable[str]) -> VaultFacts:
    """Return the vault facts of the working tree at *ops*.

    Pending: ``vault/actions/*.toml``; running: ``vault/running/*.toml``; fired
    and rejected: ``<id>.toml`` anywhere below ``vault/fired`` and
    ``vault/rejected``; existing paths: those of *paths* (relative, inside the
    repo) that exist. Open proposals are not visible here.
    """
    vault = ops / "vault"

    def stems(directory: Path, pattern: str) -> frozenset[str]:
        if not directory.is_dir():
            return frozenset()
        return frozenset(p.stem for p in directory.glob(pattern) if p.is_file())

    def exists(relative: str) -> bool:
        pure = PurePosixPath(relative)
        return (
            not pure.is_absolute() and ".." not in pure.parts and (ops / pure).exists()
        )

    return VaultFacts(
        pending=stems(vault / "actions", "*.toml"),
        running=stems(vault / "running", "*.toml"),
        fired=stems(vault / "fired", "**/*.toml"),
        rejected=stems(vault / "rejected", "**/*.toml"),
        existing_paths=frozenset(p for p in paths if exists(p)),
    )


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


def run_plan(
    ops: Path,
    today: date,
    *,
    issues: Mapping[IssueRef, IssueState] | None = None,
    write: bool = True,
) -> PlanReport:
    """Update ``ops/prerequisites.md`` from the vault (and *issues*, when given).

    Writes the file only if *write* and something changed. ``issues`` None means
    no forge: issue states are unknown, and the report notes it.
    """
    path = ops / PLAN_FILE
    plan = load_plan(path)
    vault = load_vault_facts(ops, marker_paths(plan))
    known = issues if issues is not None else {}
    updated, changes = update_plan(plan, known, vault, today)
    findings = check_plan(plan, known, vault, path=str(path))
    written = write and bool(changes)
    if written:
        write_plan(path, updated)
    return PlanReport(
        path=str(path),
        changes=changes,
        findings=findings,
        diff=plan_diff(PLAN_FILE, plan, updated),
        written=written,
        notes=() if issues is not None else (NO_FORGE,),
    )


@click.command("plan")
@click.option(
    "--ops",
    "ops",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="The ops repo working tree holding prerequisites.md.",
)
@click.option("--dry-run", is_flag=True, help="Show the diff; do not write the file.")
@click.option(
    "--check", is_flag=True, help="Lint the file; exit 1 on errors. Never writes."
)
@json_option
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="The date for `Last updated` (default: today).",
)
def plan(
    ops: Path, dry_run: bool, check: bool, as_json: bool, today: datetime | None
) -> None:
    """Keep prerequisites.md true to the vault: tick boxes, clear markers, fix statuses.

    Only checkboxes, open/closed annotations, blocked-on-vault markers, Status
    words and the Last updated date change; every other byte is kept. Without
    a forge, issue states are not checked.
    """
    day = today.date() if today is not None else date.today()
    report = run_plan(ops, day, write=not (dry_run or check))
    if as_json:
        echo_json(report.to_json())
    elif check:
        _echo_check(report)
    else:
        _echo_update(report, dry_run)
    if check and report.errors:
        click.get_current_context().exit(1)


def _echo_check(report: PlanReport) -> None:
    for note in report.notes:
        click.echo(f"note: {note}")
    for finding in report.findings:
        click.echo(finding.render())
    warnings = len(report.findings) - report.errors
    click.echo(f"{report.errors} error(s), {warnings} warning(s)")


def _echo_update(report: PlanReport, dry_run: bool) -> None:
    for note in report.notes:
        click.echo(f"note: {note}")
    if not report.changes:
        click.echo(f"{report.path} is up to date")
        return
    click.echo(report.diff, nl=False)
    for change in report.changes:
        click.echo(f"{report.path}:{change.line}: {change.reason}")
    count = f"{len(report.changes)} change(s)"
    if dry_run:
        click.echo(f"dry run: {report.path} not written ({count})")
    else:
        click.echo(f"wrote {report.path} ({count})")
