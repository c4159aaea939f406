"""What `vault approve`, `reject`, `hold` and `release` share: the operator and the proposal.

A proposal is a branch ``vault/<id>`` (or ``plan/<name>``) of the local ops repo;
the operator is ``--as``, else ``git config opsvault.operator``, else $USER.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import click

from opsvault.cli.options import shown
from opsvault.errors import ConfigError, GitError, OpsvaultError, Problem
from opsvault.forge.local import LocalForge
from opsvault.forge.types import ListState, PullRequest, PullState
from opsvault.git.base import check_repo_path
from opsvault.git.pygit2_repo import Pygit2OpsRepo
from opsvault.layout import PROPOSAL_PREFIX, PROPOSAL_PREFIXES
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


def check_as(as_user: str | None) -> None:
    """An explicit ``--as`` must name someone: an empty one is a usage error (exit 2)."""
    if as_user is not None and not as_user.strip():
        raise click.BadParameter(
            "give a user name, or leave --as out to act as the operator",
            param_hint="--as",
        )


def operator_for(repo: Pygit2OpsRepo, as_user: str | None) -> Operator:
    operator = repo.config_value(OPERATOR_CONFIG) or os.environ.get("USER") or ""
    user = as_user or operator
    if not user:
        raise ConfigError(
            str(repo.path),
            "no operator known",
            f"pass --as USER or run `git config {OPERATOR_CONFIG} NAME` in the ops repo",
        )
    return Operator(user, operator or user)


def branch_for(proposal_id: str) -> str:
    branch = (
        proposal_id
        if proposal_id.startswith(PROPOSAL_PREFIXES)
        else f"{PROPOSAL_PREFIX}{proposal_id}"
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


def find_open(forge: LocalForge, branch: str) -> PullRequest:
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
    from opsvault.dispatcher.state import Role, may_merge, needs_admin

    roles = roles_of(user, proposer, "", policy, forge)
    if may_merge(tier, roles, protected):
        return []
    admins, reviewers = policy.admins.users, policy.reviewers.users
    if Role.PROPOSER in roles:
        return [f"{user!r} proposed this change and cannot approve it"]
    if Role.BOT in roles:
        return [f"{user!r} is a bot ([bots] in vault/policy.toml) and cannot approve"]
    if needs_admin(tier, protected):
        why = "a built-in floor applies" if protected else "the change is high tier"
        return [
            f"{why}: only an admin may approve ({names_of(admins)}); {user!r} is not one"
        ]
    return [
        f"a {tier.label} change needs a reviewer or admin "
        f"({names_of(reviewers | admins)}); {user!r} is neither"
    ]


def names_of(users: frozenset[str]) -> str:
    return ", ".join(sorted(users)) if users else "none in vault/policy.toml"


def verdict_data(verdict: ChangeVerdict) -> dict[str, Any]:
    from opsvault.policy.verdict_data import change_verdict_data

    return change_verdict_data(verdict)


def refusal_lines(verdict: ChangeVerdict) -> list[str]:
    problems: list[tuple[str, Problem]] = [
        (f.path, p) for f in verdict.files for p in f.problems
    ]
    return [
        f"refused ({verdict.tier.label}): it must not be merged by anyone",
        *(shown(p.render(path)) for path, p in problems),
    ]
