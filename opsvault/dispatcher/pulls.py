"""The pull-request phase of a tick: classify, publish, and act on each changed PR.

A PR is looked at when it changed since the last tick (the forge lists them by
recent update and the listing stops at the watermark) or when one of its
timers (deadline, veto window) is due. Everything published is idempotent:
one commit status, one tier label, one comment kept up to date.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from opsvault.changes import (
    ChangeManifest,
    MergePreview,
    preview_merge,
)
from opsvault.dispatcher.cache import Cache, PullEntry
from opsvault.dispatcher.commands import Conversation, read_conversation
from opsvault.dispatcher.fire import sha256
from opsvault.dispatcher.hold import HOLD_LABEL
from opsvault.dispatcher.integrity import (
    MergeMismatch,
    check_merge,
    find_mismatches,
    merge_message,
)
from opsvault.dispatcher.notify import sinks_named
from opsvault.dispatcher.reasons import ReasonCode
from opsvault.dispatcher.records import Outcome, ResultRecord
from opsvault.dispatcher.rejection import closed_verdict, judge_rejection
from opsvault.dispatcher.report import Decision
from opsvault.dispatcher.state import Act, PullFacts, decide_pull, next_timer
from opsvault.errors import (
    FileTooLargeError,
    ForgeConflict,
    ForgeNotFound,
    ForgeUnavailable,
    OpsvaultError,
)
from opsvault.forge.logins import same_login
from opsvault.forge.types import (
    CommitStatus,
    ListState,
    PullRequest,
    PullState,
    ReviewState,
    StatusState,
)
from opsvault.git.base import OpsRepo
from opsvault.layout import HALT, pull_record_stem
from opsvault.messages import Notification
from opsvault.policy.classify import (
    BaseState,
    ChangeVerdict,
    is_action_path,
)
from opsvault.policy.model import MergeMode, Policy, Principals
from opsvault.ports import Forge, Mainline, Notifier
from opsvault.snapshot import CommitSnapshot, has_file, load_base_state
from opsvault.timefmt import parse_iso, render_iso
from opsvault.vault.duration import render_duration
from opsvault.vault.request import action_id_for, id_problems
from opsvault.vault.schema import MAX_FILE_BYTES
from opsvault.vault.tier import Tier

log = logging.getLogger(__name__)

TIER_MARKER = "<!-- opsvault:tier -->"
STATUS_CONTEXT = "vault/tier"
# Tier labels live in their own scope, ``vault/tier``: Forgejo's exclusive
# labels clear every other label of the same scope (the name up to the last
# "/"), so a tier label can never clear the hold label ``vault/hold`` (scope
# ``vault``) nor the other way round, whichever of them is made exclusive.
LABELS = {
    "vault/tier/low": ("2e7d32", "opsvault: low tier (merged by the dispatcher)"),
    "vault/tier/medium": ("f9a825", "opsvault: medium tier (a reviewer merges)"),
    "vault/tier/high": ("c62828", "opsvault: high tier (an admin merges)"),
    "vault/tier/refused": ("6a1b9a", "opsvault: invalid, will not be merged or fired"),
}
# Names used before the labels moved to their own scope; removed when seen.
LEGACY_LABELS = frozenset(
    {"vault/tier-low", "vault/tier-medium", "vault/tier-high", "vault/refused"}
)


@dataclass(frozen=True, slots=True)
class RecordIntent:
    """An archive record for an action that never reached main (closed or expired PR).

    It is filed under ``stem`` = ``pr-<N>/<id>`` (``records.pull_record_stem``),
    a namespace no action id reaches. Only a rejection by someone eligible to
    approve the change (*reserves*) also files it under the id itself, which
    then can never be used again; a PR its proposer closed or that expired
    reserves nothing, so opening and closing a PR cannot squat another
    proposal's id (security review SR-4, ADR 0005). ``content`` is None when
    the file was not a valid action: only its hash is recorded then.
    """

    stem: str
    content: bytes | None
    record: ResultRecord
    reserves: bool = False


@dataclass(frozen=True, slots=True)
class Landed:
    """A merge the dispatcher just made, and the change it classified for it."""

    pr: int
    merge_commit: str
    head_commit: str
    manifest: ChangeManifest


@dataclass(slots=True)
class PullsOutcome:
    decisions: list[Decision] = field(default_factory=list)
    records: list[RecordIntent] = field(default_factory=list)
    merged: int = 0
    landed: list[Landed] = field(default_factory=list)
    mismatches: list[MergeMismatch] = field(default_factory=list)
    main: str | None = None  # main as the phase left it (re-read after each merge)


@dataclass(slots=True)
class PullContext:
    forge: Forge
    repo: OpsRepo
    mainline: Mainline
    notifier: Notifier
    identity: str
    now: datetime
    dry_run: bool
    cache: Cache
    labels_ready: bool = False
    approvals_needed: int | None = None
    nudged: frozenset[int] = frozenset()  # PRs a webhook said changed


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
                _closed_pull(ctx, main, base, pr, out)
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
        out.decisions.append(Decision("main", "halted", f"{HALT} appeared on main"))
        return main, None
    try:
        return main, load_base_state(snapshot)
    except OpsvaultError as exc:
        out.decisions.append(Decision("main", "error", str(exc)))
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
        needed = _approvals_needed(ctx)
        approved = entry.approved_head
        if needed and approved == pr.head_sha:
            # Re-read it: a push (dismiss_stale_approvals) or an admin may have
            # dismissed the approval the cache remembers (API-NOTES §17).
            approved = pr.head_sha if _bot_approval_live(ctx, pr) else None
        facts = replace(facts, approvals_needed=needed, approved_head=approved)
        effects = decide_pull(facts, policy)
    entry.tier = verdict.tier.label
    entry.due = render_iso(next_timer(facts, policy))
    if talk.retry:
        entry.due = render_iso(ctx.now)  # /vault retry: look again next tick too
    out.decisions.append(Decision(subject, "classified", _summary(verdict)))
    for done in talk.done:
        out.decisions.append(Decision(subject, "command", done))
    if talk.hold.held:
        out.decisions.append(
            Decision(subject, "held", f"by @{talk.hold.placed_by or 'the label'}")
        )
    for effect in effects:
        if effect.act is Act.PUBLISH:
            _publish(ctx, pr, verdict, policy, entry, talk, facts)
        elif effect.act is Act.APPROVE:
            if not ctx.dry_run:
                ctx.forge.approve(
                    pr.number, effect.head_sha, "opsvault: low tier, approved for merge"
                )
                entry.approved_head = effect.head_sha
            out.decisions.append(Decision(subject, "approved", effect.head_sha[:12]))
        elif effect.act is Act.MERGE:
            wait = _not_mergeable_yet(pr, out)
            if wait:
                # Asking would only earn a 405: come back within seconds.
                entry.due = render_iso(ctx.now + MERGE_RETRY_FIRST)  # not a refusal
                out.decisions.append(Decision(subject, "merge deferred", wait))
            else:
                _merge(ctx, pr, effect.head_sha, verdict, preview, effect.detail, out)
        elif effect.act is Act.NOTIFY:
            _notify(ctx, pr, verdict, policy, effect.detail)
            entry.notified_head = effect.head_sha
            out.decisions.append(Decision(subject, "notified", effect.detail))
        elif effect.act is Act.EXPIRE:
            _expire(ctx, pr, verdict, effect.detail, out)


def _not_mergeable_yet(pr: PullRequest, out: PullsOutcome) -> str:
    """Return why merging *pr* now would be refused as "try again later", or ""."""
    if out.merged:
        # Our merge moved main: Forgejo re-checks every other PR on it (§17).
        return "main moved in this tick; Forgejo re-checks this PR first"
    if pr.mergeable is False:
        return "Forgejo is still checking mergeability (or found a conflict)"
    return ""


def _bot_approval_live(ctx: PullContext, pr: PullRequest) -> bool:
    return any(
        same_login(r.reviewer, ctx.identity)
        and r.state is ReviewState.APPROVED
        and not r.dismissed
        and r.commit_id == pr.head_sha
        for r in ctx.forge.fetch_reviews(pr.number)
    )


def _approvals_needed(ctx: PullContext) -> int:
    if ctx.approvals_needed is None:
        protection = ctx.forge.fetch_branch_protection(ctx.mainline.branch)
        ctx.approvals_needed = protection.required_approvals if protection else 0
    return ctx.approvals_needed


def _summary(verdict: ChangeVerdict) -> str:
    flags = [
        f
        for f, on in (("refused", verdict.refused), ("admin only", verdict.protected))
        if on
    ]
    return verdict.tier.label + (f" ({', '.join(flags)})" if flags else "")


def who_may_merge(tier: Tier, protected: bool, policy: Policy) -> str:
    def names(p: Principals) -> str:
        users, teams = sorted(p.users), sorted(p.teams)
        return ", ".join([*(f"@{u}" for u in users), *teams]) or "nobody configured"

    if tier is Tier.HIGH or protected:
        return f"an admin ({names(policy.admins)}), never the proposer"
    if tier is Tier.MEDIUM or policy.settings(tier).merge is not MergeMode.AUTO:
        return f"a reviewer or admin ({names(policy.reviewers)}; {names(policy.admins)}), never the proposer"
    return "the dispatcher merges it"


def md_code(text: str) -> str:
    """Return *text* as a Markdown code span nothing inside it can close or escape.

    Paths, problem messages and reasons carry proposer-chosen text: rendered
    through ``repr`` (newlines and control characters escaped) with backticks
    escaped too, they can neither end the span nor hide later lines behind an
    HTML comment (security review SR-5).
    """
    return "`" + repr(text)[1:-1].replace("`", "\\x60") + "`"


def render_comment(
    pr: PullRequest,
    verdict: ChangeVerdict,
    policy: Policy,
    talk: Conversation | None = None,
    facts: PullFacts | None = None,
) -> str:
    lines = [
        TIER_MARKER,
        f"**opsvault**: this change is **{verdict.tier.label.upper()}** tier at `{pr.head_sha[:12]}`.",
        "",
    ]
    if verdict.refused:
        lines.append("It is **refused**: fix these problems and push again.")
        lines.extend(
            f"- {md_code(f.path)}: {md_code(p.path)}: {md_code(p.message)}"
            for f in verdict.files
            for p in f.problems
        )
        lines.append("")
    else:
        lines.append(
            f"Who may merge: {who_may_merge(verdict.tier, verdict.protected, policy)}."
        )
        window = policy.settings(verdict.tier).veto_window
        if verdict.tier is Tier.MEDIUM and window is not None and not verdict.protected:
            lines.append(
                f"The dispatcher merges it {render_duration(window)} after this head "
                "was first seen unless it is held: a reviewer or admin comments "
                "`/vault hold` (or adds the `vault/hold` label); only a reviewer or "
                "admin lifts a hold (`/vault release`), whoever placed it."
            )
        lines.append("")
    lines.append("Reasons:")
    lines.extend(f"- {md_code(r.render())}" for r in verdict.reasons)
    if talk is not None:
        section = talk.comment_section()
        if section:
            lines.append("")
            lines.extend(section)
        if talk.explain:
            lines.append("")
            lines.extend(explain(verdict, policy, talk, facts))
    return "\n".join(lines) + "\n"


def explain(
    verdict: ChangeVerdict,
    policy: Policy,
    talk: Conversation,
    facts: PullFacts | None,
) -> list[str]:
    """Return the answer to ``/vault explain``: each file's tier and what the PR waits for."""
    lines = ["Explanation (`/vault explain`):"]
    for f in verdict.files:
        flags = " (admin only)" if f.protected else ""
        lines.append(f"- {md_code(f.path)}: {f.classification.tier.label}{flags}")
        lines.extend(f"  - {md_code(r.render())}" for r in f.classification.reasons)
        lines.extend(f"  - problem: {md_code(p.message)}" for p in f.problems)
    tier = verdict.tier
    window = policy.settings(tier).veto_window
    if verdict.refused:
        lines.append("- it waits for a fixed push: it is refused")
    elif tier is Tier.LOW and not verdict.protected:
        lines.append("- the dispatcher merges it")
    elif tier is Tier.MEDIUM and window is not None and not verdict.protected:
        passes = render_iso(facts.head_seen_at + window) if facts else "?"
        hold = "held: " if talk.hold.held else ""
        lines.append(
            f"- {hold}the dispatcher merges it once the veto window of "
            f"{render_duration(window)} "
            f"has passed unvetoed (at {passes}), unless it is held or changes are requested"
        )
    else:
        lines.append(
            f"- it waits for {who_may_merge(tier, verdict.protected, policy)} to merge it"
        )
    return lines


