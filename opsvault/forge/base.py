"""The forge port: the calls the dispatcher and planner make, and their value types.

Two adapters implement :class:`Forge`: ``ForgejoClient`` (``forge/client.py``,
HTTP) and ``LocalForge`` (local git mode). The value types therefore carry no
HTTP concepts: no status codes, no API URLs (``html_url`` is for people).

Every method raises only :class:`opsvault.errors.ForgeError` subclasses for
expected failures: ``ForgeAuthError`` (credentials or privilege),
``ForgeNotFound``, ``ForgeConflict`` (the state moved under us, e.g. a head
that no longer matches), ``ForgeUnavailable`` (try again on the next tick).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

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
    """The protection rule of a branch (only the fields opsvault checks)."""

    rule_name: str
    enable_push: bool = False
    enable_push_whitelist: bool = False
    push_whitelist_usernames: tuple[str, ...] = ()
    push_whitelist_teams: tuple[str, ...] = ()
    enable_merge_whitelist: bool = False
    merge_whitelist_usernames: tuple[str, ...] = ()
    merge_whitelist_teams: tuple[str, ...] = ()
    required_approvals: int = 0
    enable_approvals_whitelist: bool = False
    approvals_whitelist_usernames: tuple[str, ...] = ()
    approvals_whitelist_teams: tuple[str, ...] = ()
    enable_status_check: bool = False
    status_check_contexts: tuple[str, ...] = ()
    block_on_rejected_reviews: bool = False
    block_on_outdated_branch: bool = False
    dismiss_stale_approvals: bool = False
    ignore_stale_approvals: bool = False
    apply_to_admins: bool = False
    protected_file_patterns: str = ""


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


class Forge(Protocol):
    """The forge calls opsvault makes; one instance serves one ops repository."""

    def fetch_pull_requests(
        self,
        state: ListState = ListState.OPEN,
        *,
        updated_since: datetime | None = None,
    ) -> list[PullRequest]:
        """Return PRs in *state*, most recently updated first.

        With *updated_since*, stop at the first PR updated before it (a
        watermark), so an idle tick costs a constant number of requests.
        """
        ...

    def fetch_pull_request(self, number: int) -> PullRequest:
        """Return PR *number*; raise ``ForgeNotFound`` if there is none."""
        ...

    def fetch_changed_files(self, number: int, head_sha: str) -> list[ChangedFileInfo]:
        """Return every file PR *number* changes at *head_sha*.

        Raise ``ForgeConflict`` if the forge computed the list at another head
        (it lags right after a push); the caller retries on the next tick.
        """
        ...

    def fetch_file(self, path: str, ref: str) -> bytes:
        """Return the bytes of *path* at *ref* (branch or commit SHA)."""
        ...

    def fetch_reviews(self, number: int) -> list[Review]:
        """Return every visible review of PR *number*, oldest first."""
        ...

    def fetch_comments(self, number: int) -> list[Comment]:
        """Return every comment on the conversation of PR/issue *number*."""
        ...

    def fetch_timeline(self, number: int) -> list[TimelineEvent]:
        """Return the comments and label events of PR/issue *number*, oldest first.

        Other kinds of timeline entries are left out. Label events name the
        user who added or removed the label (the hold of docs/lifecycle.md is
        derived from them, never from the label's presence alone).
        """
        ...

    def create_comment(self, number: int, body: str) -> Comment:
        """Post a new comment on PR/issue *number*."""
        ...

    def edit_comment(self, comment_id: int, body: str) -> Comment:
        """Replace the body of comment *comment_id*."""
        ...

    def upsert_comment(self, number: int, marker: str, body: str) -> Comment:
        """Keep exactly one comment of ours carrying *marker* on *number*.

        Edit our comment whose body contains *marker* (only if its body differs),
        else post *body*. *marker* is a hidden HTML comment like
        ``<!-- opsvault:tier -->`` and is added to *body* if missing.
        Comments by other users never match, even if they carry the marker.
        """
        ...

    def ensure_label(self, name: str, color: str, description: str = "") -> Label:
        """Return the repository label *name*, creating it if it is missing."""
        ...

    def add_labels(self, number: int, names: Sequence[str]) -> list[Label]:
        """Add existing labels *names* to *number*; return the resulting labels."""
        ...

    def remove_label(self, number: int, name: str) -> None:
        """Remove label *name* from *number*; absent labels are ignored."""
        ...

    def set_commit_status(self, sha: str, status: CommitStatus) -> None:
        """Publish *status* on commit *sha*; the latest status per context wins."""
        ...

    def approve(self, number: int, head_sha: str, body: str = "") -> Review:
        """Approve PR *number* at *head_sha*."""
        ...

    def merge(
        self,
        number: int,
        head_sha: str,
        *,
        style: MergeStyle = MergeStyle.MERGE,
        message: str = "",
    ) -> MergeResult:
        """Merge PR *number* only if its head is still *head_sha*.

        Never merges twice: if an earlier, ambiguous attempt already merged the PR
        at *head_sha*, return ``already_merged=True``. Raise ``ForgeConflict``
        when the head moved, the PR is closed, or the forge refuses the merge.
        """
        ...

    def close_pull_request(self, number: int) -> PullRequest:
        """Close PR *number* without merging; closing a closed PR is a no-op."""
        ...

    def open_proposal(self, proposal: Proposal) -> PullRequest:
        """Create the branch and commit of *proposal* and open its PR.

        Safe to call again after a failure: an existing branch with the same
        content, or an existing open PR for the branch, is reused.
        """
        ...

    def is_team_member(self, team: str, username: str) -> bool:
        """Return whether *username* is in *team*, written ``org/team``."""
        ...

    def fetch_permission(self, username: str) -> Permission:
        """Return the overall access *username* has to the ops repository."""
        ...

    def fetch_issues(
        self, state: ListState = ListState.ALL, *, updated_since: datetime | None = None
    ) -> list[Issue]:
        """Return issues (not PRs) in *state*, optionally only those updated since."""
        ...

    def fetch_branch_protection(self, branch: str) -> BranchProtection | None:
        """Return the protection rule named *branch*, or None if there is none."""
        ...


def ensure_marker(body: str, marker: str) -> str:
    """Return *body* carrying *marker* on its first line."""
    if marker in body:
        return body
    return f"{marker}\n{body}"


def labels_named(labels: Iterable[Label]) -> tuple[str, ...]:
    return tuple(label.name for label in labels)


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
