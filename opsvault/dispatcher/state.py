"""Pure decisions of the dispatcher: what to do with a pull request, and whether an action may fire.

Nothing here does I/O or reads the clock: the tick gathers facts (from git and
the forge), calls these functions, and applies the effects they return.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from opsvault.dispatcher.freezing import change_freeze, change_frozen_for
from opsvault.dispatcher.hold import HOLD_LABEL
from opsvault.dispatcher.reasons import ReasonCode
from opsvault.policy.classify import ChangeVerdict
from opsvault.policy.freeze import Frozen
from opsvault.policy.model import MergeMode, Policy
from opsvault.vault.tier import Tier


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
    # when this head was first classified (veto windows restart on push)
    head_seen_at: datetime
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
    FROZEN = "frozen"  # a merge the dispatcher would make waits for a freeze to end


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
    While a freeze holds the change (``pull_freeze``), a merge the dispatcher
    would make is ``FROZEN`` instead (deferred, not refused), and time frozen
    does not count toward the deadline.
    """
    verdict = facts.verdict
    tier = verdict.tier
    settings = policy.settings(tier)
    head = facts.head_sha
    effects = [Effect(Act.PUBLISH, head)]
    if (
        facts.now - facts.created_at - pull_frozen_for(facts, policy)
        > settings.deadline
    ):
        return [
            *effects,
            Effect(Act.EXPIRE, head, f"unmerged after the {tier.label} deadline"),
        ]
    if verdict.refused:
        return effects
    freeze = pull_freeze(facts, policy)
    if dispatcher_merges(tier, verdict.protected, policy):
        if freeze is not None:
            return [*effects, Effect(Act.FROZEN, head, freeze.render())]
        if facts.approvals_needed and facts.approved_head != head:
            effects.append(Effect(Act.APPROVE, head))
        effects.append(Effect(Act.MERGE, head, "low tier"))
        return effects
    if facts.notified_head != head:
        effects.append(
            Effect(Act.NOTIFY, head, f"{tier.label} tier waits for an eligible merger")
        )
    window = veto_window_merges(tier, verdict.protected, policy)
    if (
        window is not None
        and not facts.held
        and HOLD_LABEL not in facts.labels
        and not facts.request_changes
        and facts.now - facts.head_seen_at >= window
    ):
        if freeze is not None:
            return [*effects, Effect(Act.FROZEN, head, freeze.render())]
        if facts.approvals_needed and facts.approved_head != head:
            effects.append(Effect(Act.APPROVE, head))
        effects.append(
            Effect(Act.MERGE, head, f"veto window of {window} passed unvetoed")
        )
    return effects


def pull_freeze(facts: PullFacts, policy: Policy) -> Frozen | None:
    """Return the freeze that holds this PR at ``facts.now``, or None (``freezing.py``)."""
    return change_freeze(facts.verdict, policy, facts.now)


def pull_frozen_for(facts: PullFacts, policy: Policy) -> timedelta:
    """Return how long a freeze held this PR since it was opened: not its deadline's time."""
    return change_frozen_for(facts.verdict, policy, facts.created_at, facts.now)


def next_timer(facts: PullFacts, policy: Policy) -> datetime:
    """Return when this PR next needs attention without any new event.

    Its deadline (moved by the time frozen so far) or the end of its veto
    window; while a freeze holds it, the end of the freeze: nothing the
    dispatcher does to it happens before.
    """
    freeze = pull_freeze(facts, policy)
    if freeze is not None:
        return freeze.until
    settings = policy.settings(facts.verdict.tier)
    due = facts.created_at + settings.deadline + pull_frozen_for(facts, policy)
    if facts.verdict.tier is Tier.MEDIUM and settings.veto_window is not None:
        due = min(due, facts.head_seen_at + settings.veto_window)
    return due


# ---------------------------------------------------------------------------
# Firing


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


def needs_admin(tier: Tier, protected: bool) -> bool:
    """Return whether only an admin may approve a change: high tier, or behind a built-in floor."""
    return tier is Tier.HIGH or protected


def dispatcher_merges(tier: Tier, protected: bool, policy: Policy) -> bool:
    """Return whether the dispatcher merges such a change by itself, without waiting for anyone.

    Only a low tier with ``merge = "auto"`` and no built-in floor; a medium
    change may still be merged by the dispatcher after its veto window
    (``veto_window_merges``).
    """
    return (
        tier is Tier.LOW
        and policy.settings(tier).merge is MergeMode.AUTO
        and not protected
    )


