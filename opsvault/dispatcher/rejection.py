"""A pull request closed without merging: what it proposed, who rejected it and why (I7).

The record of a closed PR names every action it proposed, even when its head
no longer merges with main, and who rejected it: the user the timeline's
``close`` entry names, with their own unedited closing comment as the reason. Only a rejection by someone who could have approved the change
reserves its ids (ADR 0005); a proposer withdrawing their own PR reserves
nothing (security review SR-4).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from opsvault.changes import classify_commits, classify_landed
from opsvault.dispatcher.provenance import contributors, roles_of
from opsvault.dispatcher.state import may_merge
from opsvault.errors import GitError
from opsvault.forge.logins import same_login
from opsvault.forge.types import Comment, PullRequest, TimelineKind
from opsvault.git.base import OpsRepo
from opsvault.policy.classify import BaseState, ChangeVerdict
from opsvault.ports import Forge

CLOSING_WINDOW = timedelta(minutes=1)
MAX_REASON = 2000  # characters of a rejection comment kept in the record
NO_COMMENT = "the pull request was closed without merging"
EDITED_REASON = "(reason edited after posting; not trusted)"


@dataclass(frozen=True, slots=True)
class Rejection:
    """Who closed a PR unmerged (None when unknown or its proposer), why, and whether its ids stay used."""

    approver: str | None
    detail: str
    reserves: bool


def closed_verdict(
    repo: OpsRepo, main: str, head: str, base: BaseState
) -> ChangeVerdict | None:
    """Return what a closed PR proposed, even when its head no longer merges with main.

    Normally what merging the head would change (``classify_commits``). A head
    that conflicts with main is judged by what it adds over its merge base, its
    action files read from the head's own blobs: nothing is merged, and the
    record still names every action it proposed. None when the head shares no
    history with main.
    """
    try:
        return classify_commits(repo, main, head, base)
    except GitError:
        fork = repo.merge_base(main, head)
        if fork is None:
            return None
        return classify_landed(repo, fork, head, base)


def closer_of(forge: Forge, pr: PullRequest) -> str | None:
    """Return who closed *pr*: the actor of its newest ``close`` timeline entry, or None.

    Forgejo writes a timeline entry of type ``close`` whose poster is the user
    who closed the issue (models/issues/comment.go ``CommentTypeClose``;
    services/issue/status.go), and `vault reject` writes one in local mode.
    Unlike a comment it cannot be edited or deleted, so it is the only
    trustworthy answer to "who closed it" (gate review G-2).
    """
    closes = [
        e for e in forge.fetch_timeline(pr.number) if e.kind is TimelineKind.CLOSED
    ]
    return closes[-1].actor if closes else None


def closing_comment(
    forge: Forge, identity: str, pr: PullRequest, closer: str
) -> Comment | None:
    """Return the comment that closed *pr* unmerged, or None without one.

    The newest comment by *closer* (never the dispatcher) posted in the
    ``CLOSING_WINDOW`` before the close. Forgejo's "Close with comment" creates
    the comment, then closes the PR in the same request (Forgejo
    routers/web/repo/issue.go, ``NewComment``: the status change is deferred
    until the comment exists), and `vault reject --reason` does the same in
    local mode. A comment posted after the close, or by anyone but the closer,
    never counts (G-2).
    """
    if pr.closed_at is None or same_login(closer, identity):
        return None
    found = None
    for comment in forge.fetch_comments(pr.number):
        if comment.created_at is None or not same_login(comment.author, closer):
            continue
        if timedelta(0) <= pr.closed_at - comment.created_at <= CLOSING_WINDOW:
            found = comment
    return found


def _reason(comment: Comment | None) -> str:
    if comment is None:
        return ""
    if (
        comment.created_at is None
        or comment.updated_at is None
        or comment.updated_at != comment.created_at
    ):
        # Anyone with write access can edit the closer's comment before a tick
        # reads it (G-4): its text no longer speaks for the closer.
        return EDITED_REASON
    return _bounded(comment.body)


def judge_rejection(
    forge: Forge,
    repo: OpsRepo,
    identity: str,
    main: str,
    base: BaseState,
    pr: PullRequest,
    verdict: ChangeVerdict,
) -> Rejection:
    """Return who rejected *pr* and why, and whether that rejection reserves its ids.

    Only someone who could have approved the change under the base's policy
    (never its proposer or a co-author, a bot or the dispatcher) reserves them.
    """
    closer = closer_of(forge, pr)
    if closer is None:
        return Rejection(
            None, f"{NO_COMMENT}; no close event names who closed it", False
        )
    if same_login(closer, identity):
        return Rejection(None, f"{NO_COMMENT} by the dispatcher", False)
    closing = closing_comment(forge, identity, pr, closer)
    if closing is None:
        return Rejection(None, NO_COMMENT, False)
    reason = _reason(closing)
    if same_login(closer, pr.author):
        return Rejection(None, f"withdrawn by its proposer: {reason}", False)
    roles = roles_of(
        closer,
        pr.author,
        identity,
        base.policy,
        forge,
        contributors(repo, main, pr.head_sha),
    )
    return Rejection(
        closer,
        f"rejected by {closer}: {reason}",
        may_merge(verdict.tier, roles, verdict.protected),
    )


def _bounded(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MAX_REASON else text[:MAX_REASON] + " [...]"
