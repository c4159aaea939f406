"""Local mode's PR conversation: comments, label events and the timeline, as Forgejo keeps them.

Operations on a ``ForgeState`` inside one locked session (``local_state.py``);
no I/O here. They mirror what the dispatcher relies on from Forgejo: a comment
may be edited only by its author, and an edit is visible (``edited``); label
and close events name who did them and cannot be edited; adding a label that
is not a repository label does nothing. This module changes when that
behaviour has to follow Forgejo more closely.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from opsvault.errors import ForgeAuthError, ForgeNotFound
from opsvault.forge.local_state import ForgeState
from opsvault.forge.types import Comment, Label, TimelineEvent, TimelineKind


def comments_of(state: ForgeState, number: int) -> list[Comment]:
    state.pull(number)
    return [
        c
        for n, c in sorted(state.comments.values(), key=lambda x: x[1].id)
        if n == number
    ]


def timeline_of(state: ForgeState, number: int) -> list[TimelineEvent]:
    """Comments and label (and close) events of PR *number*, oldest first."""
    state.pull(number)
    events = [e for n, e in state.label_events if n == number]
    events.extend(
        TimelineEvent(
            c.id,
            TimelineKind.COMMENT,
            c.author,
            c.created_at,
            body=c.body,
            edited=c.updated_at != c.created_at,
        )
        for n, c in state.comments.values()
        if n == number
    )
    return sorted(events, key=lambda e: e.id)  # ids are handed out in order


def record_event(
    state: ForgeState,
    number: int,
    actor: str,
    label: str,
    kind: TimelineKind,
    now: datetime,
) -> None:
    event = TimelineEvent(state.new_id(), kind, actor, now, label=label)
    state.label_events.append((number, event))


def add_comment(
    state: ForgeState, number: int, author: str, body: str, now: datetime
) -> Comment:
    state.pull(number)
    comment = Comment(
        id=state.new_id(), author=author, body=body, created_at=now, updated_at=now
    )
    state.comments[comment.id] = (number, comment)
    state.touch(number, now)
    return comment


def edit_comment(
    state: ForgeState, comment_id: int, editor: str, body: str, now: datetime
) -> Comment:
    found = state.comments.get(comment_id)
    if found is None:
        raise ForgeNotFound(f"comment {comment_id!r}: no such comment")
    number, comment = found
    if comment.author != editor:
        raise ForgeAuthError(
            f"comment {comment_id!r}: written by {comment.author!r}; "
            f"{editor!r} may not edit it"
        )
    if comment.body == body:
        return comment
    comment = replace(comment, body=body, updated_at=now)
    state.comments[comment_id] = (number, comment)
    state.touch(number, now)
    return comment


def upsert_comment(
    state: ForgeState, number: int, author: str, marker: str, body: str, now: datetime
) -> Comment:
    """Edit *author*'s first comment on *number* carrying *marker*, else add *body*."""
    state.pull(number)
    ours = sorted(
        (
            c
            for n, c in state.comments.values()
            if n == number and c.author == author and marker in c.body
        ),
        key=lambda c: c.id,
    )
    if not ours:
        return add_comment(state, number, author, body, now)
    return edit_comment(state, ours[0].id, author, body, now)


def ensure_label(
    state: ForgeState, name: str, color: str, description: str = ""
) -> Label:
    label = state.labels.get(name)
    if label is None:
        label = Label(name, color, description, id=state.new_id())
        state.labels[name] = label
    return label


def add_labels(
    state: ForgeState, number: int, names: Sequence[str], actor: str, now: datetime
) -> list[Label]:
    pull = state.pull(number)
    # Like Forgejo: names that are not repository labels are ignored.
    wanted = [n for n in names if n in state.labels and n not in pull.labels]
    if wanted:
        state.pulls[number] = replace(
            pull, labels=(*pull.labels, *dict.fromkeys(wanted))
        )
        for name in dict.fromkeys(wanted):
            record_event(state, number, actor, name, TimelineKind.LABEL_ADDED, now)
        state.touch(number, now)
    return [state.labels[n] for n in state.pulls[number].labels if n in state.labels]


def remove_label(
    state: ForgeState, number: int, name: str, actor: str, now: datetime
) -> None:
    pull = state.pull(number)
    if name in pull.labels:
        kept = tuple(n for n in pull.labels if n != name)
        state.pulls[number] = replace(pull, labels=kept)
        record_event(state, number, actor, name, TimelineKind.LABEL_REMOVED, now)
        state.touch(number, now)
