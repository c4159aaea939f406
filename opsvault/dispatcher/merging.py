"""Merging a pull request: whether the forge would take it now, the pinned merge, and its retries.

A merge the forge refuses for a reason that passes by itself (mergeability
still being checked, the base moving) is tried again 15 s later, doubling to at
most 5 minutes (API-NOTES §16, §17); it is never an outcome.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from opsvault.changes import (
    MergePreview,
)
from opsvault.dispatcher.integrity import (
    merge_message,
)
from opsvault.dispatcher.pullphase import (
    Landed,
    PullContext,
    PullsOutcome,
)
from opsvault.dispatcher.report import Decision
from opsvault.errors import (
    ForgeConflict,
)
from opsvault.forge.logins import same_login
from opsvault.forge.types import (
    PullRequest,
    ReviewState,
)
from opsvault.policy.classify import (
    ChangeVerdict,
)
from opsvault.timefmt import render_iso


def not_mergeable_yet(pr: PullRequest, out: PullsOutcome, branch: str) -> str:
    """Return why merging *pr* now would be refused as "try again later", or ""."""
    if out.merged:
        # Our merge moved main: Forgejo re-checks every other PR on it (§17).
        return f"{branch} moved in this tick; Forgejo re-checks this PR first"
    if pr.mergeable is False:
        return "Forgejo is still checking mergeability (or found a conflict)"
    return ""


def bot_approval_live(ctx: PullContext, pr: PullRequest) -> bool:
    return any(
        same_login(r.reviewer, ctx.identity)
        and r.state is ReviewState.APPROVED
        and not r.dismissed
        and r.commit_id == pr.head_sha
        for r in ctx.forge.fetch_reviews(pr.number)
    )


def approvals_needed(ctx: PullContext) -> int:
    if ctx.approvals_needed is None:
        protection = ctx.forge.fetch_branch_protection(ctx.mainline.branch)
        ctx.approvals_needed = protection.required_approvals if protection else 0
    return ctx.approvals_needed


def merge(
    ctx: PullContext,
    pr: PullRequest,
    head: str,
    verdict: ChangeVerdict,
    preview: MergePreview,
    why: str,
    out: PullsOutcome,
) -> None:
    subject = f"pr#{pr.number}"
    if ctx.dry_run:
        out.decisions.append(Decision(subject, "would merge", f"{why} at {head[:12]}"))
        return
    message = merge_message(
        pr.number, verdict.tier.label, preview.base_commit, preview.manifest
    )
    try:
        result = ctx.forge.merge(pr.number, head, message=message)
    except ForgeConflict as exc:
        out.decisions.append(Decision(subject, "merge refused by forge", str(exc)))
        entry = ctx.cache.pulls.get(str(pr.number))
        if entry is not None and is_transient_refusal(exc):
            # Forgejo is still checking mergeability (after any push to the head
            # or the base) or lost a race on the base: try again within minutes,
            # not at the PR's deadline (API-NOTES §16, §17).
            entry.due = render_iso(merge_retry_at(ctx.now, entry.merge_retries))
            entry.merge_retries += 1
        return
    if result.merge_commit_sha:
        ctx.cache.merges[result.merge_commit_sha] = pr.number
        out.landed.append(
            Landed(pr.number, result.merge_commit_sha, head, preview.manifest)
        )
    ctx.cache.pulls.pop(str(pr.number), None)
    out.merged += 1
    again = " (an earlier attempt had merged it)" if result.already_merged else ""
    out.decisions.append(Decision(subject, "merged", f"{why} at {head[:12]}{again}"))


MERGE_RETRY_FIRST = timedelta(seconds=15)
MERGE_RETRY_MAX = timedelta(minutes=5)
_TRANSIENT = ("try again later", "merge push out of date", "not in mergeable state")


def is_transient_refusal(exc: ForgeConflict) -> bool:
    """Return whether a refused merge may pass unchanged on a later attempt."""
    text = str(exc).lower()
    return any(reason in text for reason in _TRANSIENT)


def merge_retry_at(now: datetime, retries: int) -> datetime:
    """Return when to try a transiently refused merge again: 15 s doubling, at most 5 min."""
    wait: timedelta = min(MERGE_RETRY_FIRST * 2 ** min(retries, 10), MERGE_RETRY_MAX)
    return now + wait
