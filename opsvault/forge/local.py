"""``LocalForge``: the Forge port over a local ops repo, for local mode (no forge at all).

A pull request is a local branch ``vault/<id>`` or ``plan/<name>`` that main does
not contain yet. What git cannot hold -- PR numbers, state, who merged, labels,
comments, reviews, commit statuses -- lives in ``<gitdir>/opsvault/forge.json``,
read and written under an exclusive ``flock`` (``forge.lock`` next to it) and
replaced atomically, so several dispatcher processes and ``vault approve`` share
it safely.

Trust model: the host is the boundary. Whoever can write the repository can
write main directly, so nothing here defends against local users. A PR's author
is the author name of its branch tip commit; a merge someone made by hand
(``git merge``) is attributed to the author of the merge commit. Creation and
update times are when LocalForge first saw a branch (or a new tip), never the
commit dates a proposer chose. See docs/local-mode.md.
"""

from __future__ import annotations

import fcntl
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from opsvault.atomic_write import write_atomic
from opsvault.errors import (
    ForgeAuthError,
    ForgeConflict,
    ForgeError,
    ForgeNotFound,
    ForgeUnavailable,
    GitError,
    PushRejected,
)
from opsvault.forge.base import (
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
    StatusState,
    TimelineEvent,
    TimelineKind,
    ensure_marker,
    settle_merge,
)
from opsvault.git.base import Identity
from opsvault.git.pygit2_repo import Pygit2OpsRepo
from opsvault.layout import DEFAULT_BRANCH, PROPOSAL_PREFIXES
from opsvault.policy.change import ChangeKind
from opsvault.timefmt import parse_iso

log = logging.getLogger(__name__)

STATE_VERSION = 1
MERGE_ATTEMPTS = 5
# How far back along main's first parents a hand-made merge commit is looked for.
_MERGE_SEARCH_DEPTH = 200
# What of a proposal's commit message is kept as its PR title and body.
MAX_TITLE_CHARS = 256
MAX_BODY_CHARS = 64 * 1024

_FILE_STATUS = {
    ChangeKind.ADDED: FileStatus.ADDED,
    ChangeKind.MODIFIED: FileStatus.CHANGED,
    ChangeKind.DELETED: FileStatus.DELETED,
    ChangeKind.RENAMED: FileStatus.RENAMED,
}


@dataclass(frozen=True, slots=True)
class _Pull:
    """What LocalForge records about one pull request (git holds the rest)."""

    number: int
    branch: str
    head_sha: str
    author: str
    title: str
    body: str
    created_at: datetime
    updated_at: datetime
    state: PullState = PullState.OPEN
    labels: tuple[str, ...] = ()
    closed_at: datetime | None = None
    closed_by: str | None = None
    closed_reason: str = ""
    merged: bool = False
    merged_by: str | None = None
    merged_at: datetime | None = None
    merge_commit_sha: str | None = None
    merge_base_sha: str | None = None  # main when it was merged: the diff's base


@dataclass(slots=True)
class _State:
    """The whole ``forge.json``: mutated only inside one locked session."""

    next_number: int = 1
    next_id: int = 1
    main_seen: str | None = None
    pulls: dict[int, _Pull] = field(default_factory=dict)
    comments: dict[int, tuple[int, Comment]] = field(default_factory=dict)
    reviews: list[tuple[int, Review]] = field(default_factory=list)
    labels: dict[str, Label] = field(default_factory=dict)
    statuses: dict[str, dict[str, CommitStatus]] = field(default_factory=dict)
    # (PR number, event) for every label added or removed, like Forgejo's timeline
    label_events: list[tuple[int, TimelineEvent]] = field(default_factory=list)

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1


# -- forge.json ------------------------------------------------------------------


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_time(value: Any) -> datetime | None:
    return None if value is None else parse_iso(str(value))


def _required_time(value: Any) -> datetime:
    return parse_iso(str(value))


