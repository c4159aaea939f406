"""Issue endpoints (planner), comments and labels; PRs share the issue numbers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from testing.fake_forgejo.core import ApiError, ForgeCore, Reply, Request
from testing.fake_forgejo.model import Access, Comment, Issue, Label, Repo
from testing.fake_forgejo.routes_timeline import record_state_change

Handler = Callable[[ForgeCore, Request], Reply]

_ISSUE_SORTS: dict[str, tuple[Callable[[Issue], object], bool]] = {
    "oldest": (lambda i: (i.created, i.id), False),
    "recentupdate": (lambda i: (i.updated, i.id), True),
    "leastupdate": (lambda i: (i.updated, i.id), False),
    "mostcomment": (lambda i: (len(i.comments), i.id), True),
    "leastcomment": (lambda i: (len(i.comments), i.id), False),
}


def _moment(text: str, name: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise ApiError(422, f"{name}: {text!r} is not RFC 3339") from exc


def list_issues(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    state, kind = req.arg("state", "open"), req.arg("type")
    issues = [
        i
        for i in repo.issues.values()
        if state in {"all", i.state}
        and (not kind or (kind == "pulls") == (i.pull is not None))
    ]
    if since := req.arg("since"):
        issues = [
            i
            for i in issues
            if datetime.fromisoformat(i.updated) >= _moment(since, "since")
        ]
    if before := req.arg("before"):
        issues = [
            i
            for i in issues
            if datetime.fromisoformat(i.updated) <= _moment(before, "before")
        ]
    usable = forge.state.usable_labels(repo)
    if names := {n.strip() for n in req.arg("labels").split(",") if n.strip()}:
        issues = [
            i
            for i in issues
            if names <= {usable[x].name for x in i.labels if x in usable}
        ]
    if author := req.arg("created_by"):
        issues = [i for i in issues if i.author.lower() == author.lower()]
    if q := req.arg("q").lower():
        issues = [i for i in issues if q in i.title.lower() or q in i.body.lower()]
    tips = repo.git.branch_tips()  # one read of every branch for the listing
    for issue in issues:
        if issue.pull is not None:
            forge.sync_pull(repo, issue, tips)
    key, reverse = _ISSUE_SORTS.get(
        req.arg("sort"), (lambda i: (i.created, i.id), True)
    )
    issues.sort(key=key, reverse=reverse)
    chunk, headers = forge.paginate(req, issues)
    return Reply(
        200, [forge.render.issue(repo, i, req.viewer) for i in chunk], headers=headers
    )


def get_issue(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    return Reply(200, forge.render.issue(repo, forge.find_issue(repo, req), req.viewer))


def create_issue(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    body = req.body or {}
    if not body.get("title"):
        raise ApiError(422, "[Title]: Required")
    assert req.viewer is not None
    number = forge.add_issue(
        repo.full_name, body["title"], author=req.viewer, body=body.get("body", "")
    )
    issue = repo.issues[number]
    issue.labels = [i for i in body.get("labels", []) if i in repo.labels]
    return Reply(201, forge.render.issue(repo, issue, req.viewer))


def edit_issue(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    issue = forge.find_issue(repo, req)
    if issue.author != req.viewer:
        forge.require(repo, req, Access.WRITE)
    body = req.body or {}
    if "state" in body and body["state"] != issue.state:
        if issue.pull is not None and issue.pull.merged:
            raise ApiError(
                412, "cannot change state of this pull request, it was already merged"
            )
        issue.state = body["state"]
        issue.closed_at = forge.now() if issue.state == "closed" else None
        record_state_change(
            forge, repo, issue.number, req.viewer, issue.state == "closed"
        )
    issue.title = body.get("title", issue.title)
    issue.body = body.get("body", issue.body)
    issue.updated = forge.now()
    return Reply(201, forge.render.issue(repo, issue, req.viewer))


def list_comments(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    issue = forge.find_issue(repo, req)
    comments = [repo.comments[c] for c in issue.comments]
    if since := req.arg("since"):
        comments = [
            c
            for c in comments
            if datetime.fromisoformat(c.updated) >= _moment(since, "since")
        ]
    if before := req.arg("before"):
        comments = [
            c
            for c in comments
            if datetime.fromisoformat(c.updated) <= _moment(before, "before")
        ]
    return Reply(200, [forge.render.comment(repo, c, req.viewer) for c in comments])


def create_comment(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    issue = forge.find_issue(repo, req)
    body = req.body or {}
    if "updated_at" in body:
        forge.require(repo, req, Access.ADMIN)
    if not body.get("body"):
        raise ApiError(422, "[Body]: Required")
    assert req.viewer is not None
    now = forge.now()
    comment = Comment(
        forge.state.new_id(), issue.number, req.viewer, body["body"], now, now
    )
    repo.comments[comment.id] = comment
    issue.comments.append(comment.id)
    issue.updated = now
    return Reply(201, forge.render.comment(repo, comment, req.viewer))


def edit_comment(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    comment = repo.comments.get(int(req.params["id"]))
    if comment is None:
        raise ApiError(404, "The target couldn't be found.")
    if comment.author != req.viewer:
        forge.require(repo, req, Access.WRITE)
    body = req.body or {}
    if not body.get("body"):
        raise ApiError(422, "[Body]: Required")
    comment = Comment(
        comment.id,
        comment.issue,
        comment.author,
        body["body"],
        comment.created,
        forge.now(),
    )
    repo.comments[comment.id] = comment
    return Reply(200, forge.render.comment(repo, comment, req.viewer))


def list_labels(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    labels = sorted(repo.labels.values(), key=lambda label: label.name)
    chunk, headers = forge.paginate(req, labels, link=False)
    return Reply(
        200, [forge.render.label(repo, label) for label in chunk], headers=headers
    )


def create_label(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    forge.require(repo, req, Access.WRITE)
    body = req.body or {}
    color = body.get("color", "").lstrip("#")
    if len(color) not in {3, 6} or any(
        c not in "0123456789abcdefABCDEF" for c in color
    ):
        raise ApiError(422, f"Color: {body.get('color')!r} is invalid")
    label_id = forge.add_label(
        repo.full_name,
        body["name"],
        f"#{color}",
        body.get("description", ""),
        exclusive=bool(body.get("exclusive")),
    )
    return Reply(201, forge.render.label(repo, repo.labels[label_id]))


def _issue_labels(forge: ForgeCore, repo: Repo, issue: Issue) -> Reply:
    usable = forge.state.usable_labels(repo)
    return Reply(
        200, [forge.render.label(repo, usable[i]) for i in issue.labels if i in usable]
    )


def _resolve_labels(forge: ForgeCore, repo: Repo, items: list[object]) -> list[int]:
    """Resolve label ids or names against the repo's **and its org's** labels (issue_label.go:378-393)."""
    usable = forge.state.usable_labels(repo)
    if all(isinstance(i, int) and not isinstance(i, bool) for i in items):
        return [i for i in items if isinstance(i, int) and i in usable]
    if all(isinstance(i, str) for i in items):
        by_name: dict[str, int] = {}
        for label in [*repo.labels.values(), *usable.values()]:
            by_name.setdefault(label.name, label.id)  # repo labels first
        # Unknown names are ignored.
        return [by_name[i] for i in items if isinstance(i, str) and i in by_name]
    raise ApiError(
        400, "labels: all items must be label IDs or all must be label names"
    )


def exclusive_scope(label: Label) -> str:
    """Return the scope of an exclusive label (``scope/x`` -> ``scope``), else "" (models/issues/label.go:194)."""
    cut = label.name.rfind("/")
    if not label.exclusive or cut <= 0 or cut == len(label.name) - 1:
        return ""
    return label.name[:cut]


def _with_labels(
    forge: ForgeCore, repo: Repo, current: list[int], added: list[int]
) -> list[int]:
    """Add *added* to *current*; each exclusive label removes its scope's siblings (issue_label.go:66-85)."""
    usable = forge.state.usable_labels(repo)
    labels = list(current)
    for label_id in added:
        if label_id in labels:
            continue
        scope = exclusive_scope(usable[label_id])
        if scope:
            labels = [
                i
                for i in labels
                if i not in usable or exclusive_scope(usable[i]) != scope
            ]
        labels.append(label_id)
    return labels


