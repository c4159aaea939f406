"""The `vault` command (alias `opsvault`).

Subcommands are loaded lazily: a command's module is imported only when that
command runs, so a cold `vault classify` imports only what it needs (see
benchmarks/classify.py), and `vault --help` lists every command from the
summaries in COMMANDS without importing any of them.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from opsvault.cli.envelope import (
    current_command,
    dumps,
    error_envelope,
    wants_json,
)
from opsvault.errors import OpsvaultError

# name -> ("module:attribute" of a click command or group, its summary). The
# summary is the first sentence of the command's help, which `vault --help`
# lists without importing the command (tests/cli/test_commands.py keeps the two
# equal).
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": (
        "opsvault.cli.validate:validate",
        "Validate action, formula, policy and policy-test files (or every *.toml below a directory).",
    ),
    "classify": (
        "opsvault.cli.classify:classify",
        "Print the blast-radius tier of action files, or of a whole git change.",
    ),
    "request": (
        "opsvault.cli.request:request",
        "Write a new, valid action file into vault/actions/ of the ops repo's working tree.",
    ),
    "formulas": (
        "opsvault.cli.formulas:formulas",
        "List the formulas actions can name: built-in ones and the ops repo's own.",
    ),
    "policy": (
        "opsvault.cli.policy:policy",
        "Check, compare and test vault/policy.toml.",
    ),
    "init": (
        "opsvault.cli.init:init",
        "Create an ops repo in DIRECTORY from the opsvault template, as a git repo on `main`.",
    ),
    "demo": (
        "opsvault.cli.demo:demo",
        "Run opsvault for real on a local demo ops repo: no forge, no server.",
    ),
    "dispatcher": (
        "opsvault.cli.dispatch:dispatcher",
        "Run the dispatcher, or check its configuration.",
    ),
    "approve": (
        "opsvault.cli.approve:approve",
        "Approve the local-mode proposal ID: classify branch vault/ID, then merge it into main.",
    ),
    "reject": (
        "opsvault.cli.reject:reject",
        "Reject the local-mode proposal ID: close branch vault/ID without merging it.",
    ),
    "hold": (
        "opsvault.cli.hold:hold",
        "Hold the local-mode proposal ID: the dispatcher does not merge it.",
    ),
    "release": (
        "opsvault.cli.hold:release",
        "Lift the hold on the local-mode proposal ID (reviewers and admins only).",
    ),
    "plan": (
        "opsvault.cli.plan:plan",
        "Keep prerequisites.md true to the vault and issues: tick boxes, clear markers, fix statuses.",
    ),
    "status": (
        "opsvault.cli.status:status",
        "Show what the vault is doing: HALT, waiting, running, recent results, proposals.",
    ),
    "audit": (
        "opsvault.cli.audit:audit",
        "Check the vault's own record: the record chain and every decision in it.",
    ),
    "doctor": (
        "opsvault.cli.doctor:doctor",
        "Check that the forge still enforces what the vault relies on; print a fix for each finding.",
    ),
}


class SuggestingGroup(click.Group):
    """A group that answers a mistyped subcommand with the nearest ones ("did you mean")."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if (
            name
            and not name.startswith("-")
            and self.get_command(ctx, name) is None
            and not ctx.resilient_parsing  # shell completion asks quietly
        ):
            import difflib

            known = self.list_commands(ctx)
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
            close += [c for c in known if c.startswith(name) and c not in close]
            hint = (
                f" Did you mean {' or '.join(repr(c) for c in close[:3])}?"
                if close
                else f" Commands: {', '.join(known)}."
            )
            raise click.UsageError(f"No such command {name!r}.{hint}", ctx)
        return super().resolve_command(ctx, args)


class LazyGroup(SuggestingGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            module_name, attr = COMMANDS[cmd_name][0].split(":")
            command = getattr(importlib.import_module(module_name), attr)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(
        self, ctx: click.Context, formatter: click.HelpFormatter
    ) -> None:
        """List the commands as click does, from COMMANDS' summaries: importing none of them."""
        commands = [
            (
                name,
                click.Command(name, help=COMMANDS[name][1])
                if name in COMMANDS
                else self.get_command(ctx, name),
            )
            for name in self.list_commands(ctx)
        ]
        shown = [(n, c) for n, c in commands if c is not None and not c.hidden]
        if shown:
            limit = formatter.width - 6 - max(len(name) for name, _ in shown)
            with formatter.section("Commands"):
                formatter.write_dl([(n, c.get_short_help_str(limit)) for n, c in shown])

    def invoke(self, ctx: click.Context) -> Any:
        # Expected failures print one line and exit with their own code, here rather
        # than in main() so that every way of invoking the group behaves the same.
        try:
            return super().invoke(ctx)
        except OpsvaultError as exc:
            if wants_json(ctx):
                click.echo(dumps(error_envelope(current_command(), exc, exc.exit_code)))
            else:
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


def _json_asked(args: list[str]) -> bool:
    return "--json" in args[: args.index("--")] if "--" in args else "--json" in args


def _command_of(args: list[str]) -> str:
    """The subcommand path named by *args*, for errors raised before it ran."""
    words = [a for a in args if not a.startswith("-")]
    if words and words[0] in COMMANDS:
        group = cli.get_command(click.Context(cli), words[0])
        if (
            isinstance(group, click.Group)
            and len(words) > 1
            and words[1] in group.list_commands(click.Context(group))
        ):
            return f"{words[0]} {words[1]}"
        return words[0]
    return ""


def _fail_json(args: list[str], exc: BaseException, code: int) -> None:
    click.echo(dumps(error_envelope(_command_of(args), exc, code)))


def main(argv: list[str] | None = None) -> Any:
    """Run the CLI; map OpsvaultError to its exit code, anything else to 3.

    With ``--json`` every failure below is printed as the JSON error envelope
    on stdout as well (usage errors included), so scripts always get JSON.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return cli.main(args=args, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted!", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        if _json_asked(args):
            _fail_json(args, exc, exc.exit_code)
        else:
            exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        import traceback  # only on the error path: keeps cold start small

        traceback.print_exc()
        click.echo(
            "Error: internal error (a bug in opsvault); please report it", err=True
        )
        if _json_asked(args):
            _fail_json(args, exc, 3)
        sys.exit(3)