def _publish(
    ctx: PullContext,
    pr: PullRequest,
    verdict: ChangeVerdict,
    policy: Policy,
    entry: PullEntry,
    talk: Conversation | None = None,
    facts: PullFacts | None = None,
) -> None:
    body = render_comment(pr, verdict, policy, talk, facts)
    fingerprint = hashlib.sha256(f"{pr.head_sha}\n{body}".encode()).hexdigest()[:16]
    if entry.published == fingerprint or ctx.dry_run:
        return
    label = "vault/tier/" + ("refused" if verdict.refused else verdict.tier.label)
    if not ctx.labels_ready:
        for name, (color, description) in LABELS.items():
            ctx.forge.ensure_label(name, color, description)
        ctx.labels_ready = True
    for stale in sorted(set(pr.labels) & ((set(LABELS) | LEGACY_LABELS) - {label})):
        ctx.forge.remove_label(pr.number, stale)
    if label not in pr.labels:
        ctx.forge.add_labels(pr.number, [label])
    state = StatusState.FAILURE if verdict.refused else StatusState.SUCCESS
    description = (
        f"refused ({verdict.tier.label})"
        if verdict.refused
        else f"{verdict.tier.label} tier"
    )
    ctx.forge.set_commit_status(
        pr.head_sha, CommitStatus(state, STATUS_CONTEXT, description)
    )
    ctx.forge.upsert_comment(pr.number, TIER_MARKER, body)
    entry.published = fingerprint


