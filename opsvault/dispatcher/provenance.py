"""How did an action file reach main? Gather the facts ``state.verify_merge`` judges.

Walks main's first-parent history back to the commit that introduced the file
(bounded: actions fire soon after they are merged), finds the pull request that
merge belongs to, re-classifies the merged change against the policy at the
merge's base, and resolves the merger's roles from that policy.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import timedelta

from opsvault.changes import classify_landed
from opsvault.dispatcher.hold import derive_hold
from opsvault.dispatcher.integrity import MergeMismatch, check_merge
from opsvault.dispatcher.reasons import ReasonCode
from opsvault.dispatcher.state import MergeFacts, Role, may_merge
from opsvault.forge.logins import login_in, login_key, same_login
from opsvault.forge.types import ListState, PullRequest, ReviewState
from opsvault.git.base import OpsRepo
from opsvault.git.treediff import TreeLimitError
from opsvault.policy.change import ChangeKind
from opsvault.policy.classify import BaseState, ChangeVerdict
from opsvault.policy.model import Policy, Principals
from opsvault.ports import Forge
from opsvault.snapshot import CommitSnapshot, load_base_state
from opsvault.vault.tier import Tier

MAX_WALK = 500  # first-parent commits searched for the one that introduced an action


@dataclass(frozen=True, slots=True)
class Provenance:
    introduced_by: str  # the merge commit
    base_commit: str  # its first parent: where policy and formulas are read
    head_commit: str  # its second parent: the merged PR head
    pull: PullRequest
    verdict: ChangeVerdict
    base: BaseState
    facts: MergeFacts


def introducing_commit(
    repo: OpsRepo, main: str, path: str, limit: int = MAX_WALK
) -> str | None:
    """Return the first-parent commit of *main* that added *path*, or None past *limit*."""
    commit = main
    for _ in range(limit):
        parents = repo.commit_info(commit).parents
        if not parents or repo.blob_id(parents[0], path) is None:
            return commit
        commit = parents[0]
    return None


def introducing_commits(
    repo: OpsRepo, main: str, paths: Collection[str], limit: int = MAX_WALK
) -> dict[str, str]:
    """Return, for each of *paths* on *main*, the first-parent commit that added it.

    One walk for all paths, each step costing the diff of one commit against its
    first parent, so a tick with many waiting actions does not walk history once
    per action. Paths not found within *limit* commits are absent from the result.
    """
    remaining = set(paths)
    found: dict[str, str] = {}
    commit = main
    for _ in range(limit):
        if not remaining:
            break
        parents = repo.commit_info(commit).parents
        if not parents:
            found.update(dict.fromkeys(remaining, commit))
            break
        try:
            changes = repo.changed_files(parents[0], commit)
        except TreeLimitError:
            # Too big to diff within the I5 bounds: the remaining paths stay
            # without an introduction (provenance-unknown, fail closed).
            break
        added = {c.path for c in changes if c.kind is not ChangeKind.DELETED}
        for path in remaining & added:
            if repo.blob_id(parents[0], path) is None:
                found[path] = commit
        remaining -= set(found)
        commit = parents[0]
    return found


def in_principals(user: str, principals: Principals, forge: Forge) -> bool:
    if login_in(user, principals.users):  # forge logins ignore case (G-5)
        return True
    return any(forge.is_team_member(team, user) for team in sorted(principals.teams))


def roles_of(
    user: str,
    proposer: str,
    identity: str,
    policy: Policy,
    forge: Forge,
    contributors: frozenset[str] = frozenset(),
) -> frozenset[Role]:
    """Return what *user* is under *policy* when merging a change proposed by *proposer*.

    *contributors* are the (lower-case) names of everyone who authored or
    committed a commit of the change: they count as proposers too.

    The dispatcher identity is never an approver (invariant I2): whatever the
    policy lists or the forge's teams say, it holds no admin or reviewer role,
    so its own merges count only where ``state.verify_merge`` lets the
    dispatcher merge (``merge = "auto"``, a medium veto window).
    """
    roles: set[Role] = set()
    if same_login(user, proposer) or login_key(user) in contributors:
        roles.add(Role.PROPOSER)
    if in_principals(user, policy.bots, forge):
        roles.add(Role.BOT)
    if same_login(user, identity):  # forge logins ignore case
        roles.add(Role.DISPATCHER)
        return frozenset(roles)
    if in_principals(user, policy.admins, forge):
        roles.add(Role.ADMIN)
    if in_principals(user, policy.reviewers, forge):
        roles.add(Role.REVIEWER)
    return frozenset(roles)


MAX_CONTRIBUTOR_COMMITS = 500


def contributors(repo: OpsRepo, base_commit: str, head_commit: str) -> frozenset[str]:
    """Return who wrote the commits *head_commit* brings over *base_commit*, lower-cased.

    Each author and committer counts by name and by the local part of the
    e-mail address, so a reviewer who pushed onto someone else's pull request
    cannot approve it (security review SR-2). Git identities are not
    authenticated: this is defence in depth behind branch protection, which
    should keep others from pushing to a proposer's branch (docs/forgejo.md).
    """
    names: set[str] = set()
    pending: list[str] = [head_commit]
    seen: set[str] = set()
    while pending and len(seen) < MAX_CONTRIBUTOR_COMMITS:
        commit = pending.pop()
        if commit in seen or repo.is_ancestor(commit, base_commit):
            continue
        seen.add(commit)
        info = repo.commit_info(commit)
        for who in (info.author, info.committer):
            names.add(login_key(who.name))
            names.add(login_key(who.email.split("@", 1)[0]))
        pending.extend(info.parents)
    return frozenset(names)


def eligible_users(
    users: set[str],
    pr: PullRequest,
    verdict: ChangeVerdict,
    policy: Policy,
    identity: str,
    forge: Forge,
    authors: frozenset[str],
) -> frozenset[str]:
    """Return which of *users* may place and lift a hold on *pr* (reviewers/admins of its tier)."""
    tier = max(verdict.tier, Tier.MEDIUM)  # on low, the medium rules answer
    eligible = set()
    for user in users:
        roles = roles_of(user, pr.author, identity, policy, forge, authors)
        if Role.DISPATCHER in roles:
            continue  # the dispatcher never lifts a veto (I2, I3)
        if may_merge(tier, roles, verdict.protected):
            eligible.add(user)
    return frozenset(eligible)


def held_when_merged(
    forge: Forge,
    repo: OpsRepo,
    pull: PullRequest,
    verdict: ChangeVerdict,
    policy: Policy,
    identity: str,
    base_commit: str,
    head_commit: str,
) -> bool:
    """Return whether *pull* was held when it was merged (fire time, for dispatcher merges).

    Only timeline events up to ``merged_at`` count (same-second ones included:
    fail closed); eligibility is judged by *policy*, the policy at the merge's
    base. A hold placed between the tick's read and its merge is caught here.
    """
    if pull.merged_at is None:
        return True  # cannot place the merge in time: fail closed
    timeline = [
        e
        for e in forge.fetch_timeline(pull.number)
        if e.created_at is not None and e.created_at <= pull.merged_at
    ]
    deciders = {e.actor for e in timeline}
    authors = contributors(repo, base_commit, head_commit)
    eligible = eligible_users(deciders, pull, verdict, policy, identity, forge, authors)
    return derive_hold(timeline, eligible, identity=identity, label_present=False).held


def find_pull(
    forge: Forge, merge_commit: str, commit_time: int, known: dict[str, int]
) -> PullRequest | None:
    """Return the merged PR whose merge commit is *merge_commit*, or None."""
    from datetime import UTC, datetime

    if merge_commit in known:
        pull = forge.fetch_pull_request(known[merge_commit])
        return pull if pull.merged and pull.merge_commit_sha == merge_commit else None
    since = datetime.fromtimestamp(commit_time, UTC) - timedelta(hours=1)
    claimants: list[int] = []
    for pull in forge.fetch_pull_requests(ListState.CLOSED, updated_since=since):
        if pull.merged and pull.merge_commit_sha:
            # Remember every merge the listing shows, not only this one: the other
            # actions of the tick then cost one GET each instead of a full listing.
            known[pull.merge_commit_sha] = pull.number
            if pull.merge_commit_sha == merge_commit:
                claimants.append(pull.number)
    if len(claimants) != 1:
        # None, or several PRs claiming one merge commit ("mark as merged" takes
        # any commit on the base, ADR 0008): no PR accounts for it unambiguously.
        return None
    # A listed PR never carries merged_by (API-NOTES §17): only the single GET
    # loads the merger, so the decision is made on that answer.
    pull = forge.fetch_pull_request(claimants[0])
    return pull if pull.merged and pull.merge_commit_sha == merge_commit else None


def approved_by(forge: Forge, number: int, user: str, head: str) -> bool:
    """Return whether *user* approved PR *number* at exactly *head* (not dismissed)."""
    return any(
        same_login(r.reviewer, user)
        and r.state is ReviewState.APPROVED
        and not r.dismissed
        and r.commit_id == head
        for r in forge.fetch_reviews(number)
    )


def vetoed_before_merge(forge: Forge, pull: PullRequest, head_commit: str) -> bool:
    """Return whether a review asked for changes at *head_commit* before *pull* was merged.

    The fire-time twin of the veto the pull-request phase honours: it catches
    a veto placed after the tick read the reviews but before its merge, and a
    merge made with the dispatcher's account outside a tick (invariant I2).
    """
    for review in forge.fetch_reviews(pull.number):
        if (
            review.state is ReviewState.REQUEST_CHANGES
            and not review.dismissed
            and review.commit_id == head_commit
            and (
                pull.merged_at is None
                or review.submitted_at is None
                or review.submitted_at <= pull.merged_at
            )
        ):
            return True
    return False


def establish(
    repo: OpsRepo,
    forge: Forge,
    main: str,
    path: str,
    identity: str,
    known_merges: dict[str, int],
    introduced: Mapping[str, str] | None = None,
) -> Provenance | ReasonCode | MergeMismatch:
    """Return the provenance of the action at *path* on *main*, or why it has none.

    *introduced* may hold the introducing commits found for all waiting actions
    in one walk (``introducing_commits``); without it the history is walked here.
    A merge made by the dispatcher (*identity*) must land exactly the change its
    commit message says was classified, else the MergeMismatch is returned (I1).
    """
    commit = (
        introduced.get(path)
        if introduced is not None
        else introducing_commit(repo, main, path)
    )
    if commit is None:
        return ReasonCode.PROVENANCE_UNKNOWN
    info = repo.commit_info(commit)
    if len(info.parents) < 2:
        return ReasonCode.NO_MERGE
    base_commit, head_commit = info.parents[0], info.parents[1]
    pull = find_pull(forge, commit, info.time, known_merges)
    if pull is None:
        return ReasonCode.NO_PULL_REQUEST
    if same_login(pull.merged_by, identity):  # G-7: logins ignore case
        mismatch = check_merge(repo, commit, head_commit, pull.number)
        if mismatch is not None:
            return mismatch
    base = load_base_state(CommitSnapshot(repo, base_commit))
    # What the merge really did to main: its tree against its first parent (SR-1).
    verdict = classify_landed(repo, base_commit, commit, base)
    if not any(f.path == path and f.kind is ChangeKind.ADDED for f in verdict.files):
        return ReasonCode.NOT_ADDED_BY_MERGE
    merger = pull.merged_by
    held = False
    if same_login(merger, identity) and verdict.tier is Tier.MEDIUM:
        held = held_when_merged(
            forge, repo, pull, verdict, base.policy, identity, base_commit, head_commit
        )
    facts = MergeFacts(
        merger_approved_head=merger is not None
        and (verdict.tier is not Tier.LOW or verdict.protected)
        and not same_login(merger, identity)
        and approved_by(forge, pull.number, merger, head_commit),
        tier=verdict.tier,
        protected=verdict.protected,
        refused=verdict.refused,
        merger=merger,
        merger_roles=roles_of(
            merger,
            pull.author,
            identity,
            base.policy,
            forge,
            contributors(repo, base_commit, head_commit),
        )
        if merger
        else frozenset(),
        proposer=pull.author,
        pr_created_at=pull.created_at,
        merged_at=pull.merged_at,
        head_matches=pull.head_sha == head_commit,
        blob_matches=repo.blob_id(main, path) == repo.blob_id(head_commit, path),
        vetoed=verdict.tier is Tier.MEDIUM
        and same_login(merger, identity)
        and vetoed_before_merge(forge, pull, head_commit),
        held_at_merge=held,
    )
    return Provenance(commit, base_commit, head_commit, pull, verdict, base, facts)
