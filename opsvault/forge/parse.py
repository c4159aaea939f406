"""Turn Forgejo JSON objects (REST answers and webhook payloads) into value types.

Parsers tolerate missing and unknown fields (older Forgejo versions and trimmed
payloads omit many), but raise ``ForgeError`` when a field that identifies the
object is missing or has the wrong type.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from opsvault.errors import ForgeError
from opsvault.forge.types import (
    BranchProtection,
    ChangedFileInfo,
    Comment,
    FileStatus,
    Issue,
    Label,
    Permission,
    PullRequest,
    PullState,
    Review,
    ReviewState,
    TimelineEvent,
    TimelineKind,
)
from opsvault.timefmt import parse_iso

Obj = Mapping[str, Any]


def _obj(data: object, what: str) -> Obj:
    if not isinstance(data, Mapping):
        raise ForgeError(
            f"forge answer: expected a {what} object, got {type(data).__name__}"
        )
    return data


def _req_int(data: Obj, key: str, what: str) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ForgeError(
            f"forge answer: {what}.{key} is missing or not an integer: {value!r}"
        )
    return value


def _req_str(data: Obj, key: str, what: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ForgeError(
            f"forge answer: {what}.{key} is missing or not a string: {value!r}"
        )
    return value


def _str(data: Obj, key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""


def _opt_str(data: Obj, key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value else None


def _bool(data: Obj, key: str) -> bool:
    return data.get(key) is True


def _int(data: Obj, key: str) -> int:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _strs(data: Obj, key: str) -> tuple[str, ...]:
    value = data.get(key)
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value if isinstance(v, str))


def parse_time(value: object) -> datetime | None:
    """Parse an RFC 3339 timestamp; Go's zero time and junk become None."""
    if not isinstance(value, str) or not value or value.startswith("0001-01-01"):
        return None
    try:
        return parse_iso(value)
    except ValueError:
        return None


def _login(user: object) -> str:
    if isinstance(user, Mapping):
        login = user.get("login") or user.get("username")
        if isinstance(login, str):
            return login
    return ""


def parse_label(data: object) -> Label:
    obj = _obj(data, "Label")
    label_id = obj.get("id")
    return Label(
        name=_req_str(obj, "name", "Label"),
        color=_str(obj, "color"),
        description=_str(obj, "description"),
        id=label_id if isinstance(label_id, int) else None,
    )


def _label_names(data: Obj) -> tuple[str, ...]:
    labels = data.get("labels")
    if not isinstance(labels, list):
        return ()
    return tuple(parse_label(label).name for label in labels if label is not None)


def parse_pull_request(data: object) -> PullRequest:
    obj = _obj(data, "PullRequest")
    head = _obj(obj.get("head"), "PullRequest.head")
    base = _obj(obj.get("base"), "PullRequest.base")
    state = _req_str(obj, "state", "PullRequest")
    mergeable = obj.get("mergeable")
    return PullRequest(
        number=_req_int(obj, "number", "PullRequest"),
        title=_str(obj, "title"),
        body=_str(obj, "body"),
        state=PullState.CLOSED if state == "closed" else PullState.OPEN,
        author=_login(obj.get("user")),
        head_ref=_req_str(head, "ref", "PullRequest.head"),
        head_sha=_req_str(head, "sha", "PullRequest.head"),
        base_ref=_req_str(base, "ref", "PullRequest.base"),
        base_sha=_opt_str(base, "sha"),
        html_url=_str(obj, "html_url"),
        draft=_bool(obj, "draft"),
        labels=_label_names(obj),
        mergeable=mergeable if isinstance(mergeable, bool) else None,
        merged=_bool(obj, "merged"),
        merged_by=_login(obj.get("merged_by")) or None,
        merged_at=parse_time(obj.get("merged_at")),
        merge_commit_sha=_opt_str(obj, "merge_commit_sha"),
        created_at=parse_time(obj.get("created_at")),
        updated_at=parse_time(obj.get("updated_at")),
        closed_at=parse_time(obj.get("closed_at")),
    )


def parse_changed_file(data: object) -> ChangedFileInfo:
    obj = _obj(data, "ChangedFile")
    status = _str(obj, "status")
    try:
        file_status = FileStatus(status)
    except ValueError:
        file_status = FileStatus.CHANGED
    return ChangedFileInfo(
        filename=_req_str(obj, "filename", "ChangedFile"),
        status=file_status,
        previous_filename=_opt_str(obj, "previous_filename"),
        additions=_int(obj, "additions"),
        deletions=_int(obj, "deletions"),
    )


def changed_file_ref(data: object) -> str | None:
    """Return the commit a ChangedFile entry was computed at (from ``contents_url``)."""
    url = _str(_obj(data, "ChangedFile"), "contents_url")
    refs = parse_qs(urlsplit(url).query).get("ref")
    return refs[0] if refs else None


