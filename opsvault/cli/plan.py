"""`vault plan`: keep ``prerequisites.md`` true to the vault and to issue states.

The command is a composition root around ``opsvault.planner.job``:

* ``--config FILE``: build the App the dispatcher would (``build_app``) and run
  ``run_planner_job``: issue states from the forge, the update proposed as a
  ``plan/*`` PR (Forgejo) or committed to main (local mode);
* ``--ops DIR`` of a git repo: local mode without a forge: read main, commit
  the update to main, and let a clean work tree follow;
* ``--ops DIR`` of a plain directory: read and write the file in place.

Without a forge, issue states are unknown and only vault-based updates apply.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click

from opsvault.cli.options import json_option
from opsvault.errors import ConfigError, InvalidFileError
from opsvault.git.base import Identity
from opsvault.layout import PLAN as PLAN_FILE
from opsvault.planner.evaluate import PlanReport, decode_plan, evaluate
from opsvault.planner.facts import load_vault_facts
from opsvault.planner.job import PlannerSetup, run_planner, run_planner_job
from opsvault.planner.model import IssueRef, IssueState, Plan, marker_paths
from opsvault.planner.render import render_plan
from opsvault.snapshot import DirSnapshot, read_bounded, writable_path

OUT_OF_DATE = "out of date: "  # planner.check: a finding the update itself fixes
PLANNER_IDENTITY = Identity("opsvault-planner", "opsvault-planner@localhost")


def load_plan(path: Path) -> Plan:
    """Return the plan in *path*, read as UTF-8 bytes so line endings survive."""
    try:
        data = read_bounded(path, str(path))
    except FileNotFoundError:
        raise ConfigError(
            str(path), "no such file", "pass --ops DIR of an ops repo that has one"
        ) from None
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc.strerror}") from exc
    return decode_plan(data, str(path))


def write_plan(path: Path, plan: Plan) -> None:
    path.write_bytes(render_plan(plan).encode("utf-8"))


def run_plan(
    ops: Path,
    today: date,
    *,
    issues: Mapping[IssueRef, IssueState] | None = None,
    write: bool = True,
) -> PlanReport:
    """Update ``ops/prerequisites.md`` from the vault (and *issues*, when given).

    A git repo is read at main (open proposal branches count as pending) and
    the update is committed to main; the work tree follows if it is clean and
    on main. A plain directory is read and written in place. Nothing is
    written unless *write* and something changed. ``issues`` None means no
    forge: issue states are unknown, and the report notes it.
    """
    if (ops / ".git").exists():
        return _run_local_git(ops, today, issues, write)
    path = ops / PLAN_FILE
    plan = load_plan(path)
    vault = load_vault_facts(DirSnapshot(ops), marker_paths(plan))
    report, updated = evaluate(str(path), plan, issues, vault, today)
    if write and report.changes:
        write_plan(writable_path(ops, PLAN_FILE), updated)
        return replace(report, written=True)
    return report


def _run_local_git(
    ops: Path,
    today: date,
    issues: Mapping[IssueRef, IssueState] | None,
    write: bool,
) -> PlanReport:
    from opsvault.app import local_mainline, open_local, open_repo

    repo = open_repo(ops)
    name, email = repo.config_value("user.name"), repo.config_value("user.email")
    identity = Identity(name, email) if name and email else PLANNER_IDENTITY
    known = dict(issues) if issues is not None else None
    forge = open_local(repo, identity.name)
    setup = PlannerSetup(
        repo=repo,
        mainline=local_mainline(forge),
        forge=forge,
        identity=identity,
        propose=False,
        issues=(lambda wanted: known) if known is not None else None,
        path=str(ops / PLAN_FILE),
    )
    report = run_planner(setup, today, write=write)
    main = report.commit or report.base
    if main is None:
        return report
    try:
        # Bounded, never through a link, never a device (review R-10).
        local = read_bounded(ops / PLAN_FILE, PLAN_FILE, follow_links=False)
    except (OSError, InvalidFileError):
        local = None
    if local != repo.read_file(main, PLAN_FILE):
        note = (
            f"the work tree's {PLAN_FILE} differs from {forge.base_branch} "
            f"(local changes, or {forge.base_branch} not checked out); "
            f"the planner reads and writes {forge.base_branch}"
        )
        return replace(report, notes=(*report.notes, note))
    return report


@click.command("plan")
@click.option(
    "--ops",
    "ops",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The ops repo holding prerequisites.md (default: found upward from the "
    "current directory, like every command). A git repo is read at main and "
    "the update committed to main.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The dispatcher configuration: read issue states from its forge and "
    "propose the update as a PR (local mode: commit it to main).",
)
@click.option("--dry-run", is_flag=True, help="Show the diff; write nothing.")
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
    ops: Path | None,
    config_path: Path | None,
    dry_run: bool,
    check: bool,
    as_json: bool,
    today: datetime | None,
) -> None:
    """Keep prerequisites.md true to the vault and issues: tick boxes, clear markers, fix statuses.

    Only checkboxes, open/closed annotations, blocked-on-vault markers, Status
    words and the Last updated date change; every other byte is kept. Without
    a forge (no --config, or a local-mode one), issue states are not checked.

    Every run prints the findings only a person can fix (unknown status
    words, missing issues, markers at nothing) and exits 1 when one is an
    error, whether or not the file was updated; --check only lints.
    """
    if ops is not None and config_path is not None:
        raise click.UsageError(
            "--ops and --config: pass one; the configuration names the ops repo"
        )
    write = not (dry_run or check)
    if config_path is not None:
        report = _run_configured(config_path, today, write)
    else:
        day = today.date() if today is not None else date.today()
        report = run_plan(find_plan_root(ops), day, write=write)
    if as_json:
        from opsvault.cli.envelope import emit

        emit(plan_data(report), ok=not report.errors)
    elif check:
        _echo_check(report)
    else:
        _echo_update(report)
    if report.errors:
        click.get_current_context().exit(1)


def plan_data(report: PlanReport) -> dict[str, Any]:
    """The report as `vault plan --json` prints it (docs/json.md).

    As in every opsvault output, a finding names its ``file`` (``path`` is
    the JSON path of a problem in a TOML file; a plan finding has a ``line``).
    """
    data = report.to_json()
    data["findings"] = [{"file": f.pop("path"), **f} for f in data["findings"]]
    return {"errors": report.errors, **data}


def find_plan_root(ops: Path | None) -> Path:
    """Return *ops*, else the nearest ops repo above the current directory.

    The nearest directory holding vault/policy.toml, else (a plain planning
    directory) the nearest holding prerequisites.md, relative to the current
    directory; ConfigError if neither.
    """
    from opsvault.snapshot import find_ops_root

    if ops is not None:
        return ops
    here = Path.cwd()
    found = find_ops_root(here) or next(
        (
            candidate
            for candidate in (here.resolve(), *here.resolve().parents)
            if (candidate / PLAN_FILE).is_file()
        ),
        None,
    )
    if found is not None:
        # Relative, so output names the file as the person typing sees it.
        return Path(os.path.relpath(found, here))
    raise ConfigError(
        str(here),
        f"not inside an ops repo (no vault/policy.toml or {PLAN_FILE} here or above)",
        "pass --ops DIR",
    )


def _run_configured(
    config_path: Path, today: datetime | None, write: bool
) -> PlanReport:
    # A composition root: the environment is read here and nowhere below.
    from opsvault.app import build_app
    from opsvault.config import load_settings

    settings = load_settings(os.environ, config_path)
    app = build_app(settings, os.environ)
    try:
        return run_planner_job(
            app,
            datetime.now(UTC),
            today=today.date() if today is not None else None,
            write=write,
        )
    finally:
        app.close()


def _echo_check(report: PlanReport) -> None:
    for note in report.notes:
        click.echo(f"note: {note}")
    for finding in report.findings:
        click.echo(finding.render())
    warnings = len(report.findings) - report.errors
    click.echo(f"{report.errors} error(s), {warnings} warning(s)")


def _echo_update(report: PlanReport) -> None:
    for note in report.notes:
        click.echo(f"note: {note}")
    # What the update fixes is shown as the diff; the rest needs a person.
    for finding in report.findings:
        if not finding.message.startswith(OUT_OF_DATE):
            click.echo(finding.render())
    if not report.changes:
        if report.errors:
            click.echo(
                f"{report.path}: nothing to update, but {report.errors} error(s) "
                "above need a person"
            )
        else:
            click.echo(f"{report.path} is up to date")
        return
    click.echo(report.diff, nl=False)
    for change in report.changes:
        click.echo(f"{report.path}:{change.line}: {change.reason}")
    count = f"{len(report.changes)} change(s)"
    if report.pull_number is not None:
        click.echo(
            f"proposed in PR #{report.pull_number} ({report.branch}): "
            f"{report.pull_url or '(no url)'} ({count})"
        )
        for number in report.superseded:
            click.echo(f"closed PR #{number}: superseded")
    elif report.commit is not None:
        click.echo(f"committed {report.commit[:12]} to main ({count})")
    elif report.written:
        click.echo(f"wrote {report.path} ({count})")
    else:
        click.echo(f"dry run: {report.path} not written ({count})")
    if report.errors:
        click.echo(f"{report.errors} error(s) above need a person")