def _render_state(state: _State) -> str:
    pulls = []
    for p in sorted(state.pulls.values(), key=lambda p: p.number):
        pulls.append(
            {
                "number": p.number,
                "branch": p.branch,
                "head_sha": p.head_sha,
                "author": p.author,
                "title": p.title,
                "body": p.body,
                "created_at": _time(p.created_at),
                "updated_at": _time(p.updated_at),
                "state": str(p.state),
                "labels": list(p.labels),
                "closed_at": _time(p.closed_at),
                "closed_by": p.closed_by,
                "closed_reason": p.closed_reason,
                "merged": p.merged,
                "merged_by": p.merged_by,
                "merged_at": _time(p.merged_at),
                "merge_commit_sha": p.merge_commit_sha,
                "merge_base_sha": p.merge_base_sha,
            }
        )
    data = {
        "version": STATE_VERSION,
        "next_number": state.next_number,
        "next_id": state.next_id,
        "main_seen": state.main_seen,
        "pulls": pulls,
        "comments": [
            {
                "id": c.id,
                "number": number,
                "author": c.author,
                "body": c.body,
                "created_at": _time(c.created_at),
                "updated_at": _time(c.updated_at),
            }
            for number, c in sorted(state.comments.values(), key=lambda x: x[1].id)
        ],
        "reviews": [
            {
                "id": r.id,
                "number": number,
                "reviewer": r.reviewer,
                "state": str(r.state),
                "commit_id": r.commit_id,
                "body": r.body,
                "submitted_at": _time(r.submitted_at),
            }
            for number, r in state.reviews
        ],
        "labels": [
            {"id": x.id, "name": x.name, "color": x.color, "description": x.description}
            for x in sorted(state.labels.values(), key=lambda x: x.name)
        ],
        "label_events": [
            {
                "id": e.id,
                "number": number,
                "actor": e.actor,
                "label": e.label,
                "added": e.kind is TimelineKind.LABEL_ADDED,
                "kind": e.kind.value,
                "at": _time(e.created_at),
            }
            for number, e in state.label_events
        ],
        "statuses": {
            sha: [
                {
                    "context": s.context,
                    "state": str(s.state),
                    "description": s.description,
                    "target_url": s.target_url,
                }
                for s in by_context.values()
            ]
            for sha, by_context in sorted(state.statuses.items())
        },
    }
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def _parse_state(text: str) -> _State:
    data = json.loads(text)
    if data.get("version") != STATE_VERSION:
        raise ValueError(f"unsupported version {data.get('version')!r}")
    state = _State(
        next_number=int(data["next_number"]),
        next_id=int(data["next_id"]),
        main_seen=data.get("main_seen"),
    )
    for p in data["pulls"]:
        state.pulls[int(p["number"])] = _Pull(
            number=int(p["number"]),
            branch=str(p["branch"]),
            head_sha=str(p["head_sha"]),
            author=str(p["author"]),
            title=str(p["title"]),
            body=str(p["body"]),
            created_at=_required_time(p["created_at"]),
            updated_at=_required_time(p["updated_at"]),
            state=PullState(p["state"]),
            labels=tuple(p["labels"]),
            closed_at=_parse_time(p["closed_at"]),
            closed_by=p["closed_by"],
            closed_reason=str(p["closed_reason"]),
            merged=bool(p["merged"]),
            merged_by=p["merged_by"],
            merged_at=_parse_time(p["merged_at"]),
            merge_commit_sha=p["merge_commit_sha"],
            merge_base_sha=p["merge_base_sha"],
        )
    for c in data["comments"]:
        state.comments[int(c["id"])] = (
            int(c["number"]),
            Comment(
                id=int(c["id"]),
                author=str(c["author"]),
                body=str(c["body"]),
                created_at=_parse_time(c["created_at"]),
                updated_at=_parse_time(c["updated_at"]),
            ),
        )
    for r in data["reviews"]:
        review = Review(
            id=int(r["id"]),
            reviewer=str(r["reviewer"]),
            state=ReviewState(r["state"]),
            commit_id=str(r["commit_id"]),
            body=str(r["body"]),
            submitted_at=_parse_time(r["submitted_at"]),
        )
        state.reviews.append((int(r["number"]), review))
    for x in data["labels"]:
        state.labels[str(x["name"])] = Label(
            name=str(x["name"]),
            color=str(x["color"]),
            description=str(x["description"]),
            id=int(x["id"]),
        )
    for e in data.get("label_events", []):  # absent in files written before holds
        kind = TimelineKind.LABEL_ADDED if e["added"] else TimelineKind.LABEL_REMOVED
        if "kind" in e:  # absent in files written before close events
            kind = TimelineKind(e["kind"])
        event = TimelineEvent(
            int(e["id"]), kind, str(e["actor"]), _parse_time(e["at"]), label=e["label"]
        )
        state.label_events.append((int(e["number"]), event))
    for sha, rows in data["statuses"].items():
        state.statuses[str(sha)] = {
            str(s["context"]): CommitStatus(
                state=StatusState(s["state"]),
                context=str(s["context"]),
                description=str(s["description"]),
                target_url=str(s["target_url"]),
            )
            for s in rows
        }
    return state


