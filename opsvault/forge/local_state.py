"""``forge.json``: what LocalForge records beside git, its format and its lock.

A pull request's number, state, labels, comments, reviews and commit statuses
cannot live in git; LocalForge keeps them in ``<gitdir>/opsvault/forge.json``,
read and written under an exclusive ``flock`` (``forge.lock`` next to it) and
replaced atomically, so several dispatcher processes and ``vault approve``
share it safely. This module changes when what is recorded, or how, changes.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from opsvault.atomic_write import write_atomic
from opsvault.errors import ForgeError, ForgeNotFound, ForgeUnavailable, GitError
from opsvault.forge.types import (
    Comment,
    CommitStatus,
    Label,
    PullState,
    Review,
    ReviewState,
    StatusState,
    TimelineEvent,
    TimelineKind,
)
from opsvault.timefmt import parse_iso

STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class PullRecord:
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
class ForgeState:
    """The whole ``forge.json``: mutated only inside one locked session."""

    next_number: int = 1
    next_id: int = 1
    main_seen: str | None = None
    pulls: dict[int, PullRecord] = field(default_factory=dict)
    comments: dict[int, tuple[int, Comment]] = field(default_factory=dict)
    reviews: list[tuple[int, Review]] = field(default_factory=list)
    labels: dict[str, Label] = field(default_factory=dict)
    statuses: dict[str, dict[str, CommitStatus]] = field(default_factory=dict)
    # (PR number, event) for every label added or removed, like Forgejo's timeline
    label_events: list[tuple[int, TimelineEvent]] = field(default_factory=list)

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def pull(self, number: int) -> PullRecord:
        pull = self.pulls.get(number)
        if pull is None:
            raise ForgeNotFound(f"PR #{number}: no such pull request in local mode")
        return pull

    def touch(self, number: int, now: datetime) -> None:
        self.pulls[number] = replace(self.pull(number), updated_at=now)


# -- the format -------------------------------------------------------------------


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_time(value: Any) -> datetime | None:
    return None if value is None else parse_iso(str(value))


def _required_time(value: Any) -> datetime:
    return parse_iso(str(value))


def render_state(state: ForgeState) -> str:
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


def parse_state(text: str) -> ForgeState:
    data = json.loads(text)
    if data.get("version") != STATE_VERSION:
        raise ValueError(f"unsupported version {data.get('version')!r}")
    state = ForgeState(
        next_number=int(data["next_number"]),
        next_id=int(data["next_id"]),
        main_seen=data.get("main_seen"),
    )
    for p in data["pulls"]:
        state.pulls[int(p["number"])] = PullRecord(
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


# -- the locked file ---------------------------------------------------------------


class StateFile:
    """``forge.json`` in *directory*, with its lock file beside it."""

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self.path = directory / "forge.json"
        self._lock_path = directory / "forge.lock"

    @contextmanager
    def session(self) -> Iterator[ForgeState]:
        """Yield the state under the lock; write it back (atomically) if it changed."""
        where = str(self.path)
        try:
            self._dir.mkdir(exist_ok=True)
            lock = self._lock_path.open("a")
        except OSError as exc:
            raise ForgeUnavailable(f"{where}: {exc}") from exc
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                text = self._read_text()
                try:
                    state = parse_state(text) if text else ForgeState()
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

    def _save(self, state: ForgeState, old_text: str) -> None:
        rendered = render_state(state)
        if rendered != old_text:
            self._write_text(rendered)

    def _read_text(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""
        except OSError as exc:
            raise ForgeUnavailable(f"{self.path}: {exc}") from exc

    def _write_text(self, text: str) -> None:
        try:
            write_atomic(self.path, text.encode("utf-8"))
        except OSError as exc:
            raise ForgeUnavailable(f"{self.path}: {exc}") from exc
