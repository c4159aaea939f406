"""`vault reject`: close a local-mode proposal with a reason; the dispatcher records it."""

from __future__ import annotations

from pathlib import Path

import click

from opsvault.app import open_local, open_repo
from opsvault.cli.options import echo_json, json_option, ops_option, resolve_ops
from opsvault.cli.proposals import (
    OPERATOR_CONFIG,
    branch_for,
    check_as,
    find_open,
    operator_for,
)


@click.command()
@click.argument("proposal_id", metavar="ID")
@click.option(
    "--reason",
    required=True,
    help="Why it is rejected; posted on the proposal and kept in the record.",
)
@ops_option
@click.option(
    "--as",
    "as_user",
    metavar="USER",
    help=f"Reject as USER (default: `git config {OPERATOR_CONFIG}`, else $USER).",
)
@json_option
def reject(
    proposal_id: str,
    reason: str,
    ops: Path | None,
    as_user: str | None,
    as_json: bool,
) -> None:
    """Reject the local-mode proposal ID: close branch vault/ID without merging it.

    The reason is posted as a comment by USER and the branch is deleted (its
    commit stays in the local forge record). The dispatcher records the action
    under vault/rejected/YYYY/MM/pr-N/ on main when it next sees the closed
    proposal, with USER as `approver` and the reason in `detail`. Nothing runs.
    When USER may approve the change (an admin for high, a reviewer or admin
    otherwise), the action id can never be used again; a proposer withdrawing
    their own proposal reserves nothing.

    \b
    Example:
      vault reject rotate-key-20260401-1 --reason "rotate after the release"
    """
    if not reason.strip():
        raise click.BadParameter("give a reason", param_hint="--reason")
    check_as(as_user)
    repo = open_repo(resolve_ops(ops))
    who = operator_for(repo, as_user)
    forge = open_local(repo, who.user, operator=who.operator)
    branch = branch_for(proposal_id)
    pr = find_open(forge, branch)
    # The comment is the rejection: its author and text go into the record (I7).
    closed = forge.reject(pr.number, reason.strip())
    if as_json:
        echo_json(
            {
                "proposal": branch,
                "number": closed.number,
                "rejected_by": who.user,
                "reason": reason,
                "head": closed.head_sha,
                "state": str(closed.state),
            }
        )
        return
    click.echo(f"rejected {branch} (#{closed.number}) as {who.user}: {reason}")
    click.echo("the dispatcher records it under vault/rejected/ on its next tick")
