"""What a pull request shows: its tier label, commit status and the one kept-up-to-date comment.

Also the answer to ``/vault explain`` and the notification asking eligible
people to merge. Who may merge what is ``state.needs_admin`` /
``state.dispatcher_merges`` / ``state.veto_window_merges``: this module only
words it.
"""

from __future__ import annotations

import hashlib
import logging

from opsvault.dispatcher.cache import PullEntry
from opsvault.dispatcher.commands import Conversation
from opsvault.dispatcher.notify import sinks_named
from opsvault.dispatcher.pullphase import (
    PullContext,
)
from opsvault.dispatcher.state import (
    PullFacts,
    dispatcher_merges,
    needs_admin,
    veto_window_merges,
)
from opsvault.forge.types import (
    CommitStatus,
    PullRequest,
    StatusState,
)
from opsvault.messages import Notification
from opsvault.policy.classify import (
    ChangeVerdict,
)
from opsvault.policy.model import Policy, Principals
from opsvault.timefmt import render_iso
from opsvault.vault.duration import render_duration
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


def summary(verdict: ChangeVerdict) -> str:
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

    if needs_admin(tier, protected):
        return f"an admin ({names(policy.admins)}), never the proposer"
    if not dispatcher_merges(tier, protected, policy):
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
        window = veto_window_merges(verdict.tier, verdict.protected, policy)
        if window is not None:
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
    window = veto_window_merges(tier, verdict.protected, policy)
    if verdict.refused:
        lines.append("- it waits for a fixed push: it is refused")
    elif dispatcher_merges(tier, verdict.protected, policy):
        lines.append("- the dispatcher merges it")
    elif window is not None:
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


def publish(
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


def notify_approvers(
    ctx: PullContext, pr: PullRequest, verdict: ChangeVerdict, policy: Policy, why: str
) -> None:
    if ctx.dry_run:
        return
    settings = policy.settings(verdict.tier)
    approvers = (
        policy.admins
        if needs_admin(verdict.tier, verdict.protected)
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
