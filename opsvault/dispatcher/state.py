"""Pure decisions of the dispatcher: what to do with a pull request, and whether an action may fire.

Nothing here does I/O or reads the clock: the tick gathers facts (from git and
the forge), calls these functions, and applies the effects they return.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from opsvault.dispatcher.hold import HOLD_LABEL
from opsvault.policy.classify import ChangeVerdict
from opsvault.policy.model import MergeMode, Policy, Tier


class Role(StrEnum):
    """What a forge user is, as far as approving goes (resolved by the shell)."""

    ADMIN = "admin"
    REVIEWER = "reviewer"
    BOT = "bot"
    DISPATCHER = "dispatcher"
    PROPOSER = "proposer"


# ---------------------------------------------------------------------------
# Pull requests


@dataclass(frozen=True, slots=True)
class PullFacts:
    number: int
    head_sha: str
    created_at: datetime
    head_seen_at: (
        datetime  # when this head was first classified (veto windows restart on push)
    )
    labels: frozenset[str]
    verdict: ChangeVerdict
    request_changes: bool  # a current review asks for changes (a veto)
    notified_head: str | None  # the head approvers were last notified about
    approvals_needed: int  # branch protection's required approvals (0 if none)
    approved_head: str | None  # the head the dispatcher last approved
    now: datetime
    # held per the PR's timeline: who added/removed the hold, not the label alone (I3)
    held: bool = False


class Act(StrEnum):
    PUBLISH = "publish"  # commit status, tier label, the one kept-up-to-date comment
    APPROVE = "approve"
    MERGE = "merge"
    NOTIFY = "notify"
    EXPIRE = "expire"  # close as expired and record it


@dataclass(frozen=True, slots=True)
class Effect:
    act: Act
    head_sha: str
    detail: str = ""


def decide_pull(facts: PullFacts, policy: Policy) -> list[Effect]:
    """Return what the dispatcher does with one open pull request, in order.

    Always publish. Past the tier's deadline: expire (nothing else). A refused
    change is never merged. Low with ``merge = "auto"``: approve if branch
    protection needs an approval, then merge pinned to the classified head —
    unless a built-in floor applies (a low tier with another merge mode waits
    for a person, like medium). Medium and high: notify approvers once per
    head; medium merges after an unvetoed ``veto_window`` (not held -- see
    ``hold.derive_hold`` -- no hold label, no request for changes, measured
    from when this head was first seen). High is never merged by the dispatcher.
    """
    verdict = facts.verdict
    tier = verdict.tier
    settings = policy.settings(tier)
    head = facts.head_sha
    effects = [Effect(Act.PUBLISH, head)]
    if facts.now - facts.created_at > settings.deadline:
        return [
            *effects,
            Effect(Act.EXPIRE, head, f"unmerged after the {tier.label} deadline"),
        ]
    if verdict.refused:
        return effects
    if tier is Tier.LOW and settings.merge is MergeMode.AUTO and not verdict.protected:
        if facts.approvals_needed and facts.approved_head != head:
            effects.append(Effect(Act.APPROVE, head))
        effects.append(Effect(Act.MERGE, head, "low tier"))
        return effects
    if facts.notified_head != head:
        effects.append(
            Effect(Act.NOTIFY, head, f"{tier.label} tier waits for an eligible merger")
        )
    window = settings.veto_window
    if (
        tier is Tier.MEDIUM
        and window is not None
        and not verdict.protected
        and not facts.held
        and HOLD_LABEL not in facts.labels
        and not facts.request_changes
        and facts.now - facts.head_seen_at >= window
    ):
        if facts.approvals_needed and facts.approved_head != head:
            effects.append(Effect(Act.APPROVE, head))
        effects.append(
            Effect(Act.MERGE, head, f"veto window of {window} passed unvetoed")
        )
    return effects


def next_timer(facts: PullFacts, policy: Policy) -> datetime:
    """Return when this PR next needs attention without any new event (deadline or veto window)."""
    settings = policy.settings(facts.verdict.tier)
    due = facts.created_at + settings.deadline
    if facts.verdict.tier is Tier.MEDIUM and settings.veto_window is not None:
        due = min(due, facts.head_seen_at + settings.veto_window)
    return due


# ---------------------------------------------------------------------------
# Firing


class Refusal(StrEnum):
    """Reason codes for refusing to fire an action (docs/lifecycle.md)."""

    NO_MERGE = "no-merge"  # reached main without a merge commit
    NO_PULL_REQUEST = "no-pull-request"  # a merge no pull request accounts for
    HEAD_MISMATCH = "head-mismatch"  # the merged head is not the PR's head
    CHANGED_AFTER_MERGE = (
        "changed-after-merge"  # the blob on main differs from the merged one
    )
    INVALID = "invalid"  # the merged change does not validate against the base policy
    PROTECTED_CHANGE = (
        "protected-change"  # merged together with a floor path, not by an admin
    )
    MERGED_BY_PROPOSER = "merged-by-proposer"
    MERGED_BY_BOT = "merged-by-bot"
    MERGER_NOT_ELIGIBLE = "merger-not-eligible"
    VETO_WINDOW_NOT_PASSED = "veto-window-not-passed"
    PROVENANCE_UNKNOWN = (
        "provenance-unknown"  # the introducing commit is too far back to check
    )
    # the introducing merge did not add it as a new action (e.g. a merge restoring an old file)
    NOT_ADDED_BY_MERGE = "not-added-by-merge"
    # the dispatcher merged a medium change that a review asked to change (a veto)
    VETOED = "vetoed"
    # a dispatcher merge whose first-parent diff is not what was classified (I1, ADR 0004)
    MERGE_MISMATCH = "merge-mismatch"
    # a medium/high merge whose merger never approved the merged head (ADR 0008):
    # auto-merge, "mark as merged" and auto-detected merges carry no such proof
    MERGE_NOT_VOUCHED = "merge-not-vouched"
    HELD_AT_MERGE = (
        "held-at-merge"  # the dispatcher merged a medium change that was held (I3)
    )


@dataclass(frozen=True, slots=True)
class MergeFacts:
    """What the shell established about how an action reached main."""

    tier: Tier
    protected: bool
    refused: bool
    merger: str | None
    merger_roles: frozenset[Role]
    proposer: str
    pr_created_at: datetime | None
    merged_at: datetime | None
    head_matches: bool
    blob_matches: bool
    # a review asking for changes at the merged head was submitted before the merge
    vetoed: bool = False
    # The merger's own approval of exactly the merged head is on record (ADR 0008).
    merger_approved_head: bool = False
    held_at_merge: bool = False  # per the PR's timeline up to the merge (I3)


def may_merge(tier: Tier, roles: frozenset[Role], protected: bool) -> bool:
    """Return whether a person with *roles* may approve (merge) a change of *tier*.

    Bots, proposers and the dispatcher never approve: the dispatcher's own
    merges are judged by ``dispatcher_merge_counts``, never by its roles.
    """
    if roles & {Role.BOT, Role.PROPOSER, Role.DISPATCHER}:
        return False
    if tier is Tier.HIGH or protected:
        return Role.ADMIN in roles
    return bool(roles & {Role.ADMIN, Role.REVIEWER})


def dispatcher_merge_counts(facts: MergeFacts, policy: Policy) -> Refusal | None:
    """Return why a merge by the dispatcher does not approve this change, or None if it does.

    The dispatcher is never an approver (invariant I2). Its merge counts only
    where policy lets it merge by itself: a tier with ``merge = "auto"``, or
    medium once its ``veto_window`` passed unvetoed (no review asked for
    changes at the merged head before the merge); never behind a floor.
    """
    if facts.protected:
        return Refusal.PROTECTED_CHANGE
    settings = policy.settings(facts.tier)
    if settings.merge is MergeMode.AUTO:
        return None
    window = settings.veto_window
    if facts.tier is Tier.MEDIUM and window is not None:
        if facts.vetoed:
            return Refusal.VETOED
        if (
            facts.pr_created_at
            and facts.merged_at
            and facts.merged_at - facts.pr_created_at >= window
        ):
            return None
        return Refusal.VETO_WINDOW_NOT_PASSED
    return Refusal.MERGER_NOT_ELIGIBLE


def vouched(facts: MergeFacts) -> bool:
    """Return whether the product can vouch that the merger chose the merged head (ADR 0008).

    Forgejo's merged_by also comes from a scheduled auto-merge (merged later,
    at whatever head, without a pin), a manual "mark as merged" (any commit),
    and auto-detected merges (the merger is looked up by a commit e-mail the
    committer chose). A human merge of a medium or high change counts only
    when the merger's own approval of exactly the merged head is on record;
    the dispatcher's own merges are pinned to the head it classified.
    """
    if Role.DISPATCHER in facts.merger_roles and facts.tier is not Tier.HIGH:
        return True
    if facts.tier is Tier.LOW and not facts.protected:
        return True
    return facts.merger_approved_head


def verify_merge(facts: MergeFacts, policy: Policy) -> Refusal | None:
    """Return why an action merged this way must not fire, or None if it may.

    The merger must be eligible for the tier recomputed from the policy at the
    merge's base: admins for high (and for any change hitting a built-in floor),
    reviewers or admins for medium and low; never the proposer, never a bot.
    The dispatcher's own merge counts only for a ``merge = "auto"`` tier and
    for medium once its veto window passed, whatever roles it holds. The
    merged head and the blob must be the classified ones.
    """
    if not facts.head_matches:
        return Refusal.HEAD_MISMATCH
    if not facts.blob_matches:
        return Refusal.CHANGED_AFTER_MERGE
    if facts.refused:
        return Refusal.INVALID
    roles = facts.merger_roles
    if facts.merger is None:
        return Refusal.NO_PULL_REQUEST
    if Role.PROPOSER in roles:
        return Refusal.MERGED_BY_PROPOSER
    if Role.BOT in roles:
        return Refusal.MERGED_BY_BOT
    if facts.held_at_merge and Role.DISPATCHER in roles:
        return Refusal.HELD_AT_MERGE  # whatever other role the forge gives it (I2, I3)
    if Role.DISPATCHER in roles:
        return dispatcher_merge_counts(facts, policy)
    if may_merge(facts.tier, roles, facts.protected):
        return None if vouched(facts) else Refusal.MERGE_NOT_VOUCHED
    if facts.protected:
        return Refusal.PROTECTED_CHANGE
    return Refusal.MERGER_NOT_ELIGIBLE
