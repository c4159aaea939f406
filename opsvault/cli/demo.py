"""`vault demo`: the quick start's main job on the embedded default (local mode, no forge).

The first run creates a local ops repo from the template in ``DIR/ops`` and
proposes the sample actions shipped with opsvault as branches ``vault/<id>``
(exactly what an agent does in local mode). Every run then starts the real
dispatcher service on it, in the foreground, printing each tick's decisions:
low tier is merged and fired, medium and high wait for ``vault approve``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from opsvault.cli.options import echo_json, json_option
from opsvault.git.base import Identity
from opsvault.layout import (
    DEFAULT_BRANCH,
    POLICY,
    action_path,
    branch_ref,
    proposal_branch,
)

if TYPE_CHECKING:
    from opsvault.app import App
    from opsvault.dispatcher.service import TickFunction
    from opsvault.web.service import ServiceSurface

PROPOSER = Identity("demo-agent", "demo-agent@localhost")
OPERATOR = "alice"  # an admin in the template's policy
DEMO_PORT = 8470


def propose(repo: Any, action_id: str, content: bytes, when: int | None = None) -> str:
    """Commit *content* as vault/actions/<id>.toml on a new branch vault/<id> off main; return its commit."""
    main = repo.resolve(branch_ref(DEFAULT_BRANCH))
    commit = repo.commit_files(
        main,
        {action_path(action_id): content},
        f"propose {action_id}",
        PROPOSER,
        when=when,
    )
    repo.update_ref(branch_ref(proposal_branch(action_id)), commit, None)
    return str(commit)


def create_demo(ops: Path) -> list[dict[str, Any]]:
    """Create the demo ops repo at *ops*, propose every sample, and return each verdict."""
    from opsvault._resources import data_dir
    from opsvault.app import open_repo
    from opsvault.changes import classify_ref_change
    from opsvault.cli.init import create_ops_repo
    from opsvault.policy.verdict_data import change_verdict_data

    create_ops_repo(ops)
    repo = open_repo(ops)
    results = []
    for sample in sorted(data_dir("examples").joinpath("proposals").glob("*.toml")):
        action_id = sample.stem
        propose(repo, action_id, sample.read_bytes())
        verdict = classify_ref_change(
            repo, DEFAULT_BRANCH, proposal_branch(action_id)
        ).verdict
        results.append({"proposal": action_id, **change_verdict_data(verdict)})
    return results


def demo_config(directory: Path, interval: str) -> Path:
    """Write the demo's local-mode dispatcher config and return its path."""
    config = directory / "dispatcher.toml"
    config.write_text(
        "# The demo's dispatcher: local mode, no forge. See examples/dispatcher.toml.\n"
        f'[forge]\nkind = "local"\npath = "{(directory / "ops").resolve()}"\noperator = "{OPERATOR}"\n'
        f'[dispatcher]\nidentity = "vault-bot"\ninterval = "{interval}"\n'
        f'state_dir = "{(directory / "state").resolve()}"\n'
    )
    return config


def _show_proposals(results: list[dict[str, Any]]) -> None:
    for r in results:
        headline = (
            f"REFUSED (would be {r['tier']})" if r["refused"] else r["tier"].upper()
        )
        flags = "  [admin only: built-in floor]" if r["protected"] else ""
        click.echo(f"proposal vault/{r['proposal']}: {headline}{flags}")
        for f in r["files"]:
            for reason in f["reasons"]:
                click.echo(f"    {reason['tier']}: {reason['detail']}")
            for p in f["problems"]:
                click.echo(f"    problem: {f['path']}: {p['path']}: {p['message']}")


def _tick() -> TickFunction:
    from opsvault.dispatcher.tick import tick

    return tick


def _serve_page(app: App, port: int, as_json: bool) -> ServiceSurface:
    """Serve the demo's status page (another port when *port* is taken); print its URL."""
    from opsvault.errors import ConfigError
    from opsvault.web.service import ServiceSurface

    surface = ServiceSurface(app)
    surface.instrument()
    try:
        server = surface.serve("127.0.0.1", port)
    except ConfigError:
        server = surface.serve("127.0.0.1", 0)
    message = f"status page: {server.url}"
    click.echo(message, err=as_json)  # --json keeps stdout one JSON document
    return surface


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo"),
    show_default=True,
    help="Where the demo lives: DIR/ops (the ops repo), DIR/state, DIR/dispatcher.toml. Created on the first run, reused after.",
)
@click.option(
    "--once",
    is_flag=True,
    help="Run one tick and exit (non-interactive; what the tests run).",
)
@click.option(
    "--interval",
    default="5s",
    show_default=True,
    help="Time between ticks of the demo dispatcher.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEMO_PORT,
    show_default=True,
    help="Serve the status page on 127.0.0.1:PORT (0, or the port taken: any free port). Not with --once.",
)
@json_option
def demo(directory: Path, once: bool, interval: str, port: int, as_json: bool) -> None:
    """Run opsvault for real on a local demo ops repo: no forge, no server.

    The first run creates DIR/ops from the template and proposes the sample
    actions (low, medium, high, a human request, one trying to lower its own
    tier, one refused). Then the dispatcher service runs in the foreground:
    it merges and fires low tier, and the others wait for an approval, which
    you give from a second terminal:

    \b
      .venv/bin/vault approve rotate-dns-key-20261121-1 --ops demo/ops --as alice
      .venv/bin/vault reject purge-cache-20261121-1 --reason "not now" --ops demo/ops --as alice
      .venv/bin/vault status --ops demo/ops

    Stop it with Ctrl-C.
    """
    from opsvault.app import build_app
    from opsvault.cli.dispatch import _printer
    from opsvault.config import load_settings
    from opsvault.dispatcher.report import report_data
    from opsvault.dispatcher.service import run_service

    ops = directory / "ops"
    created: list[dict[str, Any]] = []
    if not (ops / POLICY).is_file():
        directory.mkdir(parents=True, exist_ok=True)
        created = create_demo(ops)
    config = demo_config(directory, interval)
    settings = load_settings(
        {k: v for k, v in os.environ.items() if not k.startswith("OPSVAULT_")}, config
    )
    from opsvault.cli.dispatch import announce_sandbox
    from opsvault.dispatcher.sandbox import sandbox_for

    sandbox = sandbox_for(settings, os.environ)
    announce_sandbox(sandbox)
    app = build_app(settings, {}, sandbox=sandbox)
    if not as_json:
        click.echo(
            f"ops repo: {ops} ({'created' if created else 'reused'}; policy: vault/policy.toml on main)"
        )
        _show_proposals(created)
        click.echo(
            f"\nIn a second terminal: .venv/bin/vault approve rotate-dns-key-20261121-1 --ops {ops} --as {OPERATOR}"
        )
        click.echo(
            f"Then watch the next tick record it; `.venv/bin/vault status --ops {ops}` shows the state.\n"
        )
    reports: list[Any] = []
    surface = None if once else _serve_page(app, port, as_json)
    try:
        run_service(
            app,
            settings.dispatcher.interval,
            once=once,
            on_report=(reports.append if as_json else _printer(False, lines=True)),
            tick=None if surface is None else surface.wrap(_tick()),
        )
    finally:
        if surface is not None and surface.server is not None:
            surface.server.close()
        app.forge.close()
    if as_json:
        echo_json(
            {
                "ops_repo": str(ops),
                "proposals": created,
                "ticks": [report_data(r) for r in reports],
            }
        )
