"""``GET /repos/{o}/{r}/issues/{index}/timeline`` and the label events it lists.

Forgejo v15.0.3 records every label added to or removed from an issue as a
comment of type ``label`` (models/issues/issue_label.go: ``newIssueLabel``
writes body ``"1"``, ``deleteIssueLabel`` an empty body; the poster is the
user who did it, also when an exclusive scope removed a sibling label). The
timeline lists those with the plain comments, oldest first, unpaginated when
no ``page`` is given (routers/api/v1/repo/issue_comment.go
``ListIssueCommentsAndTimeline``; services/convert/issue_comment.go
``ToTimelineComment``). Label events cannot be deleted through the API
(``deleteIssueComment`` answers 204 and does nothing for other types).

Closing or reopening an issue or pull request records a comment of type
``close`` / ``reopen`` whose poster is the user who did it and whose body is
empty (models/issues/comment.go ``CommentTypeClose`` = 2, ``CommentTypeReopen``
= 1; services/issue/status.go ``changeStatus``); like label events they cannot
be edited or deleted through the API. The routes that change an issue's state
call :func:`record_state_change`.

The label routes themselves live in ``routes_issues``; :func:`wrap` records
the events around whatever they do, by comparing an issue's labels before and
after, so it keeps working as those routes change.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass

from testing.fake_forgejo.core import ApiError, ForgeCore, Reply, Request
from testing.fake_forgejo.model import Label, Repo

Handler = Callable[[ForgeCore, Request], Reply]

LABEL_OPERATIONS = (
    "issueAddLabel",
    "issueRemoveLabel",
    "issueReplaceLabels",
    "issueClearLabels",
)


@dataclass(frozen=True, slots=True)
class LabelEvent:
    id: int
    issue: int
    actor: str
    label: Label
    added: bool
    at: str


@dataclass(frozen=True, slots=True)
class StateEvent:
    id: int
    issue: int
    actor: str
    closed: bool  # True: "close", False: "reopen"
    at: str


_STATE_EVENTS: weakref.WeakKeyDictionary[ForgeCore, dict[str, list[StateEvent]]] = (
    weakref.WeakKeyDictionary()
)


def state_events(forge: ForgeCore, repo: Repo) -> list[StateEvent]:
    """Return (and create) the close/reopen events recorded for *repo*."""
    return _STATE_EVENTS.setdefault(forge, {}).setdefault(repo.full_name, [])


def record_state_change(
    forge: ForgeCore, repo: Repo, number: int, actor: str | None, closed: bool
) -> None:
    """Record that *actor* closed (or reopened) issue *number* now."""
    if actor is None:
        return
    state_events(forge, repo).append(
        StateEvent(forge.state.new_id(), number, actor, closed, forge.now())
    )


_EVENTS: weakref.WeakKeyDictionary[ForgeCore, dict[str, list[LabelEvent]]] = (
    weakref.WeakKeyDictionary()
)


def label_events(forge: ForgeCore, repo: Repo) -> list[LabelEvent]:
    """Return (and create) the label events recorded for *repo*."""
    return _EVENTS.setdefault(forge, {}).setdefault(repo.full_name, [])


def record_label_change(
    forge: ForgeCore,
    repo: Repo,
    number: int,
    actor: str,
    before: list[int],
    after: list[int],
) -> None:
    """Record the label events that turn *before* into *after* on issue *number*."""
    events = label_events(forge, repo)
    now = forge.now()
    # deleteIssueLabel runs before newIssueLabel for exclusive siblings
    for label_id in [i for i in before if i not in after]:
        if label_id in repo.labels:
            events.append(
                LabelEvent(
                    forge.state.new_id(),
                    number,
                    actor,
                    repo.labels[label_id],
                    False,
                    now,
                )
            )
    for label_id in [i for i in after if i not in before]:
        if label_id in repo.labels:
            events.append(
                LabelEvent(
                    forge.state.new_id(),
                    number,
                    actor,
                    repo.labels[label_id],
                    True,
                    now,
                )
            )


def wrap(handlers: dict[str, Handler]) -> dict[str, Handler]:
    """Return the label handlers of *handlers*, recording label events around them."""

    def recording(inner: Handler) -> Handler:
        def handler(forge: ForgeCore, req: Request) -> Reply:
            repo = forge.find_repo(req)
            issue = forge.find_issue(repo, req)
            before = list(issue.labels)
            reply = inner(forge, req)
            if reply.status < 300 and req.viewer is not None:
                record_label_change(
                    forge, repo, issue.number, req.viewer, before, list(issue.labels)
                )
            return reply

        return handler

    return {op: recording(handlers[op]) for op in LABEL_OPERATIONS if op in handlers}


def _entry(
    forge: ForgeCore,
    repo: Repo,
    number: int,
    entry_id: int,
    kind: str,
    actor: str,
    body: str,
    created: str,
    updated: str,
    viewer: str | None,
) -> dict[str, object]:
    base = f"{forge.render.root}/{repo.full_name}"
    is_pull = repo.issues[number].pull is not None
    return {
        "id": entry_id,
        "type": kind,
        "html_url": f"{base}/issues/{number}#issuecomment-{entry_id}",
        "pull_request_url": f"{base}/pulls/{number}" if is_pull else "",
        "issue_url": "" if is_pull else f"{base}/issues/{number}",
        "user": forge.render.user(actor, viewer),
        "body": body,
        "created_at": created,
        "updated_at": updated,
        "old_project_id": 0,
        "project_id": 0,
        "old_milestone": None,
        "milestone": None,
        "tracked_time": None,
        "old_title": "",
        "new_title": "",
        "old_ref": "",
        "new_ref": "",
        "ref_issue": None,
        "ref_comment": None,
        "ref_action": "",
        "ref_commit_sha": "",
        "review_id": 0,
        "label": None,
        "assignee": None,
        "assignee_team": None,
        "removed_assignee": False,
        "resolve_doer": None,
        "dependent_issue": None,
    }


def timeline(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    issue = forge.find_issue(repo, req)
    if req.arg("since") or req.arg("before"):
        raise ApiError(422, "fake-forgejo: since/before are not implemented here")
    entries: list[tuple[int, dict[str, object]]] = []
    for comment_id in issue.comments:
        c = repo.comments[comment_id]
        entries.append(
            (
                c.id,
                _entry(
                    forge,
                    repo,
                    issue.number,
                    c.id,
                    "comment",
                    c.author,
                    c.body,
                    c.created,
                    c.updated,
                    req.viewer,
                ),
            )
        )
    for e in label_events(forge, repo):
        if e.issue != issue.number:
            continue
        entry = _entry(
            forge,
            repo,
            issue.number,
            e.id,
            "label",
            e.actor,
            "1" if e.added else "",
            e.at,
            e.at,
            req.viewer,
        )
        entry["label"] = forge.render.label(repo, e.label)
        entries.append((e.id, entry))
    for s in state_events(forge, repo):
        if s.issue != issue.number:
            continue
        kind = "close" if s.closed else "reopen"
        entries.append(
            (
                s.id,
                _entry(
                    forge,
                    repo,
                    issue.number,
                    s.id,
                    kind,
                    s.actor,
                    "",
                    s.at,
                    s.at,
                    req.viewer,
                ),
            )
        )
    entries.sort(key=lambda pair: pair[0])
    chunk = [entry for _id, entry in entries]
    if req.arg("page"):  # paginated only when asked; the count is the page's (sic)
        chunk, _headers = forge.paginate(req, chunk, link=False)
    return Reply(200, chunk, headers=(("X-Total-Count", str(len(chunk))),))


HANDLERS: dict[str, Handler] = {"issueGetCommentsAndTimeline": timeline}