def veto_window_merges(tier: Tier, protected: bool, policy: Policy) -> timedelta | None:
    """Return the veto window after which the dispatcher merges such a change unvetoed, or None."""
    window = policy.settings(tier).veto_window
    return window if tier is Tier.MEDIUM and not protected else None


def may_merge(tier: Tier, roles: frozenset[Role], protected: bool) -> bool:
    """Return whether a person with *roles* may approve (merge) a change of *tier*.

    Bots, proposers and the dispatcher never approve: the dispatcher's own
    merges are judged by ``dispatcher_merge_counts``, never by its roles.
    """
    if roles & {Role.BOT, Role.PROPOSER, Role.DISPATCHER}:
        return False
    if needs_admin(tier, protected):
        return Role.ADMIN in roles
    return bool(roles & {Role.ADMIN, Role.REVIEWER})


def dispatcher_merge_counts(facts: MergeFacts, policy: Policy) -> ReasonCode | None:
    """Return why a merge by the dispatcher does not approve this change, or None if it does.

    The dispatcher is never an approver (invariant I2). Its merge counts only
    where policy lets it merge by itself: a tier with ``merge = "auto"``, or
    medium once its ``veto_window`` passed unvetoed (no review asked for
    changes at the merged head before the merge); never behind a floor.
    """
    if facts.protected:
        return ReasonCode.PROTECTED_CHANGE
    settings = policy.settings(facts.tier)
    if settings.merge is MergeMode.AUTO:
        return None
    window = settings.veto_window
    if facts.tier is Tier.MEDIUM and window is not None:
        if facts.vetoed:
            return ReasonCode.VETOED
        if (
            facts.pr_created_at
            and facts.merged_at
            and facts.merged_at - facts.pr_created_at >= window
        ):
            return None
        return ReasonCode.VETO_WINDOW_NOT_PASSED
    return ReasonCode.MERGER_NOT_ELIGIBLE


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


def approval_rule(facts: MergeFacts, policy: Policy) -> str | None:
    """Return the rule under which this merge approves the change, or None under none.

    What a record names beside its approver, so an audit can replay it
    (ADR 0021): ``dispatcher: merge = auto`` or ``dispatcher: veto window``
    for the dispatcher's own merges (``dispatcher_merges``,
    ``veto_window_merges``), ``admin`` or ``reviewer`` for a person
    (``may_merge``: an admin where ``needs_admin``). Whether the merge may
    fire is still ``verify_merge``'s answer alone.
    """
    roles = facts.merger_roles
    if roles & {Role.BOT, Role.PROPOSER}:
        return None
    if Role.DISPATCHER in roles:
        if dispatcher_merges(facts.tier, facts.protected, policy):
            return "dispatcher: merge = auto"
        if veto_window_merges(facts.tier, facts.protected, policy) is not None:
            return "dispatcher: veto window"
        return None
    if not may_merge(facts.tier, roles, facts.protected):
        return None
    if needs_admin(facts.tier, facts.protected) or Role.REVIEWER not in roles:
        return "admin"
    return "reviewer"


def verify_merge(facts: MergeFacts, policy: Policy) -> ReasonCode | None:
    """Return why an action merged this way must not fire, or None if it may.

    The merger must be eligible for the tier recomputed from the policy at the
    merge's base: admins for high (and for any change hitting a built-in floor),
    reviewers or admins for medium and low; never the proposer, never a bot.
    The dispatcher's own merge counts only for a ``merge = "auto"`` tier and
    for medium once its veto window passed, whatever roles it holds. The
    merged head and the blob must be the classified ones.
    """
    if not facts.head_matches:
        return ReasonCode.HEAD_MISMATCH
    if not facts.blob_matches:
        return ReasonCode.CHANGED_AFTER_MERGE
    if facts.refused:
        return ReasonCode.INVALID
    roles = facts.merger_roles
    if facts.merger is None:
        return ReasonCode.NO_PULL_REQUEST
    if Role.PROPOSER in roles:
        return ReasonCode.MERGED_BY_PROPOSER
    if Role.BOT in roles:
        return ReasonCode.MERGED_BY_BOT
    if facts.held_at_merge and Role.DISPATCHER in roles:
        # whatever other role the forge gives it (I2, I3)
        return ReasonCode.HELD_AT_MERGE
    if Role.DISPATCHER in roles:
        return dispatcher_merge_counts(facts, policy)
    if may_merge(facts.tier, roles, facts.protected):
        return None if vouched(facts) else ReasonCode.MERGE_NOT_VOUCHED
    if facts.protected:
        return ReasonCode.PROTECTED_CHANGE
    return ReasonCode.MERGER_NOT_ELIGIBLE