def parse_review(data: object) -> Review:
    obj = _obj(data, "PullReview")
    state = _str(obj, "state")
    try:
        review_state = ReviewState(state)
    except ValueError:
        review_state = ReviewState.PENDING
    return Review(
        id=_req_int(obj, "id", "PullReview"),
        reviewer=_login(obj.get("user")),
        state=review_state,
        commit_id=_str(obj, "commit_id"),
        body=_str(obj, "body"),
        official=_bool(obj, "official"),
        stale=_bool(obj, "stale"),
        dismissed=_bool(obj, "dismissed"),
        submitted_at=parse_time(obj.get("submitted_at")),
    )


def parse_comment(data: object) -> Comment:
    obj = _obj(data, "Comment")
    return Comment(
        id=_req_int(obj, "id", "Comment"),
        author=_login(obj.get("user")),
        body=_str(obj, "body"),
        html_url=_str(obj, "html_url"),
        created_at=parse_time(obj.get("created_at")),
        updated_at=parse_time(obj.get("updated_at")),
    )


def parse_timeline_event(data: object) -> TimelineEvent | None:
    """Return a comment or label event of ``GET /issues/{n}/timeline``, None for other kinds.

    Forgejo v15 stores a label change as a comment of type ``label`` whose
    ``user`` is the actor and whose body is ``"1"`` when the label was added and
    empty when it was removed (models/issues/issue_label.go: ``newIssueLabel``,
    ``deleteIssueLabel``; services/convert/issue_comment.go).
    """
    obj = _obj(data, "TimelineComment")
    kind = _str(obj, "type")
    event_id = _req_int(obj, "id", "TimelineComment")
    actor = _login(obj.get("user"))
    created = parse_time(obj.get("created_at"))
    if kind == "comment":
        return TimelineEvent(
            event_id,
            TimelineKind.COMMENT,
            actor,
            created,
            body=_str(obj, "body"),
            edited=created is None or parse_time(obj.get("updated_at")) != created,
        )
    if kind in ("close", "reopen"):
        # models/issues/comment.go CommentTypeClose / CommentTypeReopen: the
        # poster is who changed the state; such entries cannot be edited.
        return TimelineEvent(
            event_id,
            TimelineKind.CLOSED if kind == "close" else TimelineKind.REOPENED,
            actor,
            created,
        )
    if kind == "label":
        label = obj.get("label")
        name = _str(label, "name") if isinstance(label, Mapping) else ""
        added = _str(obj, "body") == "1"
        return TimelineEvent(
            event_id,
            TimelineKind.LABEL_ADDED if added else TimelineKind.LABEL_REMOVED,
            actor,
            created,
            label=name,
        )
    return None


def parse_issue(data: object) -> Issue:
    obj = _obj(data, "Issue")
    return Issue(
        number=_req_int(obj, "number", "Issue"),
        title=_str(obj, "title"),
        state=PullState.CLOSED if _str(obj, "state") == "closed" else PullState.OPEN,
        labels=_label_names(obj),
        is_pull=isinstance(obj.get("pull_request"), Mapping),
        html_url=_str(obj, "html_url"),
        updated_at=parse_time(obj.get("updated_at")),
        closed_at=parse_time(obj.get("closed_at")),
    )


def parse_permission(data: object) -> Permission:
    value = _str(_obj(data, "RepoCollaboratorPermission"), "permission")
    try:
        return Permission(value)
    except ValueError as exc:
        raise ForgeError(f"forge answer: unknown permission {value!r}") from exc


def parse_branch_protection(data: object) -> BranchProtection:
    """Read the fields opsvault uses; the rule's other fields are not looked at."""
    obj = _obj(data, "BranchProtection")
    return BranchProtection(
        required_approvals=_int(obj, "required_approvals"),
        enable_push=_bool(obj, "enable_push"),
        enable_push_whitelist=_bool(obj, "enable_push_whitelist"),
        push_whitelist_usernames=_strs(obj, "push_whitelist_usernames"),
        push_whitelist_teams=_strs(obj, "push_whitelist_teams"),
        push_whitelist_deploy_keys=_bool(obj, "push_whitelist_deploy_keys"),
        unprotected_file_patterns=_str(obj, "unprotected_file_patterns"),
        dismiss_stale_approvals=_bool(obj, "dismiss_stale_approvals"),
        protected_file_patterns=_str(obj, "protected_file_patterns"),
        approvals_whitelist_teams=_strs(obj, "approvals_whitelist_teams"),
        merge_whitelist_teams=_strs(obj, "merge_whitelist_teams"),
    )
