"""`vault reject`: close a local-mode proposal with a reason; the dispatcher records it."""

from __future__ import annotations

from pathlib import Path

import click

from opsvault.cli.envelope import emit
from opsvault.cli.options import json_option, ops_option
from opsvault.cli.proposals import (
    LocalSession,
    as_option,
    branch_for,
    config_option,
    eligibility_problems,
    find_open,
    open_session,
)
from opsvault.forge.types import PullRequest


@click.command()
@click.argument("proposal_id", metavar="ID")
@click.option(
    "--reason",
    required=True,
    help="Why it is rejected; posted on the proposal and kept in the record.",
)
@ops_option
@as_option("Reject")
@config_option
@json_option
def reject(
    proposal_id: str,
    reason: str,
    ops: Path | None,
    as_user: str | None,
    config_path: Path | None,
    as_json: bool,
) -> None:
    """Reject the local-mode proposal ID: close branch vault/ID without merging it.

    The reason is posted as a comment by USER and the branch is deleted (its
    commit stays in the local forge record). The dispatcher records the action
    under vault/rejected/YYYY/MM/pr-N/ on main when it next sees the closed
    proposal, with USER as `approver` and the reason in `detail`. Nothing runs.

    Who may reject: anyone who may write the ops repo, as on a forge anyone
    with write access may close a pull request (`--as` names, it does not
    authenticate). What a rejection means depends on who gave it: by a user
    who may approve the change (an admin for high, a reviewer or admin
    otherwise) the action id can never be used again; by its proposer it is a
    withdrawal; by anyone else it only closes the proposal, reserves nothing,
    and the command says so.

    \b
    Example:
      vault reject rotate-key-20260401-1 --reason "rotate after the release"
    """
    if not reason.strip():
        raise click.BadParameter("give a reason", param_hint="--reason")
    session = open_session(ops, as_user, config_path)
    who, forge = session.who, session.forge
    branch = branch_for(proposal_id)
    pr = find_open(forge, branch)
    standing, note = _standing(session, pr)
    # The comment is the rejection: its author and text go into the record (I7).
    closed = forge.reject(pr.number, reason.strip())
    if as_json:
        emit(
            {
                "proposal": branch,
                "number": closed.number,
                "rejected_by": who.user,
                "reason": reason,
                "head": closed.head_sha,
                "state": str(closed.state),
                "standing": standing,
                "reserves_id": standing == "approver",
            }
        )
        return
    click.echo(f"rejected {branch} (#{closed.number}) as {who.user}: {reason}")
    if note:
        click.echo(f"note: {note}", err=True)
    click.echo("the dispatcher records it under vault/rejected/ on its next tick")


def _standing(session: LocalSession, pr: PullRequest) -> tuple[str, str]:
    """Return who *session*'s user is to *pr* — approver, proposer or other — and a note.

    The same rule as the dispatcher's record (dispatcher/rejection.py): only a
    rejection by someone eligible to approve reserves the ids.
    """
    from opsvault.changes import classify_ref_change
    from opsvault.errors import OpsvaultError
    from opsvault.forge.logins import same_login
    from opsvault.snapshot import CommitSnapshot, load_policy

    user = session.who.user
    if same_login(user, pr.author):
        return "proposer", "a withdrawal by its proposer: the id stays free"
    try:
        classified = classify_ref_change(
            session.repo, session.forge.base_branch, pr.head_sha
        )
        tier, protected = classified.verdict.tier, classified.verdict.protected
        policy = load_policy(CommitSnapshot(session.repo, classified.base_commit))
    except OpsvaultError:
        return (
            "other",
            f"{user!r}'s eligibility is unknown (the change does not classify)",
        )
    problems = eligibility_problems(
        user, pr.author, tier, protected, policy, session.forge
    )
    if not problems:
        return "approver", ""
    return "other", (
        f"{problems[0]}: this rejection closes the proposal but reserves nothing"
    )
