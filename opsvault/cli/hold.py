"""`vault hold` and `vault release`: the reviewer's veto in local mode.

They post the ``/vault hold`` or ``/vault release`` command on the proposal as
the given user, exactly what a reviewer writes in a Forgejo pull request; the
dispatcher decides on its next tick whether that user may hold or release
(reviewers and admins eligible for the tier), and answers in the proposal's
living comment (docs/lifecycle.md "Holds and `/vault` commands").
"""

from __future__ import annotations

from pathlib import Path

import click

from opsvault.cli.envelope import emit
from opsvault.cli.options import json_option, ops_option
from opsvault.cli.proposals import (
    as_option,
    branch_for,
    config_option,
    find_open,
    open_session,
)


def _post(
    command: str,
    proposal_id: str,
    ops: Path | None,
    as_user: str | None,
    note: str,
    config_path: Path | None,
) -> dict[str, object]:
    session = open_session(ops, as_user, config_path)
    who, forge = session.who, session.forge
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
@as_option("Hold")
@config_option
@json_option
def hold(
    proposal_id: str,
    note: str,
    ops: Path | None,
    as_user: str | None,
    config_path: Path | None,
    as_json: bool,
) -> None:
    """Hold the local-mode proposal ID: the dispatcher does not merge it.

    Only a reviewer or admin eligible for its tier may hold or release; anyone
    else's command is refused on the proposal. A hold is lifted only by
    `vault release` from an eligible user, whoever placed it.

    \b
    Example:
      vault hold deploy-web-3 --as bob --note "wait for the freeze to end"
    """
    data = _post("hold", proposal_id, ops, as_user, note, config_path)
    if as_json:
        emit(data)
        return
    click.echo(
        f"asked to hold {data['proposal']} (#{data['number']}) as {data['user']}"
    )
    click.echo("the dispatcher answers on the proposal on its next tick")


@click.command()
@click.argument("proposal_id", metavar="ID")
@ops_option
@as_option("Release")
@config_option
@json_option
def release(
    proposal_id: str,
    ops: Path | None,
    as_user: str | None,
    config_path: Path | None,
    as_json: bool,
) -> None:
    """Lift the hold on the local-mode proposal ID (reviewers and admins only).

    \b
    Example:
      vault release deploy-web-3 --as bob
    """
    data = _post("release", proposal_id, ops, as_user, "", config_path)
    if as_json:
        emit(data)
        return
    click.echo(
        f"asked to release {data['proposal']} (#{data['number']}) as {data['user']}"
    )
    click.echo("the dispatcher answers on the proposal on its next tick")
