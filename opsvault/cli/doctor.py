"""`vault doctor`: run the dispatcher's guard self-check on demand, with a fix for each finding."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import click

from opsvault.cli.envelope import emit
from opsvault.cli.options import json_option, ops_option, resolve_ops
from opsvault.dispatcher.guard import GuardReport, check_forgejo, check_local
from opsvault.errors import ConfigError


def _report_data(report: GuardReport) -> dict[str, object]:
    return {
        "mode": report.mode,
        "checked_at": report.checked_at.isoformat(),
        "checks": [str(c) for c in report.checks],
        "drift": report.drift,
        "findings": [
            {"check": str(f.check), "problem": f.problem, "fix": f.fix}
            for f in report.findings
        ],
    }


def _forgejo(config_path: Path, now: datetime) -> GuardReport:
    from opsvault.app import close_forge, open_forge
    from opsvault.config import ForgeKind, load_settings

    settings = load_settings(os.environ, config_path)
    if settings.forge.kind is not ForgeKind.FORGEJO:
        path = settings.forge.path
        if path is None:
            raise ConfigError(str(config_path), "forge.path is not set", "set it")
        return _local(path, settings.dispatcher.identity, settings.forge.branch, now)
    forge = open_forge(settings)
    try:
        return check_forgejo(
            forge,
            identity=settings.dispatcher.identity,
            branch=settings.forge.branch,
            owner=settings.forge.repo.split("/", 1)[0],
            required_approvals=settings.dispatcher.guard_required_approvals,
            now=now,
        )
    finally:
        close_forge(forge)


def _local(path: Path, identity: str, branch: str | None, now: datetime) -> GuardReport:
    from opsvault.app import open_local

    forge = open_local(path, identity, branch=branch)
    return check_local(
        forge, path, identity=identity, branch=forge.base_branch, now=now
    )


@click.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The dispatcher's configuration: check the forge (or local repo) it names.",
)
@ops_option
@click.option(
    "--identity",
    default="vault-bot",
    show_default=True,
    help="Without --config: the dispatcher identity to check for (local mode).",
)
@click.option(
    "--install-hook",
    is_flag=True,
    help="Local mode: (re)install the guard hook and git config first.",
)
@json_option
def doctor(
    config_path: Path | None,
    ops: Path | None,
    identity: str,
    install_hook: bool,
    as_json: bool,
) -> None:
    """Check that the forge still enforces what the vault relies on; print a fix for each finding.

    On Forgejo (with --config): the base branch's protection rule as
    docs/forgejo.md prescribes it (push whitelist holding only the dispatcher,
    required approvals, stale approvals dismissed, protected files) and that
    the dispatcher is no approver. In local mode (the ops repo of --ops, or the
    current directory): the guard hook and git config. The same checks the
    running dispatcher makes at start and every dispatcher.guard_interval.
    Exit 0 when all hold, 1 on any finding, 75 when the forge did not answer.
    """
    now = datetime.now(UTC)
    if install_hook:
        from opsvault.git.guard_hook import install_local_guard

        if config_path is not None:
            raise click.UsageError("--install-hook is for local mode: use --ops")
        hook = install_local_guard(resolve_ops(ops))
        if not as_json:
            click.echo(f"installed {hook}")
    if config_path is not None:
        report = _forgejo(config_path, now)
    else:
        report = _local(resolve_ops(ops), identity, None, now)
    if as_json:
        emit(_report_data(report), ok=not report.drift)
    else:
        if not report.drift:
            click.echo(
                f"ok: the {report.mode} guard holds "
                f"({', '.join(str(c) for c in report.checks)})"
            )
        for finding in report.findings:
            click.echo(f"DRIFT {finding.check}: {finding.problem}")
            click.echo(f"  fix: {finding.fix}")
    if report.drift:
        raise click.exceptions.Exit(1)
