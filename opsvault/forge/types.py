"""The value types of the forge port (``opsvault.ports.Forge``) and two pure helpers.

Both adapters, ``ForgejoClient`` (``forge/client.py``, HTTP) and ``LocalForge``
(local git mode), speak in these types. They therefore carry no HTTP concepts:
no status codes, no API URLs (``html_url`` is for people).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from opsvault.errors import ForgeConflict


class PullState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class ListState(StrEnum):
    """Which pull requests or issues to list."""

    OPEN = "open"
    CLOSED = "closed"
    ALL = "all"


class FileStatus(StrEnum):
    """How a pull request changes one file (Forgejo never says ``modified``)."""

    ADDED = "added"
    DELETED = "deleted"
    RENAMED = "renamed"
    COPIED = "copied"
    CHANGED = "changed"
    UNCHANGED = "unchanged"


class ReviewState(StrEnum):
    APPROVED = "APPROVED"
    REQUEST_CHANGES = "REQUEST_CHANGES"
    COMMENT = "COMMENT"
    PENDING = "PENDING"
    REQUEST_REVIEW = "REQUEST_REVIEW"


class StatusState(StrEnum):
    PENDING = "pending"
    SUCCESS = "success"
    ERROR = "error"
    FAILURE = "failure"
    WARNING = "warning"


class Permission(StrEnum):
    """A user's overall access to the ops repository, weakest first."""

    NONE = "none"
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"
    OWNER = "owner"


class MergeStyle(StrEnum):
    MERGE = "merge"
    REBASE = "rebase"
    REBASE_MERGE = "rebase-merge"
    SQUASH = "squash"
    FAST_FORWARD_ONLY = "fast-forward-only"


@dataclass(frozen=True, slots=True)
class PullRequest:
    """One pull request as the forge reports it at the time it was read."""

    number: int
    title: str
    body: str
    state: PullState
    author: str
    head_ref: str
    head_sha: str
    base_ref: str
    html_url: str = ""
    draft: bool = False
    labels: tuple[str, ...] = ()
    base_sha: str | None = None
    mergeable: bool | None = None
    merged: bool = False
    merged_by: str | None = None
    merged_at: datetime | None = None
    merge_commit_sha: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    closed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ChangedFileInfo:
    """One file a pull request changes. ``filename`` is the old path for deletions."""

    filename: str
    status: FileStatus
    previous_filename: str | None = None
    additions: int = 0
    deletions: int = 0


@dataclass(frozen=True, slots=True)
class Review:
    id: int
    reviewer: str
    state: ReviewState
    commit_id: str
    body: str = ""
    official: bool = False
    stale: bool = False
    dismissed: bool = False
    submitted_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Comment:
    id: int
    author: str
    body: str
    html_url: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None


class TimelineKind(StrEnum):
    """What one timeline entry of a PR is (only the kinds opsvault reads)."""

    COMMENT = "comment"
    LABEL_ADDED = "label-added"
    LABEL_REMOVED = "label-removed"
    CLOSED = "closed"  # who closed the PR (Forgejo comment type "close")
    REOPENED = "reopened"


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One entry of a PR's timeline: a comment, or who added or removed a label.

    ``actor`` is the user who did it (for a comment, its author). Label events
    cannot be deleted or edited on the forge, plain comments can (by anyone
    with write access): ``edited`` says a comment changed after it was posted.
    """

    id: int
    kind: TimelineKind
    actor: str
    created_at: datetime | None = None
    body: str = ""
    label: str = ""
    edited: bool = False


@dataclass(frozen=True, slots=True)
class Label:
    name: str
    color: str = ""
    description: str = ""
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Issue:
    number: int
    title: str
    state: PullState
    labels: tuple[str, ...] = ()
    is_pull: bool = False
    html_url: str = ""
    updated_at: datetime | None = None
    closed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CommitStatus:
    """One status to publish on a commit (e.g. context ``vault/tier``)."""

    state: StatusState
    context: str
    description: str = ""
    target_url: str = ""


@dataclass(frozen=True, slots=True)
class BranchProtection:
    """The protection rule of a branch: only what opsvault reads.

    The dispatcher reads ``required_approvals`` (a medium merge waits for that
    many approvals). The guard self-check (``dispatcher/guard.py``, ADR 0018)
    reads the rest: who may push directly (the push whitelist, and the
    unprotected patterns that bypass it), whether stale approvals are
    dismissed, which files change only through a merged PR, and which teams
    Forgejo trusts to approve or merge. Every other field, the rule's name
    included, is the admin's business; adapters ignore it.
    """

    required_approvals: int = 0
    enable_push: bool = False
    enable_push_whitelist: bool = False
    push_whitelist_usernames: tuple[str, ...] = ()
    push_whitelist_teams: tuple[str, ...] = ()
    push_whitelist_deploy_keys: bool = False
    unprotected_file_patterns: str = ""
    dismiss_stale_approvals: bool = False
    protected_file_patterns: str = ""
    approvals_whitelist_teams: tuple[str, ...] = ()
    merge_whitelist_teams: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Proposal:
    """A new branch from *base* holding *files* in one commit, and a PR for it."""

    branch: str
    base: str
    title: str
    body: str
    message: str
    files: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class MergeResult:
    """A merged pull request. ``already_merged`` means an earlier attempt did it."""

    number: int
    head_sha: str
    merge_commit_sha: str | None
    already_merged: bool = False


def ensure_marker(body: str, marker: str) -> str:
    """Return *body* carrying *marker* on its first line."""
    if marker in body:
        return body
    return f"{marker}\n{body}"


def settle_merge(pr: PullRequest, head_sha: str) -> MergeResult | None:
    """Return what a merge pinned to *head_sha* already amounts to, judging from *pr*.

    ``MergeResult(already_merged=True)`` when *pr* is merged at *head_sha*; None
    when it is still open at *head_sha* (a merge may go ahead). Raise
    ForgeConflict when it was merged at another head, closed, or its head moved:
    the classified head is no longer what would be merged.
    """
    if pr.merged:
        if pr.head_sha != head_sha:
            raise ForgeConflict(
                f"PR #{pr.number}: merged at {pr.head_sha!r}, not at {head_sha!r}"
            )
        return MergeResult(
            pr.number, head_sha, pr.merge_commit_sha, already_merged=True
        )
    if pr.state is PullState.CLOSED:
        raise ForgeConflict(f"PR #{pr.number}: closed without merge")
    if pr.head_sha != head_sha:
        raise ForgeConflict(
            f"PR #{pr.number}: head moved from {head_sha!r} to {pr.head_sha!r}"
        )
    return None
