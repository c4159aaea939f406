"""`vault approve`: merge a local-mode proposal as the approving user, after the rules a forge enforces."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from opsvault.cli.envelope import emit
from opsvault.cli.options import json_option, ops_option
from opsvault.cli.proposals import (
    ApprovalRefused,
    as_option,
    branch_for,
    config_option,
    eligibility_problems,
    find_open,
    open_session,
    refusal_lines,
    verdict_data,
)


@click.command()
@click.argument("proposal_id", metavar="ID")
@ops_option
@as_option("Approve")
@config_option
@json_option
def approve(
    proposal_id: str,
    ops: Path | None,
    as_user: str | None,
    config_path: Path | None,
    as_json: bool,
) -> None:
    """Approve the local-mode proposal ID: classify branch vault/ID, then merge it into main.

    The change is classified exactly like
    `vault classify --base main --head vault/ID` (policy and formulas from main,
    built-in floors included) and the merge is pinned to the commit that was
    classified: if the branch moves meanwhile, nothing is merged. Refused when
    the change is invalid, when USER proposed it (the author of the branch's
    tip commit) or is a bot, or when USER is not eligible for its tier under
    vault/policy.toml on main: admins for high (and anything behind a built-in
    floor), reviewers or admins for medium and low. Local mode has no teams:
    list approvers under `users`.

    The merge commit is authored by USER; the dispatcher then verifies it and
    fires the action. ID may also be a full branch name (`plan/prereqs`).

    \b
    Examples:
      vault approve rotate-key-20260401-1
      vault approve rotate-key-20260401-1 --as alice --json
    """
    from opsvault.changes import classify_ref_change
    from opsvault.snapshot import CommitSnapshot, load_policy

    session = open_session(ops, as_user, config_path)
    repo, who, forge = session.repo, session.who, session.forge
    branch = branch_for(proposal_id)
    pr = find_open(forge, branch)
    classified = classify_ref_change(repo, forge.base_branch, pr.head_sha)
    verdict = classified.verdict
    data: dict[str, Any] = {
        "proposal": branch,
        "number": pr.number,
        "proposer": pr.author,
        "approver": who.user,
        "head": classified.head_commit,
        **verdict_data(verdict),
    }
    if verdict.refused:
        problems = refusal_lines(verdict)
    else:
        policy = load_policy(CommitSnapshot(repo, classified.base_commit))
        problems = eligibility_problems(
            who.user, pr.author, verdict.tier, verdict.protected, policy, forge
        )
    if problems:
        if as_json:
            emit({**data, "approved": False, "problems": problems}, ok=False)
            raise click.exceptions.Exit(ApprovalRefused.exit_code)
        raise ApprovalRefused(branch, problems)
    # The approval on record is what lets a medium or high merge fire (ADR 0008).
    forge.approve(pr.number, classified.head_commit, "approved with `vault approve`")
    result = forge.merge(pr.number, classified.head_commit)
    if as_json:
        emit(
            {
                **data,
                "approved": True,
                "merge_commit": result.merge_commit_sha,
                "already_merged": result.already_merged,
            }
        )
        return
    click.echo(
        f"approved {branch} (#{pr.number}, proposed by {pr.author}) as {who.user}: "
        f"{verdict.tier.label} tier"
    )
    for reason in verdict.reasons:
        click.echo(f"  {reason.render()}")
    click.echo(f"merged into {forge.base_branch}: {result.merge_commit_sha}")
    click.echo("the dispatcher fires it on its next tick")
