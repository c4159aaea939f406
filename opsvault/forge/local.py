"""``LocalForge``: the Forge port over a local ops repo, for local mode (no forge at all).

A pull request is a local branch ``vault/<id>`` or ``plan/<name>`` that main does
not contain yet (``local_branches.py``). What git cannot hold -- PR numbers,
state, who merged, labels, comments, reviews, commit statuses -- lives in
``<gitdir>/opsvault/forge.json`` (``local_state.py``), read and written under an
exclusive lock and replaced atomically, so several dispatcher processes and
``vault approve`` share it safely; the conversation's rules are in
``local_talk.py``.

Trust model: the host is the boundary. Whoever can write the repository can
write main directly, so nothing here defends against local users. See
docs/local-mode.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime

from opsvault.errors import ForgeConflict, ForgeNotFound, GitError
from opsvault.forge import local_talk as talk
from opsvault.forge.local_branches import ProposalBranches
from opsvault.forge.local_state import ForgeState, PullRecord, StateFile
from opsvault.forge.types import (
    BranchProtection,
    ChangedFileInfo,
    Comment,
    CommitStatus,
    FileStatus,
    Issue,
    Label,
    ListState,
    MergeResult,
    MergeStyle,
    Permission,
    Proposal,
    PullRequest,
    PullState,
    Review,
    ReviewState,
    TimelineEvent,
    TimelineKind,
    ensure_marker,
    settle_merge,
)
from opsvault.git.base import Identity
from opsvault.git.pygit2_repo import Pygit2OpsRepo
from opsvault.layout import DEFAULT_BRANCH
from opsvault.policy.change import ChangeKind

_FILE_STATUS = {
    ChangeKind.ADDED: FileStatus.ADDED,
    ChangeKind.MODIFIED: FileStatus.CHANGED,
    ChangeKind.DELETED: FileStatus.DELETED,
    ChangeKind.RENAMED: FileStatus.RENAMED,
}


class LocalForge:
    """The Forge port over a local ops repo, acting as *acting_user*."""

    def __init__(
        self,
        repo: Pygit2OpsRepo,
        acting_user: str,
        *,
        base_branch: str = DEFAULT_BRANCH,
        operator: str = "operator",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.repo = repo
        self.acting_user = acting_user
        self.base_branch = base_branch
        self.operator = operator
        self._clock = clock
        self._file = StateFile(repo.git_dir / "opsvault")
        self.state_path = self._file.path
        self._branches = ProposalBranches(repo, base_branch)

    def whoami(self) -> str:
        return self.acting_user

    @property
    def requests_made(self) -> int:
        return 0  # no network: nothing to budget

    def close(self) -> None:
        return None  # holds no open resources between calls

    @property
    def _identity(self) -> Identity:
        return Identity(self.acting_user, f"{self.acting_user}@localhost")

    @contextmanager
    def _session(self, *, discover: bool = False) -> Iterator[ForgeState]:
        """The state under the lock; with *discover*, first brought in line with the branches."""
        with self._file.session() as state:
            if discover:
                self._branches.discover(state, self._clock())
            yield state

    def _to_pull_request(self, pull: PullRecord, main: str) -> PullRequest:
        return self._branches.to_pull_request(pull, main)

    # -- pull requests -------------------------------------------------------------------

    def fetch_pull_requests(
        self,
        state: ListState = ListState.OPEN,
        *,
        updated_since: datetime | None = None,
    ) -> list[PullRequest]:
        with self._session(discover=True) as s:
            main = s.main_seen or self._branches.main()
            pulls = sorted(
                s.pulls.values(), key=lambda p: (p.updated_at, p.number), reverse=True
            )
            found: list[PullRequest] = []
            for pull in pulls:
                if updated_since is not None and pull.updated_at < updated_since:
                    break
                if state is ListState.ALL or str(pull.state) == str(state):
                    found.append(self._to_pull_request(pull, main))
            return found

    def fetch_pull_request(self, number: int) -> PullRequest:
        with self._session(discover=True) as s:
            return self._to_pull_request(s.pull(number), s.main_seen or "")

    def fetch_changed_files(self, number: int, head_sha: str) -> list[ChangedFileInfo]:
        with self._session(discover=True) as s:
            pull = s.pull(number)
            if pull.head_sha != head_sha:
                raise ForgeConflict(
                    f"PR #{number}: head is {pull.head_sha!r}, not {head_sha!r}"
                )
            base = pull.merge_base_sha if pull.merged else None
            changes = self.repo.changed_files(base or self._branches.main(), head_sha)
        return [
            ChangedFileInfo(c.path, _FILE_STATUS[c.kind], previous_filename=c.old_path)
            for c in changes
        ]

    def fetch_file(self, path: str, ref: str) -> bytes:
        try:
            content = self.repo.read_file(ref, path)
        except GitError as exc:
            raise ForgeNotFound(f"{path}@{ref}: {exc.problem}") from exc
        if content is None:
            raise ForgeNotFound(f"{path}@{ref}: no such file")
        return content

    def merge(
        self,
        number: int,
        head_sha: str,
        *,
        style: MergeStyle = MergeStyle.MERGE,
        message: str = "",
    ) -> MergeResult:
        with self._session(discover=True) as s:
            pull = s.pull(number)
            settled = settle_merge(
                self._to_pull_request(pull, self._branches.main()), head_sha
            )
            if settled is not None:
                return settled
            if style is not MergeStyle.MERGE:
                raise ForgeConflict(
                    f"PR #{number}: local mode merges with {MergeStyle.MERGE.value!r} "
                    f"only, not {style.value!r}"
                )
            text = message or (
                f"Merge pull request '{pull.title}' (#{number}) "
                f"from {pull.branch} into {self.base_branch}"
            )
            merge_commit, old_main = self._branches.merge_onto_main(
                number, head_sha, text, self._identity, int(self._clock().timestamp())
            )
            now = self._clock()
            s.pulls[number] = replace(
                pull,
                state=PullState.CLOSED,
                merged=True,
                merged_by=self.acting_user,
                merged_at=now,
                merge_commit_sha=merge_commit,
                merge_base_sha=old_main,
                closed_at=now,
                updated_at=now,
            )
            s.main_seen = merge_commit
            self._branches.delete_branch(pull.branch)
            self._branches.sync_worktree(old_main)
        return MergeResult(number, head_sha, merge_commit)

    def close_pull_request(self, number: int) -> PullRequest:
        return self.reject(number, "")

    def reject(self, number: int, reason: str) -> PullRequest:
        """Close open PR *number* (not part of the port), commenting *reason* if given.

        The branch is deleted; the record keeps its head. Closing a closed or
        merged PR changes nothing.
        """
        with self._session(discover=True) as s:
            pull = s.pull(number)
            if pull.state is PullState.OPEN:
                # Like Forgejo's "Close with comment": the comment, then the close.
                if reason:
                    talk.add_comment(s, number, self.acting_user, reason, self._clock())
                now = self._clock()
                pull = replace(
                    pull,
                    state=PullState.CLOSED,
                    closed_at=now,
                    closed_by=self.acting_user,
                    closed_reason=reason,
                    updated_at=now,
                )
                s.pulls[number] = pull
                # Like Forgejo's "close" timeline entry: who closed it, not editable.
                talk.record_event(
                    s, number, self.acting_user, "", TimelineKind.CLOSED, self._clock()
                )
                self._branches.delete_branch(pull.branch)
            return self._to_pull_request(pull, s.main_seen or "")

    def open_proposal(self, proposal: Proposal) -> PullRequest:
        with self._session() as s:
            self._branches.create_branch(
                proposal, self._identity, int(self._clock().timestamp())
            )
            self._branches.discover(s, self._clock())
            pull = next(
                (
                    p
                    for p in s.pulls.values()
                    if p.branch == proposal.branch and p.state is PullState.OPEN
                ),
                None,
            )
            if pull is None:
                raise ForgeConflict(
                    f"{proposal.branch}: {proposal.base!r} already holds this "
                    "content; nothing to propose"
                )
            pull = replace(pull, title=proposal.title, body=proposal.body)
            s.pulls[pull.number] = pull
            return self._to_pull_request(pull, s.main_seen or "")

    # -- the conversation (local_talk.py) ----------------------------------------------

    def fetch_comments(self, number: int) -> list[Comment]:
        with self._session() as s:
            return talk.comments_of(s, number)

    def fetch_timeline(self, number: int) -> list[TimelineEvent]:
        with self._session() as s:
            return talk.timeline_of(s, number)

    def create_comment(self, number: int, body: str) -> Comment:
        with self._session() as s:
            return talk.add_comment(s, number, self.acting_user, body, self._clock())

    def edit_comment(self, comment_id: int, body: str) -> Comment:
        with self._session() as s:
            return talk.edit_comment(
                s, comment_id, self.acting_user, body, self._clock()
            )

    def upsert_comment(self, number: int, marker: str, body: str) -> Comment:
        body = ensure_marker(body, marker)
        with self._session() as s:
            return talk.upsert_comment(
                s, number, self.acting_user, marker, body, self._clock()
            )

    def ensure_label(self, name: str, color: str, description: str = "") -> Label:
        with self._session() as s:
            return talk.ensure_label(s, name, color, description)

    def add_labels(self, number: int, names: Sequence[str]) -> list[Label]:
        with self._session() as s:
            return talk.add_labels(s, number, names, self.acting_user, self._clock())

    def remove_label(self, number: int, name: str) -> None:
        with self._session() as s:
            talk.remove_label(s, number, name, self.acting_user, self._clock())

    # -- statuses and reviews --------------------------------------------------------------

    def set_commit_status(self, sha: str, status: CommitStatus) -> None:
        try:
            commit = self.repo.resolve(sha)
        except GitError as exc:
            raise ForgeNotFound(f"commit {sha!r}: {exc.problem}") from exc
        with self._session() as s:
            s.statuses.setdefault(commit, {})[status.context] = status

    def fetch_commit_statuses(self, sha: str) -> list[CommitStatus]:
        """Return the latest status per context on commit *sha* (not part of the port)."""
        try:
            commit = self.repo.resolve(sha)
        except GitError as exc:
            raise ForgeNotFound(f"commit {sha!r}: {exc.problem}") from exc
        with self._session() as s:
            return sorted(s.statuses.get(commit, {}).values(), key=lambda x: x.context)

    def fetch_reviews(self, number: int) -> list[Review]:
        with self._session(discover=True) as s:
            pull = s.pull(number)
            return [
                replace(r, stale=r.commit_id != pull.head_sha)
                for n, r in s.reviews
                if n == number
            ]

    def approve(self, number: int, head_sha: str, body: str = "") -> Review:
        with self._session(discover=True) as s:
            pull = s.pull(number)
            if pull.state is not PullState.OPEN:
                raise ForgeConflict(f"PR #{number}: not open")
            if pull.head_sha != head_sha:
                raise ForgeConflict(
                    f"PR #{number}: head is {pull.head_sha!r}, not {head_sha!r}"
                )
            if pull.author == self.acting_user:
                raise ForgeConflict(
                    f"PR #{number}: {self.acting_user!r} proposed it and cannot approve it"
                )
            for n, review in s.reviews:
                if (
                    n == number
                    and review.reviewer == self.acting_user
                    and review.state is ReviewState.APPROVED
                    and review.commit_id == head_sha
                ):
                    return review
            review = Review(
                id=s.new_id(),
                reviewer=self.acting_user,
                state=ReviewState.APPROVED,
                commit_id=head_sha,
                body=body,
                submitted_at=self._clock(),
            )
            s.reviews.append((number, review))
            s.touch(number, self._clock())
            return review

    # -- people, issues, protection ------------------------------------------------------------

    def is_team_member(self, team: str, username: str) -> bool:
        return False  # no teams in local mode: policy names users

    def fetch_permission(self, username: str) -> Permission:
        return Permission.ADMIN if username == self.operator else Permission.READ

    def fetch_issues(
        self, state: ListState = ListState.ALL, *, updated_since: datetime | None = None
    ) -> list[Issue]:
        return []  # no issue tracker in local mode

    def fetch_branch_protection(self, branch: str) -> BranchProtection | None:
        return None