# ---------------------------------------------------------------------------
# What to do with one action waiting on main


@dataclass(frozen=True, slots=True)
class ActionFacts:
    """What the shell established about one action waiting in ``vault/actions``.

    ``merge`` is None when nothing was looked up because the queue was full
    (provenance costs forge calls), a ReasonCode when no eligible merged pull
    request accounts for the action, else how it was merged, with ``policy``
    the policy at the merge's base. ``parse_problems``: why the file is not an
    action; ``assessment_problems``: why it is not valid against the formulas
    and policy of the merge's base (or its formula is unknown).
    """

    now: datetime
    queued: int  # claims this tick made so far
    queue_limit: int
    merge: MergeFacts | ReasonCode | None
    policy: Policy | None = None
    merger: str | None = None  # the merger's name, for the decision's detail
    parse_problems: tuple[str, ...] = ()
    expires: datetime | None = None
    human_request: bool = False
    assessment_problems: tuple[str, ...] = ()
    locks: tuple[str, ...] = ()  # the formula's locks rendered for this action
    held: frozenset[str] = frozenset()  # locks held by claims on main or this tick
    # the freeze holding this action's formula, from the policy on main now
    freeze: Frozen | None = None
    # this round claimed as many as the replica has free execution slots (ADR 0022)
    round_full: bool = False


@dataclass(frozen=True, slots=True)
class Claim:
    locks: tuple[str, ...]
    detail: str


@dataclass(frozen=True, slots=True)
class Refuse:
    reason: ReasonCode
    detail: str


@dataclass(frozen=True, slots=True)
class Expire:
    detail: str


@dataclass(frozen=True, slots=True)
class Done:
    detail: str


@dataclass(frozen=True, slots=True)
class Defer:
    detail: str


ActionDecision = Claim | Refuse | Expire | Done | Defer


def decide_action(facts: ActionFacts) -> ActionDecision:
    """Return what the fire phase does with one action on main.

    In order: defer while this tick's queue or this round's free slots are
    full (before any provenance work); refuse what no eligible merge accounts for and whatever
    ``verify_merge`` refuses; refuse a file that is not an action; expire one
    past its own ``expires``; record a merged request for a human as done;
    refuse an action invalid at the merge's base; defer while a freeze holds
    its formula (``facts.freeze``) or one of its locks is held; else claim it.
    """
    if facts.queued >= facts.queue_limit:
        return Defer(f"queue limit of {facts.queue_limit} reached this tick")
    if facts.round_full:
        return Defer("this round's free execution slots are taken")
    merge = facts.merge
    if merge is None or isinstance(merge, ReasonCode):
        return Refuse(
            merge or ReasonCode.PROVENANCE_UNKNOWN,
            "the action reached main without an eligible merged pull request",
        )
    refusal = (
        verify_merge(merge, facts.policy)
        if facts.policy is not None
        else ReasonCode.INVALID
    )
    if refusal is not None:
        return Refuse(refusal, f"merged by {facts.merger!r} as {merge.tier.label} tier")
    if facts.parse_problems:
        return Refuse(ReasonCode.INVALID, "; ".join(facts.parse_problems))
    if facts.expires is not None and facts.expires <= facts.now:
        return Expire(f"expires {facts.expires.isoformat()} has passed")
    if facts.human_request:
        return Done(f"human request merged by {facts.merger}")
    if facts.assessment_problems:
        return Refuse(ReasonCode.INVALID, "; ".join(facts.assessment_problems))
    if facts.freeze is not None:
        return Defer(facts.freeze.render())
    if facts.held.intersection(facts.locks):
        return Defer(f"lock held: {sorted(facts.held.intersection(facts.locks))}")
    return Claim(facts.locks, f"{merge.tier.label} tier, merged by {facts.merger}")
