"""The pull-request phase of a tick: classify, publish, and act on each changed PR.

A PR is looked at when it changed since the last tick (the forge lists them by
recent update and the listing stops at the watermark) or when one of its
timers (deadline, veto window) is due. Everything published is idempotent:
one commit status, one tier label, one comment kept up to date.

What a PR shows is ``publish``; merging it ``merging``; a PR that never
merged ``unmerged``; the phase's context and outcome ``pullphase``.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from opsvault.changes import (
    preview_merge,
)
from opsvault.dispatcher.cache import PullEntry
from opsvault.dispatcher.commands import read_conversation
from opsvault.dispatcher.hold import HOLD_LABEL
from opsvault.dispatcher.integrity import (
    check_merge,
    find_mismatches,
)
from opsvault.dispatcher.merging import (
    MERGE_RETRY_FIRST,
    approvals_needed,
    bot_approval_live,
    merge,
    not_mergeable_yet,
)
from opsvault.dispatcher.publish import TIER_MARKER, notify_approvers, publish, summary
from opsvault.dispatcher.pullphase import (
    Landed,
    PullContext,
    PullsOutcome,
)
from opsvault.dispatcher.reasons import ReasonCode
from opsvault.dispatcher.report import Decision
from opsvault.dispatcher.state import (
    Act,
    PullFacts,
    decide_pull,
    next_timer,
)
from opsvault.dispatcher.unmerged import closed_pull, expire
from opsvault.errors import (
    ForgeNotFound,
    ForgeUnavailable,
    OpsvaultError,
)
from opsvault.forge.types import (
    ListState,
    PullRequest,
    PullState,
    ReviewState,
)
from opsvault.layout import HALT
from opsvault.policy.classify import (
    BaseState,
)
from opsvault.snapshot import CommitSnapshot, has_file, load_base_state
from opsvault.timefmt import parse_iso, render_iso
from opsvault.vault.tier import Tier

log = logging.getLogger(__name__)


def process_pulls(ctx: PullContext, main: str, base: BaseState) -> PullsOutcome:
    """Look at every PR that changed or is due, and act on it. ForgeUnavailable ends the phase."""
    out = PullsOutcome()
    cache = ctx.cache
    if cache.watermark is None:
        listed = ctx.forge.fetch_pull_requests(ListState.OPEN)
    else:
        listed = ctx.forge.fetch_pull_requests(
            ListState.ALL, updated_since=parse_iso(cache.watermark)
        )
    seen = {pr.number for pr in listed}
    due = {
        int(n)
        for n, entry in cache.pulls.items()
        if int(n) not in seen and parse_iso(entry.due) <= ctx.now
    }
    pulls = listed + _fetch_due(ctx, sorted(due))
    for number in sorted(ctx.nudged - seen - due):
        try:
            pulls.append(ctx.forge.fetch_pull_request(number))
        except ForgeNotFound:
            continue  # a webhook named a PR (or issue) the API does not show as one
    out.main = main
    for pr in pulls:
        if pr.base_ref != ctx.mainline.branch:
            continue
        landed, merged, failed = len(out.landed), out.merged, False
        try:
            if pr.state is PullState.OPEN:
                _open_pull(ctx, main, base, pr, out)
            else:
                closed_pull(ctx, main, base, pr, out)
        except ForgeUnavailable:
            raise
        except Exception as exc:
            # One bad PR never stops the tick, not even a bug (I5); it is looked
            # at again next time.
            if not isinstance(exc, OpsvaultError):
                log.exception("pr#%s: unexpected error", pr.number)
            detail = (
                str(exc) if isinstance(exc, OpsvaultError) else f"unexpected {exc!r}"
            )
            out.decisions.append(Decision(f"pr#{pr.number}", "error", detail))
            entry = cache.pulls.get(str(pr.number))
            if entry is not None:
                entry.due = render_iso(ctx.now)
            failed = True  # a merge call may have landed before it raised
        if out.merged > merged or failed:
            # Main moved: what lands next is classified against the new main (I1).
            moved = _after_merge(ctx, out, main, out.landed[landed:])
            if moved is None:
                continue  # main did not move
            main, next_base = moved
            out.main = main
            if out.mismatches or next_base is None:
                break  # nothing more is merged this tick
            base = next_base
    return out


def _after_merge(
    ctx: PullContext, out: PullsOutcome, old: str, merges: list[Landed]
) -> tuple[str, BaseState | None] | None:
    """Re-read main after a merge, check what landed since *old*, and load the new base.

    Our own merges (*merges*) are checked against the manifests classified for
    them; any other marked merge main gained meanwhile (another replica's, or
    ours whose merge call raised after landing) against its mark. Return None
    if main did not move; else the new main and its base state, or None for
    the state when no further PR may be merged this tick (a mismatch, HALT on
    main, or a policy that no longer loads).
    """
    main = ctx.mainline.refresh()
    if main == old:
        return None
    ours = {landed.merge_commit for landed in merges}
    for other in find_mismatches(ctx.repo, main, old):
        if other.merge_commit not in ours:
            out.mismatches.append(other)
            out.decisions.append(
                Decision(f"pr#{other.pr}", ReasonCode.MERGE_MISMATCH, other.render())
            )
    for landed in merges:
        mismatch = check_merge(
            ctx.repo,
            landed.merge_commit,
            landed.head_commit,
            landed.pr,
            landed.manifest,
        )
        if mismatch is not None:
            out.mismatches.append(mismatch)
            out.decisions.append(
                Decision(
                    f"pr#{landed.pr}", ReasonCode.MERGE_MISMATCH, mismatch.render()
                )
            )
    if out.mismatches:
        return main, None
    snapshot = CommitSnapshot(ctx.repo, main)
    if has_file(snapshot, HALT):
        branch = ctx.mainline.branch
        out.decisions.append(Decision(branch, "halted", f"{HALT} appeared on {branch}"))
        return main, None
    try:
        return main, load_base_state(snapshot)
    except OpsvaultError as exc:
        out.decisions.append(Decision(ctx.mainline.branch, "error", str(exc)))
        return main, None


DUE_LISTING_THRESHOLD = 10  # more due PRs than this: one listing beats a GET each


def _fetch_due(ctx: PullContext, due: list[int]) -> list[PullRequest]:
    """Return the due PRs: one GET each, or the open listing when many are due."""
    if len(due) <= DUE_LISTING_THRESHOLD:
        return [ctx.forge.fetch_pull_request(n) for n in sorted(due)]
    wanted = set(due)
    found = [
        p for p in ctx.forge.fetch_pull_requests(ListState.OPEN) if p.number in wanted
    ]
    gone = wanted - {p.number for p in found}  # closed since: read each (merger!)
    return found + [ctx.forge.fetch_pull_request(n) for n in sorted(gone)]


def _open_pull(
    ctx: PullContext, main: str, base: BaseState, pr: PullRequest, out: PullsOutcome
) -> None:
    subject = f"pr#{pr.number}"
    if not ctx.mainline.fetch_pull_head(pr.number, pr.head_sha):
        out.decisions.append(
            Decision(subject, "waiting", "the head commit is not fetchable yet")
        )
        return
    preview = preview_merge(ctx.repo, main, pr.head_sha, base, ctx.now)
    verdict = preview.verdict
    policy = base.policy
    entry = ctx.cache.pulls.get(str(pr.number))
    if entry is None or entry.head != pr.head_sha:
        entry = PullEntry(
            head=pr.head_sha,
            head_seen_at=render_iso(ctx.now),
            tier=verdict.tier.label,
            due=render_iso(ctx.now),
        )
        ctx.cache.pulls[str(pr.number)] = entry
    wants_reviews = (
        verdict.tier is Tier.MEDIUM
        and policy.settings(Tier.MEDIUM).veto_window is not None
    )
    request_changes = wants_reviews and any(
        r.state is ReviewState.REQUEST_CHANGES and not r.dismissed and not r.stale
        for r in ctx.forge.fetch_reviews(pr.number)
    )
    talk = read_conversation(
        ctx.forge,
        ctx.repo,
        main,
        pr,
        verdict,
        policy,
        ctx.identity,
        TIER_MARKER,
        dry_run=ctx.dry_run,
    )
    labels = set(pr.labels) - {HOLD_LABEL}
    if talk.hold.held:
        labels.add(HOLD_LABEL)
    facts = PullFacts(
        number=pr.number,
        head_sha=pr.head_sha,
        created_at=pr.created_at or ctx.now,
        head_seen_at=parse_iso(entry.head_seen_at),
        labels=frozenset(labels),
        verdict=verdict,
        request_changes=request_changes,
        notified_head=entry.notified_head,
        approvals_needed=0,
        approved_head=entry.approved_head,
        now=ctx.now,
        held=talk.hold.held,
    )
    effects = decide_pull(facts, policy)
    if any(e.act in (Act.MERGE, Act.APPROVE) for e in effects):
        needed = approvals_needed(ctx)
        approved = entry.approved_head
        if needed and approved == pr.head_sha:
            # Re-read it: a push (dismiss_stale_approvals) or an admin may have
            # dismissed the approval the cache remembers (API-NOTES §17).
            approved = pr.head_sha if bot_approval_live(ctx, pr) else None
        facts = replace(facts, approvals_needed=needed, approved_head=approved)
        effects = decide_pull(facts, policy)
    entry.tier = verdict.tier.label
    entry.due = render_iso(next_timer(facts, policy))
    if talk.retry:
        entry.due = render_iso(ctx.now)  # /vault retry: look again next tick too
    out.decisions.append(Decision(subject, "classified", summary(verdict)))
    for done in talk.done:
        out.decisions.append(Decision(subject, "command", done))
    if talk.hold.held:
        out.decisions.append(
            Decision(subject, "held", f"by @{talk.hold.placed_by or 'the label'}")
        )
    for effect in effects:
        if effect.act is Act.PUBLISH:
            publish(ctx, pr, verdict, policy, entry, talk, facts)
        elif effect.act is Act.APPROVE:
            if not ctx.dry_run:
                ctx.forge.approve(
                    pr.number, effect.head_sha, "opsvault: low tier, approved for merge"
                )
                entry.approved_head = effect.head_sha
            out.decisions.append(Decision(subject, "approved", effect.head_sha[:12]))
        elif effect.act is Act.MERGE:
            wait = not_mergeable_yet(pr, out, ctx.mainline.branch)
            if wait:
                # Asking would only earn a 405: come back within seconds.
                entry.due = render_iso(ctx.now + MERGE_RETRY_FIRST)  # not a refusal
                out.decisions.append(Decision(subject, "merge deferred", wait))
            else:
                merge(ctx, pr, effect.head_sha, verdict, preview, effect.detail, out)
        elif effect.act is Act.NOTIFY:
            notify_approvers(ctx, pr, verdict, policy, effect.detail)
            entry.notified_head = effect.head_sha
            out.decisions.append(Decision(subject, "notified", effect.detail))
        elif effect.act is Act.EXPIRE:
            expire(ctx, pr, verdict, effect.detail, out)