def _merge(
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


def _notify(
    ctx: PullContext, pr: PullRequest, verdict: ChangeVerdict, policy: Policy, why: str
) -> None:
    if ctx.dry_run:
        return
    settings = policy.settings(verdict.tier)
    approvers = (
        policy.admins
        if verdict.tier is Tier.HIGH or verdict.protected
        else policy.reviewers
    )
    notification = Notification(
        event="approval-needed",
        title=f"#{pr.number} needs a {verdict.tier.label}-tier merge",
        body=f"{pr.title}\n\n{why}. Who may merge: {who_may_merge(verdict.tier, verdict.protected, policy)}.",
        tier=verdict.tier.label,
        url=pr.html_url,
        action_ids=tuple(a.id for a in verdict.actions),
        mentions=tuple(sorted(approvers.users)) + tuple(sorted(approvers.teams)),
    )
    failed = ctx.notifier.notify(sinks_named(policy, settings.notify), notification)
    if failed:
        log.warning("pr#%s: notification to %s failed", pr.number, ", ".join(failed))


def _expire(
    ctx: PullContext,
    pr: PullRequest,
    verdict: ChangeVerdict,
    why: str,
    out: PullsOutcome,
) -> None:
    subject = f"pr#{pr.number}"
    out.decisions.append(Decision(subject, "expired", why))
    if ctx.dry_run:
        return
    ctx.forge.create_comment(pr.number, f"**opsvault**: closed as expired: {why}.")
    ctx.forge.close_pull_request(pr.number)
    ctx.cache.pulls.pop(str(pr.number), None)
    out.records.extend(
        _intents(ctx, pr, verdict, Outcome.EXPIRED, ReasonCode.DEADLINE_PASSED, why)
    )


def _closed_pull(
    ctx: PullContext, main: str, base: BaseState, pr: PullRequest, out: PullsOutcome
) -> None:
    ctx.cache.pulls.pop(str(pr.number), None)
    if pr.merged:
        if pr.merge_commit_sha:
            ctx.cache.merges[pr.merge_commit_sha] = pr.number
        return
    if not ctx.mainline.fetch_pull_head(pr.number, pr.head_sha):
        return
    verdict = closed_verdict(ctx.repo, main, pr.head_sha, base)
    if verdict is None:
        out.decisions.append(
            Decision(
                f"pr#{pr.number}",
                "not recorded",
                "its head shares no history with main",
            )
        )
        return
    rejection = judge_rejection(
        ctx.forge, ctx.repo, ctx.identity, main, base, pr, verdict
    )
    intents = _intents(
        ctx,
        pr,
        verdict,
        Outcome.REJECTED,
        ReasonCode.CLOSED_UNMERGED,
        rejection.detail,
        approver=rejection.approver,
        reserves=rejection.reserves,
    )
    if intents:
        out.records.extend(intents)
        out.decisions.append(
            Decision(
                f"pr#{pr.number}", "rejected", ", ".join(i.record.id for i in intents)
            )
        )


def _intents(
    ctx: PullContext,
    pr: PullRequest,
    verdict: ChangeVerdict,
    outcome: Outcome,
    reason: ReasonCode,
    detail: str,
    *,
    approver: str | None = None,
    reserves: bool = False,
) -> list[RecordIntent]:
    intents = []
    for f in verdict.files:
        if not is_action_path(f.path) or f.kind.value != "added":
            continue
        action_id = action_id_for(f.path)
        try:
            content = ctx.repo.read_file(pr.head_sha, f.path, MAX_FILE_BYTES)
        except FileTooLargeError:
            content = None  # refused at classification for its size; never read (I5)
        if id_problems(action_id) or content is None:
            continue  # an invalid id never becomes a record path
        # Only a valid action (which is also within the size limit) is copied to main.
        kept = content if f.action is not None and not f.problems else None
        record = ResultRecord(
            id=action_id,
            outcome=outcome,
            reason=reason,
            detail=detail
            if kept is not None
            else f"{detail}; the file was not a valid action, so only its hash is kept",
            tier=verdict.tier.label,
            reasons=tuple(r.render() for r in verdict.reasons),
            action_sha256=sha256(content),
            pr=pr.number,
            proposer=pr.author,
            approver=approver,
            head_commit=pr.head_sha,
            dispatcher=ctx.identity,
            ended_at=render_iso(ctx.now),
        )
        intents.append(
            RecordIntent(pull_record_stem(pr.number, action_id), kept, record, reserves)
        )
    return intents
