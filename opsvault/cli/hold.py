"""`vault hold` and `vault release`: the reviewer's veto in local mode.

They post the ``/vault hold`` or ``/vault release`` command on the proposal as
the given user, exactly what a reviewer writes in a Forgejo pull request; the
dispatcher decides on its next tick whether that user may hold or release
(reviewers and admins eligible for the tier), and answers in the proposal's
living comment (docs/lifecycle.md "Holds and `/vault` commands").
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from opsvault.app import open_local, open_repo
from opsvault.cli.options import echo_json, json_option, ops_option, resolve_ops
from opsvault.cli.proposals import OPERATOR_CONFIG, branch_for, find_open, operator_for

FC = TypeVar("FC", bound=Callable[..., Any])


def _as_option(verb: str) -> Callable[[FC], FC]:
    return click.option(
        "--as",
        "as_user",
        metavar="USER",
        help=f"{verb} as USER (default: `git config {OPERATOR_CONFIG}`, else $USER).",
    )


def _post(
    command: str, proposal_id: str, ops: Path | None, as_user: str | None, note: str
) -> dict[str, object]:
    if as_user is not None and not as_user.strip():
        raise click.BadParameter("give a user name", param_hint="--as")
    repo = open_repo(resolve_ops(ops))
    who = operator_for(repo, as_user)
    forge = open_local(repo, who.user, operator=who.operator)
    branch = branch_for(proposal_id)
    pr = find_open(forge, branch)
    body = f"/vault {command}" + (f"\n\n{note}" if note else "")
    comment = forge.create_comment(pr.number, body)
    return {
        "proposal": branch,
        "number": pr.number,
        "command": command,
        "user": who.user,
        "comment": comment.id,
    }


@click.command()
@click.argument("proposal_id", metavar="ID")
@click.option("--note", default="", help="Text posted below the command.")
@ops_option
@_as_option("Hold")
@json_option
def hold(
    proposal_id: str, note: str, ops: Path | None, as_user: str | None, as_json: bool
) -> None:
    """Hold the local-mode proposal ID: the dispatcher does not merge it.

    Only a reviewer or admin eligible for its tier may hold or release; anyone
    else's command is refused on the proposal. A hold is lifted only by
    `vault release` from an eligible user, whoever placed it.

    \b
    Example:
      vault hold deploy-web-3 --as bob --note "wait for the freeze to end"
    """
    data = _post("hold", proposal_id, ops, as_user, note)
    if as_json:
        echo_json(data)
        return
    click.echo(
        f"asked to hold {data['proposal']} (#{data['number']}) as {data['user']}"
    )
    click.echo("the dispatcher answers on the proposal on its next tick")


@click.command()
@click.argument("proposal_id", metavar="ID")
@ops_option
@_as_option("Release")
@json_option
def release(
    proposal_id: str, ops: Path | None, as_user: str | None, as_json: bool
) -> None:
    """Lift the hold on the local-mode proposal ID (reviewers and admins only).

    \b
    Example:
      vault release deploy-web-3 --as bob
    """
    data = _post("release", proposal_id, ops, as_user, "")
    if as_json:
        echo_json(data)
        return
    click.echo(
        f"asked to release {data['proposal']} (#{data['number']}) as {data['user']}"
    )
    click.echo("the dispatcher answers on the proposal on its next tick")
