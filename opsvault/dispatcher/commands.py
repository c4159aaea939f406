"""Read a PR's conversation: its hold and its ``/vault`` commands (the shell around ``hold.py``).

One timeline request per PR looked at. Who may place or lift a hold, or ask
for a retry, is resolved through the same rules as merging (``provenance.eligible_users``,
over ``roles_of`` and ``may_merge``): reviewers and admins eligible for the PR's tier, never its
proposer, a bot or the dispatcher.

A command is acted on once: the ids of handled command comments are kept in the
PR's living comment (``<!-- opsvault:handled 12,40 -->``), which every replica
reads before acting. Acting means: ``/vault hold`` adds the ``vault/hold``
label (so the hold outlives a deleted comment: label events cannot be deleted
on Forgejo), ``/vault release`` removes it, ``/vault retry`` makes the PR due
now, ``/vault explain`` adds an explanation to the living comment. The hold
itself is always derived from the whole timeline (``hold.derive_hold``), so a
tampered or lost list of handled ids can never lift one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from opsvault.dispatcher.hold import (
    HOLD_LABEL,
    Command,
    CommandRequest,
    HoldState,
    command_requests,
    derive_hold,
    refusal,
)
from opsvault.dispatcher.provenance import contributors, eligible_users
from opsvault.forge.logins import same_login
from opsvault.forge.types import PullRequest, TimelineEvent, TimelineKind
from opsvault.git.base import OpsRepo
from opsvault.policy.classify import ChangeVerdict
from opsvault.policy.model import Policy
from opsvault.ports import Forge

HANDLED_RE = re.compile(r"<!-- opsvault:handled ([0-9,]*) -->")
HOLD_COLOR = "b71c1c"
HOLD_DESCRIPTION = "opsvault: held by a reviewer; the dispatcher does not merge it"
MAX_SHOWN = 20  # command lines shown in the living comment (newest)


@dataclass(frozen=True, slots=True)
class Answer:
    """What became of one command comment (rendered in the living comment)."""

    request: CommandRequest
    refused: str | None

    def render(self) -> str:
        what = f"@{self.request.user} `/vault {self.request.word}`"
        where = f"(comment {self.request.comment_id})"
        if self.refused:
            return f"- {what} {where}: refused: {self.refused}"
        return f"- {what} {where}: {_DONE[self.request.command or Command.EXPLAIN]}"


_DONE = {
    Command.EXPLAIN: "explained below",
    Command.HOLD: "held (label `vault/hold` added)",
    Command.RELEASE: "released (label `vault/hold` removed)",
    Command.RETRY: "the merge is attempted again now",
}


@dataclass(slots=True)
class Conversation:
    """A PR's hold and commands as read this tick."""

    hold: HoldState
    answers: list[Answer] = field(default_factory=list)
    handled: frozenset[int] = frozenset()
    explain: bool = False
    retry: bool = False  # a new, accepted /vault retry: the PR is due now
    done: list[str] = field(default_factory=list)  # what was executed this tick

    def comment_section(self) -> list[str]:
        """Return the lines the living comment shows about the hold and the commands."""
        lines = []
        hold = self.hold
        if hold.held:
            who = f" by @{hold.placed_by}" if hold.placed_by else ""
            lines.append(
                f"**Held**{who}: the dispatcher does not merge this change until an "
                "eligible reviewer or admin lifts the hold (`/vault release`, or removes "
                "the `vault/hold` label)."
            )
        for note in hold.ignored:
            lines.append(f"- {note}")
        for comment in hold.suspect:
            lines.append(
                f"- comment {comment} by an eligible user was edited after posting: "
                "what it said first cannot be read, so it counts as a hold"
            )
        shown = self.answers[-MAX_SHOWN:]
        if shown:
            lines.append("")
            lines.append("Commands:")
            lines.extend(a.render() for a in shown)
        if self.handled:
            ids = ",".join(str(i) for i in sorted(self.handled))
            lines.append(f"<!-- opsvault:handled {ids} -->")
        return lines


def _handled_ids(
    timeline: Sequence[TimelineEvent], identity: str, marker: str
) -> set[int]:
    ids: set[int] = set()
    for event in timeline:
        if (
            event.kind is TimelineKind.COMMENT
            and same_login(event.actor, identity)
            and marker in event.body
        ):
            for match in HANDLED_RE.finditer(event.body):
                ids.update(int(x) for x in match.group(1).split(",") if x)
    return ids


def read_conversation(
    forge: Forge,
    repo: OpsRepo,
    main: str,
    pr: PullRequest,
    verdict: ChangeVerdict,
    policy: Policy,
    identity: str,
    marker: str,
    *,
    dry_run: bool = False,
) -> Conversation:
    """Read *pr*'s timeline, act on its new commands once, and return its hold state."""
    timeline = forge.fetch_timeline(pr.number)
    requests = command_requests(timeline, identity)
    deciders = {r.user for r in requests} | {
        e.actor
        for e in timeline
        if (e.kind is TimelineKind.LABEL_REMOVED and e.label == HOLD_LABEL)
        or (e.kind is TimelineKind.COMMENT and e.edited)  # may hold (G-1)
    }
    authors = contributors(repo, main, pr.head_sha) if deciders else frozenset()
    eligible = eligible_users(deciders, pr, verdict, policy, identity, forge, authors)
    handled = _handled_ids(timeline, identity, marker)
    labels = set(pr.labels)
    conversation = Conversation(HoldState(False))
    for request in requests:
        refused = refusal(request, _eligible_for(request, eligible, pr))
        conversation.answers.append(Answer(request, refused))
        if refused is None and request.command is Command.EXPLAIN:
            conversation.explain = True
        if request.comment_id in handled or refused is not None or dry_run:
            continue
        command = request.command
        if command is Command.HOLD and HOLD_LABEL not in labels:
            forge.ensure_label(HOLD_LABEL, HOLD_COLOR, HOLD_DESCRIPTION)
            forge.add_labels(pr.number, [HOLD_LABEL])
            labels.add(HOLD_LABEL)
        elif command is Command.RELEASE and HOLD_LABEL in labels:
            forge.remove_label(pr.number, HOLD_LABEL)
            labels.discard(HOLD_LABEL)
        elif command is Command.RETRY:
            conversation.retry = True
        conversation.done.append(f"{command} (comment {request.comment_id})")
    conversation.handled = frozenset(handled | {r.comment_id for r in requests})
    conversation.hold = derive_hold(
        timeline, eligible, identity=identity, label_present=HOLD_LABEL in labels
    )
    if conversation.hold.suspect and HOLD_LABEL not in labels and not dry_run:
        # Pin the hold to a label event: the comment can be edited or deleted
        # again, the dispatcher's label event cannot (G-1, ADR 0009).
        forge.ensure_label(HOLD_LABEL, HOLD_COLOR, HOLD_DESCRIPTION)
        forge.add_labels(pr.number, [HOLD_LABEL])
        ids = ", ".join(str(i) for i in conversation.hold.suspect)
        conversation.done.append(f"hold (edited comment {ids})")
    return conversation


def _eligible_for(
    request: CommandRequest, eligible: frozenset[str], pr: PullRequest
) -> frozenset[str]:
    if request.command is Command.RETRY and same_login(request.user, pr.author):
        return eligible | {request.user}  # asking again to merge bypasses nothing
    return eligible
