"""The hold (a reviewer's veto) and ``/vault`` comment commands, decided from a PR's timeline.

Pure: the shell passes the timeline (comments and label events, oldest first)
and the set of users eligible to place and lift a hold on this PR; nothing here
reads the clock or the forge.

Invariant I3: a veto is lifted only by someone who may place it. The hold is
derived from who added and removed the ``vault/hold`` label and from ``/vault
hold`` / ``/vault release`` comments, never from the label's mere presence:

- the label added by *anyone* places a hold (fail closed: a hold anybody can
  see is never weaker for the dispatcher than it looks);
- ``/vault hold`` by an eligible user places a hold; by anyone else it is refused;
- the label removed, or ``/vault release``, lifts the hold only when done by an
  eligible user; a removal by anyone else (the proposer, a bot, the dispatcher
  itself, e.g. through an exclusive label scope) is ignored and reported;
- the label still present holds too, whatever the timeline says.

Comments that were edited after posting are never commands: anyone with write
access can edit another user's comment on Forgejo, so an edited comment does
not speak for its author (docs/lifecycle.md "Holds and commands"). An edited
comment never releases; and since Forgejo's API cannot show what an edited
comment said first, an edited comment by an eligible user holds (fail closed,
gate review G-1, ADR 0009): it may have been a ``/vault hold`` the proposer
rewrote before a tick read it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from opsvault.forge.logins import login_in, same_login
from opsvault.forge.types import TimelineEvent, TimelineKind

HOLD_LABEL = "vault/hold"
PREFIX = "/vault"


class Command(StrEnum):
    EXPLAIN = "explain"
    HOLD = "hold"
    RELEASE = "release"
    RETRY = "retry"


@dataclass(frozen=True, slots=True)
class CommandRequest:
    """A comment asking for a ``/vault`` command."""

    comment_id: int
    user: str
    word: str  # what followed /vault (may name no command)
    edited: bool

    @property
    def command(self) -> Command | None:
        try:
            return Command(self.word)
        except ValueError:
            return None


def parse_command(body: str) -> str | None:
    """Return the word after ``/vault`` when *body*'s first non-blank line is a command, else None."""
    for line in body.splitlines():
        text = line.strip()
        if not text:
            continue
        parts = text.split()
        if parts[0] != PREFIX:
            return None
        return parts[1].lower() if len(parts) > 1 else ""
    return None


def command_requests(
    timeline: Iterable[TimelineEvent], identity: str
) -> list[CommandRequest]:
    """Return every ``/vault`` command comment on the timeline, oldest first (never our own)."""
    requests = []
    for event in timeline:
        if event.kind is not TimelineKind.COMMENT or same_login(event.actor, identity):
            continue
        word = parse_command(event.body)
        if word is not None:
            requests.append(CommandRequest(event.id, event.actor, word, event.edited))
    return requests


@dataclass(frozen=True, slots=True)
class HoldState:
    """Whether the PR is held, and the story behind it (shown in the PR comment)."""

    held: bool
    placed_by: str | None = None  # who placed the hold in force (None if not held)
    lifted_by: str | None = None  # who lifted the last hold, if one was lifted
    ignored: tuple[str, ...] = ()  # lifts that did not count, in words
    suspect: tuple[int, ...] = ()  # edited comments by eligible users, held on (G-1)


def refusal(request: CommandRequest, eligible: frozenset[str]) -> str | None:
    """Return why *request* is refused (None if accepted). Explain is open to everyone."""
    command = request.command
    if command is None:
        known = ", ".join(f"`{PREFIX} {c}`" for c in Command)
        return f"unknown command; known: {known}"
    if request.edited:
        return "the comment was edited after it was posted; post the command anew"
    if command is Command.EXPLAIN:
        return None
    if not login_in(request.user, eligible):
        return f"@{request.user} may not {command} this change (only {_who(command)})"
    return None


def _who(command: Command) -> str:
    if command is Command.RETRY:
        return "its proposer, reviewers and admins eligible for its tier"
    return "reviewers and admins eligible for its tier"


def derive_hold(
    timeline: Sequence[TimelineEvent],
    eligible: frozenset[str],
    *,
    identity: str,
    label_present: bool,
) -> HoldState:
    """Return the hold state of a PR from its *timeline* (see the module docstring).

    *eligible* are the users who may place and lift a hold on it (reviewers and
    admins for its tier, never its proposer, a bot or the dispatcher).
    """
    held = False
    placed_by: str | None = None
    lifted_by: str | None = None
    ignored: list[str] = []
    suspect: list[int] = []
    for event in timeline:
        place, lift = _hold_effect(event, identity)
        if (
            event.kind is TimelineKind.COMMENT
            and event.edited
            and login_in(event.actor, eligible)
        ):
            # What it said first is unknowable through the API: it may have
            # been a hold someone rewrote, so it holds (fail closed, G-1).
            suspect.append(event.id)
            place = True
        if place:
            if event.kind is TimelineKind.COMMENT and not login_in(
                event.actor, eligible
            ):
                continue  # a refused /vault hold (the label would have counted)
            held, placed_by = True, event.actor
        elif lift:
            if login_in(event.actor, eligible):
                if held:
                    lifted_by = event.actor
                held, placed_by = False, None
            elif held:
                how = (
                    "removed the label"
                    if event.kind is not TimelineKind.COMMENT
                    else "asked to release"
                )
                ignored.append(f"@{event.actor} {how}, which does not lift the hold")
    if label_present and not held:
        held, placed_by = True, placed_by
    return HoldState(
        held, placed_by if held else None, lifted_by, tuple(ignored), tuple(suspect)
    )


def _hold_effect(event: TimelineEvent, identity: str) -> tuple[bool, bool]:
    """Return (places a hold, lifts a hold) for one timeline event."""
    if event.kind is TimelineKind.LABEL_ADDED:
        return event.label == HOLD_LABEL, False
    if event.kind is TimelineKind.LABEL_REMOVED:
        return False, event.label == HOLD_LABEL
    if same_login(event.actor, identity) or event.edited:
        return False, False
    word = parse_command(event.body)
    return word == Command.HOLD, word == Command.RELEASE
