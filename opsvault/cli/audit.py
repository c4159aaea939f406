"""`vault audit verify`: prove from the record that every action that ran was allowed to (ADR 0021)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from opsvault.cli.options import json_option, ops_option, resolve_ops
from opsvault.errors import ConfigError

if TYPE_CHECKING:
    from opsvault.audit.breaks import AuditReport


@click.group()
def audit() -> None:
    """Check the vault's own record: the record chain and every decision in it."""


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    from opsvault.timefmt import parse_iso

    try:
        when = parse_iso(text)
    except ValueError:
        raise ConfigError(
            f"--since {text!r}",
            "not a date",
            "give an ISO 8601 date or time, e.g. 2026-11-01 or 2026-11-01T12:00Z",
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


@audit.command()
@ops_option
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A dispatcher configuration (docs/operating.md): verify the repo and forge it names.",
)
@click.option(
    "--since",
    "since_text",
    metavar="DATE",
    default=None,
    help="Only records written from DATE on (ISO 8601); the chain continues from "
    "the head the last earlier records commit names.",
)
@click.option(
    "--offline",
    is_flag=True,
    help="Do not ask the forge: no PR comment anchors, and approvers judged by the "
    "policy's users alone.",
)
@json_option
def verify(
    ops: Path | None,
    config_path: Path | None,
    since_text: str | None,
    offline: bool,
    as_json: bool,
) -> None:
    """Walk the base branch and check every record; exit 1 on any break.

    Checks the record chain (each record names the hash of the one before it),
    re-classifies each merged action with the policy and formulas at the
    recorded commits, checks its approver was eligible and its merge landed the
    classified change, and pairs every claim with an outcome. With a forge, each
    result's hash is compared with the one its PR comment carries.

    \b
    Examples:
      vault audit verify
      vault audit verify --since 2026-11-01 --json
      vault audit verify --config /etc/opsvault/dispatcher.toml
    """
    from opsvault.audit.verify import verify as run_verify

    since = _since(since_text)
    if config_path is not None:
        from opsvault.app import build_app
        from opsvault.config import load_settings

        app = build_app(load_settings(os.environ, config_path), os.environ)
        try:
            main = app.mainline.refresh()
            report = run_verify(
                app.repo,
                app.mainline.branch,
                commit=main,
                since=since,
                forge=None if offline else app.forge,
                identity=app.identity,
            )
        finally:
            app.close()
    else:
        from opsvault.app import base_branch_of, open_local, open_repo
        from opsvault.config import DispatcherSettings

        repo = open_repo(resolve_ops(ops))
        identity = DispatcherSettings().identity
        report = run_verify(
            repo,
            base_branch_of(repo),
            since=since,
            forge=None if offline else open_local(repo, identity),
            identity=identity,
        )
    _show(report, as_json)
    if not report.ok:
        raise SystemExit(1)


def _show(report: AuditReport, as_json: bool) -> None:
    if as_json:
        from opsvault.cli.envelope import emit

        emit(report.data(), ok=report.ok)
        return
    for found in report.breaks:
        click.echo(f"break: {found.render()}")
    for found in report.warnings:
        click.echo(f"warning: {found.render()}")
    start = (
        f"chain from {report.chain_start[:12]}"
        if report.chain_start
        else "no chain yet"
    )
    click.echo(
        f"{report.branch} at {report.main[:12]}: {report.records} record(s) in "
        f"{report.commits} commit(s), {report.chained} chained ({start}), "
        f"{report.pre_chain} before the chain, {report.replayed} replayed, "
        f"{report.anchors} anchor(s) compared, {report.pending} claim(s) open: "
        + ("ok" if report.ok else f"{len(report.breaks)} break(s)")
    )