def _writable_issue(forge: ForgeCore, req: Request) -> tuple[Repo, Issue]:
    repo = forge.find_repo(req)
    issue = forge.find_issue(repo, req)
    forge.require(repo, req, Access.WRITE)
    return repo, issue


def get_labels(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    return _issue_labels(forge, repo, forge.find_issue(repo, req))


def replace_labels(forge: ForgeCore, req: Request) -> Reply:
    repo, issue = _writable_issue(forge, req)
    issue.labels = _with_labels(
        forge,
        repo,
        [],
        _resolve_labels(forge, repo, (req.body or {}).get("labels", [])),
    )
    issue.updated = forge.now()
    return _issue_labels(forge, repo, issue)


def add_labels(forge: ForgeCore, req: Request) -> Reply:
    repo, issue = _writable_issue(forge, req)
    issue.labels = _with_labels(
        forge,
        repo,
        issue.labels,
        _resolve_labels(forge, repo, (req.body or {}).get("labels", [])),
    )
    issue.updated = forge.now()
    return _issue_labels(forge, repo, issue)


def clear_labels(forge: ForgeCore, req: Request) -> Reply:
    _, issue = _writable_issue(forge, req)
    issue.labels = []
    issue.updated = forge.now()
    return Reply(204)


def remove_label(forge: ForgeCore, req: Request) -> Reply:
    """The identifier is tried as a name (repo, then org) before as an id (issue_label.go:192-199)."""
    repo, issue = _writable_issue(forge, req)
    ident = req.params["identifier"]
    org = forge.state.org_labels.get(repo.owner.lower(), {})
    found = [
        label.id
        for labels in (repo.labels, org)
        for label in labels.values()
        if label.name == ident
    ]
    if not found and ident.isdigit():
        found = [i for i in forge.state.usable_labels(repo) if i == int(ident)]
    if not found:
        raise ApiError(422, f"label {ident!r} does not exist")
    issue.labels = [i for i in issue.labels if i != found[0]]
    issue.updated = forge.now()
    return Reply(204)


HANDLERS: dict[str, Handler] = {
    "issueListIssues": list_issues,
    "issueGetIssue": get_issue,
    "issueCreateIssue": create_issue,
    "issueEditIssue": edit_issue,
    "issueGetComments": list_comments,
    "issueCreateComment": create_comment,
    "issueEditComment": edit_comment,
    "issueListLabels": list_labels,
    "issueCreateLabel": create_label,
    "issueGetLabels": get_labels,
    "issueReplaceLabels": replace_labels,
    "issueAddLabel": add_labels,
    "issueClearLabels": clear_labels,
    "issueRemoveLabel": remove_label,
}