# -- the adapter -----------------------------------------------------------------


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
        self._dir = repo.git_dir / "opsvault"
        self.state_path = self._dir / "forge.json"
        self._lock_path = self._dir / "forge.lock"

    @property
    def _identity(self) -> Identity:
        return Identity(self.acting_user, f"{self.acting_user}@localhost")

    @property
    def _main_ref(self) -> str:
        return f"refs/heads/{self.base_branch}"

    # -- the locked session ----------------------------------------------------------

    @contextmanager
    def _session(self) -> Iterator[_State]:
        """Yield the state under the lock; write it back (atomically) if it changed."""
        where = str(self.state_path)
        try:
            self._dir.mkdir(exist_ok=True)
            lock = self._lock_path.open("a")
        except OSError as exc:
            raise ForgeUnavailable(f"{where}: {exc}") from exc
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                text = self._read_state_text()
                try:
                    state = _parse_state(text) if text else _State()
                except (ValueError, KeyError, TypeError) as exc:
                    raise ForgeError(
                        f"{where}: unreadable local forge state: {exc}; "
                        "restore it from a backup or move it away to start afresh"
                    ) from exc
                try:
                    yield state
                except GitError as exc:
                    raise ForgeError(f"local forge: {exc}") from exc
                except ForgeError:
                    # Methods check before they change anything, so what the state
                    # holds now (e.g. newly discovered branches) is consistent.
                    self._save(state, text)
                    raise
                self._save(state, text)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _save(self, state: _State, old_text: str) -> None:
        rendered = _render_state(state)
        if rendered != old_text:
            self._write_state_text(rendered)

    def _read_state_text(self) -> str:
        try:
            return self.state_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""
        except OSError as exc:
            raise ForgeUnavailable(f"{self.state_path}: {exc}") from exc

    def _write_state_text(self, text: str) -> None:
        try:
            write_atomic(self.state_path, text.encode("utf-8"))
        except OSError as exc:
            raise ForgeUnavailable(f"{self.state_path}: {exc}") from exc

    # -- discovery ---------------------------------------------------------------------

    def _main(self) -> str:
        return self.repo.resolve(self._main_ref)

    def _proposal_branches(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for prefix in PROPOSAL_PREFIXES:
            found.update(self.repo.branches(prefix))
        return found

    def _discover(self, state: _State) -> None:
        """Bring the recorded PRs in line with the branches (numbers in branch-name order)."""
        now = self._clock()
        main = self._main()
        main_moved = main != state.main_seen
        branches = self._proposal_branches()
        open_pulls = {
            p.branch: p for p in state.pulls.values() if p.state is PullState.OPEN
        }
        ended = {
            (p.branch, p.head_sha)
            for p in state.pulls.values()
            if p.state is PullState.CLOSED
        }
        for name in sorted(branches):
            tip = branches[name]
            pull = open_pulls.pop(name, None)
            if pull is not None:
                if pull.head_sha == tip and not main_moved:
                    continue
                if pull.head_sha != tip:
                    self._pin_head(pull.number, tip)
                if self.repo.is_ancestor(tip, main):
                    state.pulls[pull.number] = self._merged_by_hand(
                        replace(pull, head_sha=tip), main, now
                    )
                elif pull.head_sha != tip:
                    author = self.repo.commit_info(tip).author.name
                    state.pulls[pull.number] = replace(
                        pull, head_sha=tip, author=author, updated_at=now
                    )
                continue
            if (name, tip) in ended or self.repo.is_ancestor(tip, main):
                continue  # a closed proposal's leftover, or nothing to merge
            info = self.repo.commit_info(tip)
            title, _, body = info.message.strip().partition("\n")
            number = state.next_number
            state.next_number += 1
            self._pin_head(number, tip)
            state.pulls[number] = _Pull(
                number=number,
                branch=name,
                head_sha=tip,
                author=info.author.name,
                title=title.strip()[:MAX_TITLE_CHARS] or name,
                body=body.strip()[:MAX_BODY_CHARS],
                created_at=now,
                updated_at=now,
            )
        for pull in open_pulls.values():  # their branch is gone
            if self.repo.is_ancestor(pull.head_sha, main):
                state.pulls[pull.number] = self._merged_by_hand(pull, main, now)
            else:
                log.info(
                    "PR #%d: branch %r is gone; closing it", pull.number, pull.branch
                )
                state.pulls[pull.number] = replace(
                    pull,
                    state=PullState.CLOSED,
                    closed_at=now,
                    closed_reason="branch deleted",
                    updated_at=now,
                )
        state.main_seen = main

    def _pin_head(self, number: int, head: str) -> None:
        """Point ``refs/pull/<n>/head`` at *head*, as Forgejo does.

        It keeps the commits of closed and merged PRs (whose branches are
        deleted) safe from ``git gc``, so their diff can still be read.
        """
        ref = f"refs/pull/{number}/head"
        try:
            try:
                current: str | None = self.repo.resolve(ref)
            except GitError:
                current = None
            self.repo.update_ref(ref, head, current)
        except GitError as exc:
            log.warning("could not set %s to %s: %s", ref, head, exc)

    def _merged_by_hand(self, pull: _Pull, main: str, now: datetime) -> _Pull:
        """Record *pull* as merged outside LocalForge, by the author of its merge commit.

        A fast-forward leaves no merge commit: merged_by stays None, which the
        dispatcher refuses to fire (fail closed).
        """
        merged_by = merge_commit = merge_base = None
        merged_at = now
        for commit in self.repo.log_first_parent(main, _MERGE_SEARCH_DEPTH):
            info = self.repo.commit_info(commit)
            if pull.head_sha in info.parents[1:]:
                merged_by, merge_commit = info.author.name, info.id
                merge_base = info.parents[0]
                merged_at = datetime.fromtimestamp(info.time, UTC)
                break
        log.info("PR #%d: merged outside opsvault (by %r)", pull.number, merged_by)
        return replace(
            pull,
            state=PullState.CLOSED,
            merged=True,
            merged_by=merged_by,
            merged_at=merged_at,
            merge_commit_sha=merge_commit,
            merge_base_sha=merge_base,
            closed_at=merged_at,
            updated_at=now,
        )

    def _pull(self, state: _State, number: int) -> _Pull:
        pull = state.pulls.get(number)
        if pull is None:
            raise ForgeNotFound(f"PR #{number}: no such pull request in local mode")
        return pull

    def _to_pull_request(self, pull: _Pull, main: str) -> PullRequest:
        return PullRequest(
            number=pull.number,
            title=pull.title,
            body=pull.body,
            state=pull.state,
            author=pull.author,
            head_ref=pull.branch,
            head_sha=pull.head_sha,
            base_ref=self.base_branch,
            labels=pull.labels,
            base_sha=pull.merge_base_sha if pull.merged else main,
            merged=pull.merged,
            merged_by=pull.merged_by,
            merged_at=pull.merged_at,
            merge_commit_sha=pull.merge_commit_sha,
            created_at=pull.created_at,
            updated_at=pull.updated_at,
            closed_at=pull.closed_at,
        )

    def _touch(self, state: _State, number: int) -> None:
        pull = self._pull(state, number)
        state.pulls[number] = replace(pull, updated_at=self._clock())

    # -- pull requests -------------------------------------------------------------------

    def fetch_pull_requests(
        self,
        state: ListState = ListState.OPEN,
        *,
        updated_since: datetime | None = None,
    ) -> list[PullRequest]:
        with self._session() as s:
            self._discover(s)
            main = s.main_seen or self._main()
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
        with self._session() as s:
            self._discover(s)
            return self._to_pull_request(self._pull(s, number), s.main_seen or "")

    def fetch_changed_files(self, number: int, head_sha: str) -> list[ChangedFileInfo]:
        with self._session() as s:
            self._discover(s)
            pull = self._pull(s, number)
            if pull.head_sha != head_sha:
                raise ForgeConflict(
                    f"PR #{number}: head is {pull.head_sha!r}, not {head_sha!r}"
                )
            base = pull.merge_base_sha if pull.merged else None
            changes = self.repo.changed_files(base or self._main(), head_sha)
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
        with self._session() as s:
            self._discover(s)
            pull = self._pull(s, number)
            settled = settle_merge(
                self._to_pull_request(pull, self.repo.resolve(self._main_ref)), head_sha
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
            merge_commit, old_main = self._merge_onto_main(number, head_sha, text)
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
            self._delete_branch(pull.branch)
            self._sync_worktree(old_main)
        return MergeResult(number, head_sha, merge_commit)

    def _merge_onto_main(
        self, number: int, head_sha: str, message: str
    ) -> tuple[str, str]:
        """Create the merge commit and move main to it by compare-and-swap; return both ends."""
        when = int(self._clock().timestamp())
        for attempt in range(1, MERGE_ATTEMPTS + 1):
            main = self._main()
            try:
                commit = self.repo.merge(main, head_sha, message, self._identity, when)
            except GitError as exc:
                raise ForgeConflict(f"PR #{number}: cannot merge: {exc}") from exc
            try:
                self.repo.update_ref(self._main_ref, commit, main)
            except PushRejected:
                log.info(
                    "PR #%d: main moved during the merge (attempt %d)", number, attempt
                )
                continue
            return commit, main
        raise ForgeConflict(
            f"PR #{number}: {self.base_branch!r} kept moving; "
            f"gave up after {MERGE_ATTEMPTS} attempts"
        )

    def _delete_branch(self, branch: str) -> None:
        try:
            self.repo.delete_branch(branch)
        except GitError as exc:
            # The record keeps the head; a leftover branch is ignored until it moves.
            log.warning("could not delete branch %r: %s", branch, exc)

    def _sync_worktree(self, old_main: str) -> None:
        try:
            synced = self.repo.sync_worktree(self.base_branch, old_main)
        except GitError as exc:
            log.warning("work tree of %r not updated: %s", self.base_branch, exc)
            return
        if not synced:
            log.info(
                "work tree not updated: not on %r, or it has local changes",
                self.base_branch,
            )

    def close_pull_request(self, number: int) -> PullRequest:
        return self.reject(number, "")

    def reject(self, number: int, reason: str) -> PullRequest:
        """Close open PR *number* (not part of the port), commenting *reason* if given.

        The branch is deleted; the record keeps its head. Closing a closed or
        merged PR changes nothing.
        """
        with self._session() as s:
            self._discover(s)
            pull = self._pull(s, number)
            if pull.state is PullState.OPEN:
                # Like Forgejo's "Close with comment": the comment, then the close.
                if reason:
                    self._add_comment(s, number, reason)
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
                self._label_event(s, number, "", TimelineKind.CLOSED)
                self._delete_branch(pull.branch)
            return self._to_pull_request(pull, s.main_seen or "")

    def open_proposal(self, proposal: Proposal) -> PullRequest:
        if not proposal.branch.startswith(PROPOSAL_PREFIXES):
            raise ForgeError(
                f"{proposal.branch}: local-mode proposals are branches under "
                f"{' or '.join(repr(p) for p in PROPOSAL_PREFIXES)}"
            )
        files = dict(proposal.files)
        with self._session() as s:
            tip = self.repo.branches(proposal.branch).get(proposal.branch)
            if tip is None:
                try:
                    base = self.repo.resolve(f"refs/heads/{proposal.base}")
                except GitError as exc:
                    raise ForgeNotFound(f"{proposal.base}: no such branch") from exc
                commit = self.repo.commit_files(
                    base,
                    files,
                    proposal.message,
                    self._identity,
                    when=int(self._clock().timestamp()),
                )
                try:
                    self.repo.update_ref(f"refs/heads/{proposal.branch}", commit, None)
                    tip = commit
                except PushRejected:  # created meanwhile: judge it like an old one
                    tip = self.repo.resolve(f"refs/heads/{proposal.branch}")
            if any(self.repo.read_file(tip, p) != c for p, c in files.items()):
                raise ForgeConflict(
                    f"{proposal.branch}: the branch exists with other content"
                )
            self._discover(s)
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

    # -- comments ----------------------------------------------------------------------

    def fetch_comments(self, number: int) -> list[Comment]:
        with self._session() as s:
            self._pull(s, number)
            return [
                c
                for n, c in sorted(s.comments.values(), key=lambda x: x[1].id)
                if n == number
            ]

    def fetch_timeline(self, number: int) -> list[TimelineEvent]:
        with self._session() as s:
            self._pull(s, number)
            events = [e for n, e in s.label_events if n == number]
            events.extend(
                TimelineEvent(
                    c.id,
                    TimelineKind.COMMENT,
                    c.author,
                    c.created_at,
                    body=c.body,
                    edited=c.updated_at != c.created_at,
                )
                for n, c in s.comments.values()
                if n == number
            )
            return sorted(events, key=lambda e: e.id)  # ids are handed out in order

    def _label_event(
        self, state: _State, number: int, name: str, kind: TimelineKind
    ) -> None:
        event = TimelineEvent(
            state.new_id(), kind, self.acting_user, self._clock(), label=name
        )
        state.label_events.append((number, event))

    def _add_comment(self, state: _State, number: int, body: str) -> Comment:
        self._pull(state, number)
        now = self._clock()
        comment = Comment(
            id=state.new_id(),
            author=self.acting_user,
            body=body,
            created_at=now,
            updated_at=now,
        )
        state.comments[comment.id] = (number, comment)
        self._touch(state, number)
        return comment

    def create_comment(self, number: int, body: str) -> Comment:
        with self._session() as s:
            return self._add_comment(s, number, body)

    def _edit_comment(self, state: _State, comment_id: int, body: str) -> Comment:
        found = state.comments.get(comment_id)
        if found is None:
            raise ForgeNotFound(f"comment {comment_id!r}: no such comment")
        number, comment = found
        if comment.author != self.acting_user:
            raise ForgeAuthError(
                f"comment {comment_id!r}: written by {comment.author!r}; "
                f"{self.acting_user!r} may not edit it"
            )
        if comment.body == body:
            return comment
        comment = replace(comment, body=body, updated_at=self._clock())
        state.comments[comment_id] = (number, comment)
        self._touch(state, number)
        return comment

    def edit_comment(self, comment_id: int, body: str) -> Comment:
        with self._session() as s:
            return self._edit_comment(s, comment_id, body)

    def upsert_comment(self, number: int, marker: str, body: str) -> Comment:
        body = ensure_marker(body, marker)
        with self._session() as s:
            self._pull(s, number)
            ours = sorted(
                (
                    c
                    for n, c in s.comments.values()
                    if n == number and c.author == self.acting_user and marker in c.body
                ),
                key=lambda c: c.id,
            )
            if not ours:
                return self._add_comment(s, number, body)
            return self._edit_comment(s, ours[0].id, body)

    # -- labels --------------------------------------------------------------------------

    def ensure_label(self, name: str, color: str, description: str = "") -> Label:
        with self._session() as s:
            label = s.labels.get(name)
            if label is None:
                label = Label(name, color, description, id=s.new_id())
                s.labels[name] = label
            return label

    def add_labels(self, number: int, names: Sequence[str]) -> list[Label]:
        with self._session() as s:
            pull = self._pull(s, number)
            # Like Forgejo: names that are not repository labels are ignored.
            wanted = [n for n in names if n in s.labels and n not in pull.labels]
            if wanted:
                s.pulls[number] = replace(
                    pull, labels=(*pull.labels, *dict.fromkeys(wanted))
                )
                for name in dict.fromkeys(wanted):
                    self._label_event(s, number, name, TimelineKind.LABEL_ADDED)
                self._touch(s, number)
            return [s.labels[n] for n in s.pulls[number].labels if n in s.labels]

    def remove_label(self, number: int, name: str) -> None:
        with self._session() as s:
            pull = self._pull(s, number)
            if name in pull.labels:
                kept = tuple(n for n in pull.labels if n != name)
                s.pulls[number] = replace(pull, labels=kept)
                self._label_event(s, number, name, TimelineKind.LABEL_REMOVED)
                self._touch(s, number)

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
        with self._session() as s:
            self._discover(s)
            pull = self._pull(s, number)
            return [
                replace(r, stale=r.commit_id != pull.head_sha)
                for n, r in s.reviews
                if n == number
            ]

    def approve(self, number: int, head_sha: str, body: str = "") -> Review:
        with self._session() as s:
            self._discover(s)
            pull = self._pull(s, number)
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
            self._touch(s, number)
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
