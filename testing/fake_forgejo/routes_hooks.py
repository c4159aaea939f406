"""Repository webhooks of the fake: ``/repos/{o}/{r}/hooks`` and signed deliveries.

What it mirrors from Forgejo v15.0.3:

- a hook is created inactive unless ``active`` is true, events default to
  ``["push"]``, and ``"pull_request"`` subscribes to every PR sub-event
  (routers/api/v1/utils/hook.go ``addHook``; modules/webhook/type.go);
- payloads are ``PullRequestPayload`` / ``IssueCommentPayload``
  (modules/structs/hook.go), serialised with two-space indentation, signed
  with hex HMAC-SHA256 of the raw body in ``X-Forgejo-Signature`` and
  ``X-Gitea-Signature`` (``sha256=`` prefixed in ``X-Hub-Signature-256``),
  with a fresh ``X-Forgejo-Delivery`` uuid per delivery
  (services/webhook/shared/payloader.go; services/webhook/deliver.go);
- delivery is asynchronous (a queue) and tried once, never retried
  (services/webhook/deliver.go).

The PR and comment routes live elsewhere; :func:`wrap` queues the event after
their handler succeeded, so it keeps working as they change. Tests read
``deliveries(forge)`` and wait with ``wait_delivered``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from testing.fake_forgejo.core import ApiError, ForgeCore, Reply, Request
from testing.fake_forgejo.model import Access, Issue, Repo

Handler = Callable[[ForgeCore, Request], Reply]
Json = dict[str, object]


@dataclass(slots=True)
class Hook:
    id: int
    url: str
    secret: str
    content_type: str
    events: list[str]
    active: bool
    created: str

    def wants(self, event_type: str) -> bool:
        if not self.active:
            return False
        if event_type in self.events:
            return True
        if event_type.startswith("pull_request") and "pull_request" in self.events:
            return True
        return event_type == "issue_comment" and "issue_comment" in self.events


@dataclass(frozen=True, slots=True)
class Delivery:
    """One attempt: what was sent and how the receiver answered (0: no answer)."""

    url: str
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass(slots=True)
class _Hooks:
    by_repo: dict[str, list[Hook]] = field(default_factory=dict)
    sent: list[Delivery] = field(default_factory=list)
    queue: queue.Queue[tuple[str, dict[str, str], bytes] | None] = field(
        default_factory=queue.Queue
    )
    pending: int = 0
    changed: threading.Condition = field(default_factory=threading.Condition)
    worker: threading.Thread | None = None


_HOOKS: weakref.WeakKeyDictionary[ForgeCore, _Hooks] = weakref.WeakKeyDictionary()


def _hooks(forge: ForgeCore) -> _Hooks:
    return _HOOKS.setdefault(forge, _Hooks())


def deliveries(forge: ForgeCore) -> list[Delivery]:
    """Return every delivery attempted so far, oldest first."""
    hooks = _hooks(forge)
    with hooks.changed:
        return list(hooks.sent)


def wait_delivered(forge: ForgeCore, timeout: float = 10.0) -> bool:
    """Wait until no delivery is queued or in flight; return whether that happened in time."""
    hooks = _hooks(forge)
    with hooks.changed:
        return hooks.changed.wait_for(lambda: hooks.pending == 0, timeout)


def _work(hooks: _Hooks) -> None:
    with httpx.Client(timeout=5.0) as http:  # DELIVER_TIMEOUT defaults to 5 s
        while True:
            item = hooks.queue.get()
            if item is None:
                return
            url, headers, body = item
            try:
                status = http.post(url, content=body, headers=headers).status_code
            except httpx.HTTPError:
                status = 0  # Forgejo logs it and never retries
            with hooks.changed:
                hooks.sent.append(Delivery(url, headers, body, status))
                hooks.pending -= 1
                hooks.changed.notify_all()


def signed_request(
    secret: str, event: str, event_type: str, payload: Json
) -> tuple[dict[str, str], bytes]:
    """Return the headers and body Forgejo sends for *payload* (content type json)."""
    body = json.dumps(payload, indent=2).encode()
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    delivery = str(uuid.uuid4())
    headers = {"Content-Type": "application/json"}
    for brand in ("Forgejo", "Gitea", "Gogs"):
        headers[f"X-{brand}-Delivery"] = delivery
        headers[f"X-{brand}-Event"] = event
        headers[f"X-{brand}-Event-Type"] = event_type
        headers[f"X-{brand}-Signature"] = digest if secret else ""
    headers["X-Hub-Signature-256"] = f"sha256={digest}" if secret else ""
    return headers, body


def emit(
    forge: ForgeCore, repo: Repo, event: str, event_type: str, payload: Json
) -> None:
    """Queue one delivery of *payload* to every active hook of *repo* that wants it."""
    hooks = _hooks(forge)
    for hook in hooks.by_repo.get(repo.full_name, []):
        if not hook.wants(event_type):
            continue
        headers, body = signed_request(hook.secret, event, event_type, payload)
        with hooks.changed:
            hooks.pending += 1
            if hooks.worker is None:
                hooks.worker = threading.Thread(
                    target=_work, args=(hooks,), name="fake-forgejo-hooks", daemon=True
                )
                hooks.worker.start()
        hooks.queue.put((hook.url, headers, body))


# -- routes --------------------------------------------------------------------------


def _render(repo: Repo, hook: Hook) -> Json:
    return {
        "id": hook.id,
        "type": "forgejo",
        "branch_filter": "*",
        "url": hook.url,
        "config": {"url": hook.url, "content_type": hook.content_type},
        "events": hook.events,
        "authorization_header": "",
        "content_type": hook.content_type,
        "metadata": None,
        "active": hook.active,
        "updated_at": hook.created,
        "created_at": hook.created,
    }


def create_hook(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    forge.require(repo, req, Access.ADMIN)
    body = req.body or {}
    config = body.get("config") or {}
    if not config.get("url") or not config.get("content_type"):
        raise ApiError(422, "Missing config option: url or content_type")
    hook = Hook(
        forge.state.new_id(),
        str(config["url"]),
        str(config.get("secret", "")),
        str(config["content_type"]),
        list(body.get("events") or ["push"]),
        bool(body.get("active", False)),
        forge.now(),
    )
    _hooks(forge).by_repo.setdefault(repo.full_name, []).append(hook)
    return Reply(201, _render(repo, hook))


def list_hooks(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    forge.require(repo, req, Access.ADMIN)
    hooks = _hooks(forge).by_repo.get(repo.full_name, [])
    return Reply(200, [_render(repo, h) for h in hooks])


def delete_hook(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    forge.require(repo, req, Access.ADMIN)
    hooks = _hooks(forge).by_repo.get(repo.full_name, [])
    kept = [h for h in hooks if str(h.id) != req.params["id"]]
    if len(kept) == len(hooks):
        raise ApiError(404, "The target couldn't be found.")
    _hooks(forge).by_repo[repo.full_name] = kept
    return Reply(204)


HANDLERS: dict[str, Handler] = {
    "repoCreateHook": create_hook,
    "repoListHooks": list_hooks,
    "repoDeleteHook": delete_hook,
}


# -- events around other routes ----------------------------------------------------------


def _pull_payload(
    forge: ForgeCore, repo: Repo, issue: Issue, action: str, sender: str
) -> Json:
    head, base = forge.sync_pull(repo, issue)
    pull = forge.render.pull(repo, issue, None, head_sha=head, base_sha=base)
    return {
        "action": action,
        "number": issue.number,
        "pull_request": pull,
        "requested_reviewer": None,
        "repository": forge.render.repo(repo, None),
        "sender": forge.render.user(sender, None, blind=True),
        "commit_id": "",
        "review": None,
    }


_REVIEW_EVENTS = {
    "APPROVED": ("pull_request_approved", "pull_request_review_approved"),
    "REQUEST_CHANGES": ("pull_request_rejected", "pull_request_review_rejected"),
    "COMMENT": ("pull_request_comment", "pull_request_review_comment"),
}


def _after(forge: ForgeCore, req: Request, op: str, reply: Reply) -> None:
    if reply.status >= 300 or req.viewer is None:
        return
    repo = forge.find_repo(req)
    if op == "repoCreatePullRequest":
        payload = reply.payload
        number = payload.get("number") if isinstance(payload, dict) else None
        issue = repo.issues.get(number) if isinstance(number, int) else None
        if issue is not None:
            emit(
                forge,
                repo,
                "pull_request",
                "pull_request",
                _pull_payload(forge, repo, issue, "opened", req.viewer),
            )
        return
    issue = repo.issues.get(int(req.params.get("index", "0") or 0))
    if issue is None or issue.pull is None:
        return
    if op == "repoMergePullRequest":
        event = ("pull_request", "pull_request", "closed")
    elif op in {"repoEditPullRequest", "issueEditIssue"}:
        if (req.body or {}).get("state") != "closed" or issue.state != "closed":
            return
        event = ("pull_request", "pull_request", "closed")
    elif op.startswith("issue") and "Label" in op:
        event = ("pull_request", "pull_request_label", "label_updated")
    elif op == "repoCreatePullReview":
        kind = str((req.body or {}).get("event", "COMMENT")).upper()
        name, event_type = _REVIEW_EVENTS.get(kind, _REVIEW_EVENTS["COMMENT"])
        payload = _pull_payload(forge, repo, issue, "reviewed", req.viewer)
        body = (req.body or {}).get("body", "")
        payload["review"] = {"type": event_type, "content": body}
        emit(forge, repo, name, event_type, payload)
        return
    elif op == "issueCreateComment":
        comment = reply.payload
        payload = {
            "action": "created",
            "issue": forge.render.issue(repo, issue, None),
            "pull_request": _pull_payload(forge, repo, issue, "", req.viewer)[
                "pull_request"
            ],
            "comment": comment,
            "repository": forge.render.repo(repo, None),
            "sender": forge.render.user(req.viewer, None, blind=True),
            "is_pull": True,
        }
        emit(forge, repo, "issue_comment", "pull_request_comment", payload)
        return
    else:
        return
    name, event_type, action = event
    emit(
        forge,
        repo,
        name,
        event_type,
        _pull_payload(forge, repo, issue, action, req.viewer),
    )


EVENT_OPERATIONS = (
    "repoCreatePullRequest",
    "repoMergePullRequest",
    "repoEditPullRequest",
    "issueEditIssue",
    "repoCreatePullReview",
    "issueCreateComment",
    "issueAddLabel",
    "issueRemoveLabel",
    "issueReplaceLabels",
    "issueClearLabels",
)


def wrap(handlers: dict[str, Handler]) -> dict[str, Handler]:
    """Return the event-raising handlers of *handlers*, delivering webhooks after success."""

    def delivering(op: str, inner: Handler) -> Handler:
        def handler(forge: ForgeCore, req: Request) -> Reply:
            reply = inner(forge, req)
            if _HOOKS.get(forge) is not None:  # no hook was ever created: no work
                _after(forge, req, op, reply)
            return reply

        return handler

    return {
        op: delivering(op, handlers[op]) for op in EVENT_OPERATIONS if op in handlers
    }
