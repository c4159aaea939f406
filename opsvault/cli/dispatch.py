"""`vault dispatcher`: run the dispatcher service, or check its configuration.

This module is a composition root: it reads the process environment once and
hands it to ``config.load_settings`` and ``app.build_app``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from opsvault.app import build_app, close_forge, open_forge, verify_identity
from opsvault.cli.options import echo_json, json_option
from opsvault.config import ForgeKind, Settings, load_settings, settings_data
from opsvault.dispatcher.identity import verify_not_approver
from opsvault.dispatcher.report import TickReport, render_report, report_data
from opsvault.dispatcher.sandbox import (
    SandboxStatus,
    sandbox_for,
    write_runner_state,
)
from opsvault.dispatcher.secrets import (
    install_log_redaction,
    set_non_dumpable,
    take_secret_environ,
)
from opsvault.dispatcher.service import run_service

if TYPE_CHECKING:
    from opsvault.dispatcher.guard_job import GuardJob
    from opsvault.dispatcher.service import TickFunction
    from opsvault.web.service import ServiceSurface

F = TypeVar("F", bound=Callable[..., Any])

EXIT_ABANDONED = 1


def config_option(f: F) -> F:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="The dispatcher configuration (TOML; see docs/operating.md). "
        "Without it: OPSVAULT_* variables and defaults only.",
    )(f)


def _configure_logging(level: int, json_lines: bool = False) -> None:
    # Only when nothing is configured yet: an embedding program (or pytest) keeps its own.
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=level,
            stream=sys.stderr,
            format="%(levelname)s %(name)s: %(message)s",
        )
        if json_lines:  # docs/operating.md "Logs"
            from opsvault.web.logs import JsonLinesFormatter

            for handler in root.handlers:
                handler.setFormatter(JsonLinesFormatter())
        # APScheduler reports every job run at INFO; its warnings (missed runs) stay.
        logging.getLogger("apscheduler").setLevel(max(level, logging.WARNING))


def seal_secrets() -> dict[str, str]:
    """Return the process environment, then take the secrets out of the process.

    ``OPSVAULT_SECRET_*`` and ``OPSVAULT_FORGE_TOKEN`` stay in the returned copy
    (in memory only) and leave ``os.environ``, so no child inherits them; the
    process becomes non-dumpable, so its initial environment block in
    ``/proc/<pid>/environ`` (which unsetenv does not erase) and its memory are
    unreadable to other processes of its user.
    """
    environ = dict(os.environ)
    take_secret_environ(os.environ)
    if not set_non_dumpable():
        logging.getLogger(__name__).warning(
            "could not mark the dispatcher non-dumpable (prctl PR_SET_DUMPABLE); "
            "processes of its user may read its memory"
        )
    return environ


def announce_sandbox(sandbox: SandboxStatus) -> None:
    """Log how steps run; without a sandbox, loudly (a warning on every start)."""
    log = logging.getLogger("opsvault.dispatcher.sandbox")
    if sandbox.active:
        log.info("%s", sandbox.detail)
        return
    log.warning("%s", sandbox.detail)
    click.echo(f"WARNING: {sandbox.detail}", err=True)


def _printer(as_json: bool, *, lines: bool) -> Callable[[TickReport], None]:
    def show(report: TickReport) -> None:
        if not as_json:
            click.echo(render_report(report))
        elif lines:  # the service prints one JSON document per line (JSON Lines)
            click.echo(json.dumps(report_data(report), sort_keys=True))
        else:
            echo_json(report_data(report))

    return show


@click.group()
def dispatcher() -> None:
    """Run the dispatcher, or check its configuration.

    The dispatcher reconciles the ops repo with its pull requests or proposal
    branches: it classifies, merges what its tier allows, fires approved
    actions exactly once and records every result in git.
    """


@dispatcher.command()
@config_option
@click.option(
    "--once",
    is_flag=True,
    help="Run one tick, print its report and exit: 0 if the tick had no errors, 1 otherwise.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Decide, but write nothing: no merge, commit, comment or execution.",
)
@click.option(
    "--log-format",
    type=click.Choice(["json", "text"]),
    default="json",
    show_default=True,
    help="Logs on stderr: JSON lines with stable keys, or plain text.",
)
@json_option
@click.pass_context
def run(
    ctx: click.Context,
    config_path: Path | None,
    once: bool,
    dry_run: bool,
    log_format: str,
    as_json: bool,
) -> None:
    """Run the dispatcher in the foreground, printing each tick's report.

    Stops on SIGTERM or SIGINT: no new tick starts, and a running one may finish
    within dispatcher.grace. A tick that fails is logged and the next one
    retries. Exit status 78 means a configuration problem (every one is listed).
    """
    environ = seal_secrets()
    settings = load_settings(environ, config_path)
    _configure_logging(
        logging.WARNING if once else logging.INFO, json_lines=log_format == "json"
    )
    sandbox = sandbox_for(settings, environ)
    app = build_app(settings, environ, sandbox=sandbox)
    install_log_redaction(app.redact)
    announce_sandbox(sandbox)
    write_runner_state(app.state_dir, sandbox)
    # The planner runs every planner.interval beside the ticks, never at the same
    # time as one (they share the repository); a failed run is logged, not fatal.
    from opsvault.dispatcher.guard_job import GuardJob
    from opsvault.dispatcher.tick import tick
    from opsvault.dispatcher.webhooks import WebhookReceiver
    from opsvault.planner.job import PlannerJob
    from opsvault.web.service import ServiceSurface

    planner = PlannerJob(app, write=not dry_run)
    # The receiver only wakes ticks; --once has none to wake. Its secret is read
    # here, so a bad secret file stops the start with exit 78.
    webhook = None if once else WebhookReceiver.from_settings(settings, app.nudges)
    surface = None if once or settings.web.port is None else ServiceSurface(app)
    # The guard self-check (ADR 0018): before the first tick, then every
    # dispatcher.guard_interval; `--once` is one tick and leaves it to `vault doctor`.
    guard = (
        None
        if once
        else GuardJob(app, on_result=None if surface is None else surface.guard_result)
    )
    try:
        verify_identity(app)
        verify_not_approver(app.forge, app.identity, app.mainline.branch)
        if surface is not None:  # the status page and /metrics (docs/operating.md)
            surface.instrument(webhook)
            surface.serve(settings.web.bind, settings.web.port or 0)
        result = run_service(
            app,
            settings.dispatcher.interval,
            once=once,
            dry_run=dry_run,
            on_report=_printer(as_json, lines=not once),
            planner_job=planner,
            tick=planner.serialize(_guarded(guard, surface, tick)),
            webhook=webhook,
        )
    finally:
        if surface is not None and surface.server is not None:
            surface.server.close()
        app.close()
    if once:
        report = result.last_report
        ctx.exit(0 if report is not None and report.ok else 1)
    if result.abandoned:
        # A worker thread still runs the tick and would keep the interpreter alive;
        # leave now, as a crash would: the next start recovers its claims.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_ABANDONED)


def _guarded(
    guard: GuardJob | None, surface: ServiceSurface | None, tick: TickFunction
) -> TickFunction:
    """The tick as the service runs it: observed by the page, preceded by the guard check."""
    observed = tick if surface is None else surface.wrap(tick)
    return observed if guard is None else guard.wrap(observed)


def _render_settings(settings: Settings) -> str:
    lines = [
        f"# effective settings; file: {settings.file if settings.file else '(none)'}"
    ]
    for section, values in settings_data(settings).items():
        lines.append(f"\n[{section}]")
        for key, value in values.items():
            if key == "token":
                if settings.forge.kind is ForgeKind.LOCAL:
                    lines.append("# token: not used in local mode")
                else:
                    shown = "set (masked)" if value else "not set"
                    lines.append(
                        f"# token: {shown}, from OPSVAULT_FORGE_TOKEN or forge.token_file"
                    )
                continue
            text = f"{key} = {json.dumps(value)}"
            lines.append(f"{text:<44} # {settings.source_of(f'{section}.{key}')}")
    return "\n".join(lines)


def _check_identity(settings: Settings) -> None:
    """Refuse (ConfigError, 78) when main's policy makes dispatcher.identity an approver.

    Reads the policy through the forge (no clone is made); asks the forge about
    the teams the policy names. A forge that cannot be reached ends the check
    with its own error (exit 75).
    """
    if settings.forge.kind is ForgeKind.LOCAL and settings.forge.path is None:
        return  # load_settings already reported it
    if settings.forge.kind is ForgeKind.FORGEJO and settings.forge.token is None:
        return  # load_settings already reported it
    forge = open_forge(settings)
    try:
        verify_not_approver(forge, settings.dispatcher.identity, settings.forge.branch)
    finally:
        close_forge(forge)


@dispatcher.command("check-config")
@config_option
@click.option(
    "--offline",
    is_flag=True,
    help="Check the settings only: do not read the policy on main nor ask the "
    "forge whether dispatcher.identity is an approver.",
)
@json_option
def check_config(config_path: Path | None, offline: bool, as_json: bool) -> None:
    """Validate the configuration and print the effective settings (the token masked).

    Each value is shown with where it came from: the file, an OPSVAULT_*
    variable, or the default, followed by whether steps would run sandboxed on
    this host. Exit status 78 lists every problem found.

    Unless --offline, it also reads vault/policy.toml on main and refuses
    (exit 78) when dispatcher.identity is listed as an admin, reviewer or bot,
    or is a member of a team the policy names: the dispatcher is never an
    approver (docs/forgejo.md shows how to let it merge without being one).
    """
    settings = load_settings(os.environ, config_path)
    # What `run` would decide about the step sandbox on this host ("required"
    # without a working bwrap exits 78 here too).
    sandbox = sandbox_for(settings, os.environ)
    if not offline:
        _check_identity(settings)
    if as_json:
        echo_json(
            {
                "file": str(settings.file) if settings.file else None,
                "settings": settings_data(settings),
                "sources": dict(settings.sources),
                "sandbox": {"active": sandbox.active, "detail": sandbox.detail},
            }
        )
    else:
        click.echo(_render_settings(settings))
        prefix = "" if sandbox.active else "WARNING: "
        click.echo(f"\n# sandbox: {prefix}{sandbox.detail}")
