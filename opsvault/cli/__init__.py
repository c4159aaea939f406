"""The `vault` command (alias `opsvault`).

Subcommands are loaded lazily so that a cold `vault classify` imports only what
it needs (see benchmarks/classify.py).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from opsvault.errors import OpsvaultError

# name -> "module:attribute" of a click command or group.
COMMANDS: dict[str, str] = {
    "validate": "opsvault.cli.validate:validate",
    "classify": "opsvault.cli.classify:classify",
    "request": "opsvault.cli.request:request",
    "formulas": "opsvault.cli.formulas:formulas",
    "policy": "opsvault.cli.policy:policy",
    "init": "opsvault.cli.init:init",
    "demo": "opsvault.cli.demo:demo",
    "dispatcher": "opsvault.cli.dispatch:dispatcher",
    "approve": "opsvault.cli.approve:approve",
    "reject": "opsvault.cli.reject:reject",
    "hold": "opsvault.cli.hold:hold",
    "release": "opsvault.cli.hold:release",
    "plan": "opsvault.cli.plan:plan",
    "status": "opsvault.cli.status:status",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            module_name, attr = COMMANDS[cmd_name].split(":")
            command = getattr(importlib.import_module(module_name), attr)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        # Expected failures print one line and exit with their own code, here rather
        # than in main() so that every way of invoking the group behaves the same.
        try:
            return super().invoke(ctx)
        except OpsvaultError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="opsvault")
def cli() -> None:
    """opsvault: a GitOps vault and policy engine.

    Agents propose actions as TOML files in pull requests to an ops repo; a
    deterministic classifier assigns each change a blast-radius tier from the
    ops repo's vault/policy.toml; the dispatcher acts on the tier.

    Exit codes: 0 ok, 1 invalid or refused, 2 usage, 3 internal error,
    75 forge unavailable (retry later), 78 bad configuration.
    """


def main(argv: list[str] | None = None) -> Any:
    """Run the CLI; map OpsvaultError to its exit code, anything else to 3."""
    try:
        return cli.main(args=argv, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted!", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception:
        import traceback  # only on the error path: keeps cold start small

        traceback.print_exc()
        click.echo(
            "Error: internal error (a bug in opsvault); please report it", err=True
        )
        sys.exit(3)
