"""`vault approve` and `vault reject`: the operator's side of local mode (no forge).

A proposal is a branch ``vault/<id>`` (or ``plan/<name>``) of the local ops repo.
Approving merges it into main through ``LocalForge`` as the approving user, after
the same classification and eligibility rules a forge would enforce; rejecting
closes it with the reason as a comment. The dispatcher records either outcome.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from opsvault.cli.options import echo_json, json_option, ops_option, resolve_ops, shown
from opsvault.errors import ConfigError, GitError, OpsvaultError, Problem
from opsvault.forge.local import PROPOSAL_PREFIXES, LocalForge
from opsvault.forge.types import ListState, PullRequest, PullState
from opsvault.git.base import check_repo_path
from opsvault.git.local import Pygit2OpsRepo
from opsvault.policy.classify import ChangeVerdict
from opsvault.policy.model import Policy
from opsvault.ports import Forge
from opsvault.vault.tier import Tier

OPERATOR_CONFIG = "opsvault.operator"


class UnknownProposal(OpsvaultError):
    """No open proposal has the branch asked for."""

    def __init__(self, branch: str, state: str, open_branches: Sequence[str]) -> None:
        self.branch = branch
        self.state = state
        self.open_branches = tuple(open_branches)
        listing = (
            ", ".join(self.open_branches) if self.open_branches else "there are none"
        )
        super().__init__(f"{branch}: {state}; open proposals: {listing}")


class ApprovalRefused(OpsvaultError):
    """The proposal or the approver does not meet the rules; nothing was merged."""

    def __init__(self, branch: str, problems: Sequence[str]) -> None:
        self.branch = branch
        self.problems = tuple(problems)
        super().__init__("\n".join(f"{branch}: {p}" for p in self.problems))


@dataclass(frozen=True, slots=True)
class Operator:
    """Who runs the command (``user``) and who the local operator is."""

    user: str
    operator: str


def _check_as(as_user: str | None) -> None:
    """An explicit ``--as`` must name someone: an empty one is a usage error (exit 2)."""
    if as_user is not None and not as_user.strip():
        raise click.BadParameter(
            "give a user name, or leave --as out to act as the operator",
            param_hint="--as",
        )


def _operator(repo: Pygit2OpsRepo, as_user: str | None) -> Operator:
    operator = repo.config_value(OPERATOR_CONFIG) or os.environ.get("USER") or ""
    user = as_user or operator
    if not user:
        raise ConfigError(
            str(repo.path),
            "no operator known",
            f"pass --as USER or run `git config {OPERATOR_CONFIG} NAME` in the ops repo",
        )
    return Operator(user, operator or user)


def _branch_for(proposal_id: str) -> str:
    branch = (
        proposal_id
        if proposal_id.startswith(PROPOSAL_PREFIXES)
        else f"vault/{proposal_id}"
    )
    # A name, checked before anything is looked up or built from it (I4).
    try:
        check_repo_path(branch)
    except GitError as exc:
        raise click.BadParameter(
            f"{proposal_id!r} is not a proposal id or branch: {exc.problem}",
            param_hint="ID",
        ) from exc
    if "/-" in branch:
        raise click.BadParameter(
            f"{proposal_id!r} is not a proposal id or branch", param_hint="ID"
        )
    return branch


def _find_open(forge: LocalForge, branch: str) -> PullRequest:
    every = forge.fetch_pull_requests(ListState.ALL)
    open_branches = sorted(p.head_ref for p in every if p.state is PullState.OPEN)
    mine = [p for p in every if p.head_ref == branch]  # newest first
    for pr in mine:
        if pr.state is PullState.OPEN:
            return pr
    if mine:
        last = mine[0]
        state = (
            f"already merged (PR #{last.number}, by {last.merged_by!r})"
            if last.merged
            else f"closed without merge (PR #{last.number})"
        )
    else:
        state = "no such proposal"
    raise UnknownProposal(branch, state, open_branches)


def eligibility_problems(
    user: str, proposer: str, tier: Tier, protected: bool, policy: Policy, forge: Forge
) -> list[str]:
    """Return why *user* may not approve a change of *tier* under *policy* ([] if they may).

    The decision is the dispatcher's own rule (``dispatcher.state.may_merge``
    over ``provenance.roles_of``), so an approval given here is exactly one the
    dispatcher accepts at fire time; this function only explains a refusal.
    """
    from opsvault.dispatcher.provenance import roles_of
    from opsvault.dispatcher.state import Role, may_merge

    roles = roles_of(user, proposer, "", policy, forge)
    if may_merge(tier, roles, protected):
        return []
    admins, reviewers = policy.admins.users, policy.reviewers.users
    if Role.PROPOSER in roles:
        return [f"{user!r} proposed this change and cannot approve it"]
    if Role.BOT in roles:
        return [f"{user!r} is a bot ([bots] in vault/policy.toml) and cannot approve"]
    if tier is Tier.HIGH or protected:
        why = "a built-in floor applies" if protected else "the change is high tier"
        return [
            f"{why}: only an admin may approve ({_names(admins)}); {user!r} is not one"
        ]
    return [
        f"a {tier.label} change needs a reviewer or admin "
        f"({_names(reviewers | admins)}); {user!r} is neither"
    ]


def _names(users: frozenset[str]) -> str:
    return ", ".join(sorted(users)) if users else "none in vault/policy.toml"


def _verdict_data(verdict: ChangeVerdict) -> dict[str, Any]:
    from opsvault.report import change_verdict_data

    return change_verdict_data(verdict)


def _refusal_lines(verdict: ChangeVerdict) -> list[str]:
    problems: list[tuple[str, Problem]] = [
        (f.path, p) for f in verdict.files for p in f.problems
    ]
    return [
        f"refused ({verdict.tier.label}): it must not be merged by anyone",
        *(shown(p.render(path)) for path, p in problems),
    ]


@click.command()
@click.argument("proposal_id", metavar="ID")
@ops_option
@click.option(
    "--as",
    "as_user",
    metavar="USER",
    help=f"Approve as USER (default: `git config {OPERATOR_CONFIG}`, else $USER).",
)
@json_option
def approve(
    proposal_id: str, ops: Path | None, as_user: str | None, as_json: bool
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

    _check_as(as_user)
    repo = Pygit2OpsRepo.open(resolve_ops(ops))
    who = _operator(repo, as_user)
    forge = LocalForge(repo, who.user, operator=who.operator)
    branch = _branch_for(proposal_id)
    pr = _find_open(forge, branch)
    classified = classify_ref_change(repo, "main", pr.head_sha)
    verdict = classified.verdict
    data: dict[str, Any] = {
        "proposal": branch,
        "number": pr.number,
        "proposer": pr.author,
        "approver": who.user,
        "head": classified.head_commit,
        **_verdict_data(verdict),
    }
    if verdict.refused:
        problems = _refusal_lines(verdict)
    else:
        policy = load_policy(CommitSnapshot(repo, classified.base_commit))
        problems = eligibility_problems(
            who.user, pr.author, verdict.tier, verdict.protected, policy, forge
        )
    if problems:
        if as_json:
            echo_json({**data, "approved": False, "problems": problems})
        raise ApprovalRefused(branch, problems)
    # The approval on record is what lets a medium or high merge fire (ADR 0008).
    forge.approve(pr.number, classified.head_commit, "approved with `vault approve`")
    result = forge.merge(pr.number, classified.head_commit)
    if as_json:
        echo_json(
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
    click.echo(f"merged into main: {result.merge_commit_sha}")
    click.echo("the dispatcher fires it on its next tick")


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
    _check_as(as_user)
    repo = Pygit2OpsRepo.open(resolve_ops(ops))
    who = _operator(repo, as_user)
    forge = LocalForge(repo, who.user, operator=who.operator)
    branch = _branch_for(proposal_id)
    pr = _find_open(forge, branch)
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
