"""Verify and parse Forgejo webhook deliveries for pull requests.

A webhook is only a nudge to reconcile sooner: Forgejo delivers once and never
retries (API-NOTES §14), so the dispatcher still polls, and nothing here is
trusted beyond "PR #n changed". Payload user objects carry no reliable
privilege data; privilege checks go through the REST API.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from opsvault.forge.errors import WebhookRejected
from opsvault.forge.types import PullState, ReviewState

SIGNATURE_HEADERS = ("X-Forgejo-Signature", "X-Gitea-Signature")
DELIVERY_HEADERS = ("X-Forgejo-Delivery", "X-Gitea-Delivery")
EVENT_TYPE_HEADERS = ("X-Forgejo-Event-Type", "X-Gitea-Event-Type")
EVENT_HEADERS = ("X-Forgejo-Event", "X-Gitea-Event")

_REVIEW_STATES = {
    "pull_request_review_approved": ReviewState.APPROVED,
    "pull_request_review_rejected": ReviewState.REQUEST_CHANGES,
    "pull_request_review_comment": ReviewState.COMMENT,
}


def _header(headers: Mapping[str, str], names: tuple[str, ...]) -> str:
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in names:
        value = lowered.get(name.lower())
        if value:
            return value.strip()
    return ""


def payload_bytes(body: bytes, headers: Mapping[str, str]) -> bytes:
    """Return the signed payload: the raw body, or the ``payload`` field of a form."""
    content_type = _header(headers, ("Content-Type",)).lower()
    if content_type.startswith("application/x-www-form-urlencoded"):
        fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        values = fields.get("payload")
        if not values:
            raise WebhookRejected("webhook", "form body has no 'payload' field")
        return values[0].encode("utf-8")
    return body


def verify_signature(body: bytes, headers: Mapping[str, str], secret: bytes) -> None:
    """Check the hex HMAC-SHA256 of the raw *body* against the signature header.

    Reads ``X-Forgejo-Signature``, falling back to ``X-Gitea-Signature`` (Gitea
    sends only the latter). Raise ``WebhookRejected`` if the secret is empty,
    the header is missing, or the digest differs; compares in constant time.
    """
    if not secret:
        raise WebhookRejected(
            "webhook", "no secret configured; refusing unsigned deliveries"
        )
    given = _header(headers, SIGNATURE_HEADERS)
    if not given:
        raise WebhookRejected("webhook", "signature header is missing")
    expected = hmac.new(
        secret, payload_bytes(body, headers), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(
        expected.encode("ascii"), given.lower().encode("ascii", "replace")
    ):
        raise WebhookRejected("webhook", "signature does not match the body")


class DeliverySeen:
    """A bounded memory of delivery ids, oldest forgotten first."""

    def __init__(self, capacity: int = 4096) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def check_and_add(self, delivery_id: str) -> bool:
        """Record *delivery_id*; return True if it had been seen already."""
        if delivery_id in self._ids:
            self._ids.move_to_end(delivery_id)
            return True
        self._ids[delivery_id] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return False

    def __contains__(self, delivery_id: object) -> bool:
        return delivery_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)


@dataclass(frozen=True, slots=True)
class ReviewSubmitted:
    state: ReviewState
    body: str


@dataclass(frozen=True, slots=True)
class PullRequestEvent:
    """A pull request webhook event, reduced to what triggers a reconcile.

    Fields that trimmed or older payloads omit are None (or empty).
    """

    delivery_id: str
    event_type: str
    action: str
    number: int
    sender: str
    head_ref: str
    head_sha: str
    base_ref: str
    state: PullState | None = None
    merged: bool = False
    merged_by: str | None = None
    merge_commit_sha: str | None = None
    title: str = ""
    labels: tuple[str, ...] = ()
    review: ReviewSubmitted | None = None


def _str(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def _login(user: object) -> str:
    if isinstance(user, Mapping):
        value = user.get("login") or user.get("username")
        if isinstance(value, str):
            return value
    return ""


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise WebhookRejected("webhook", f"{where} is missing or not an object")
    return value


def parse_event(body: bytes, headers: Mapping[str, str]) -> PullRequestEvent | None:
    """Parse a verified delivery; return None for events that are not about PRs.

    Handles ``pull_request`` (opened, closed/merged, synchronized, labels, ...)
    and ``pull_request_review_*``. Raise ``WebhookRejected`` for malformed JSON.
    """
    event_type = _header(headers, EVENT_TYPE_HEADERS) or _header(headers, EVENT_HEADERS)
    if not event_type.startswith("pull_request"):
        return None
    try:
        data = json.loads(payload_bytes(body, headers))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WebhookRejected("webhook", f"body is not JSON: {exc}") from exc
    payload = _mapping(data, "payload")
    pr = _mapping(payload.get("pull_request"), "pull_request")
    head = _mapping(pr.get("head"), "pull_request.head")
    base = _mapping(pr.get("base"), "pull_request.base")
    number = payload.get("number", pr.get("number"))
    if not isinstance(number, int) or isinstance(number, bool):
        raise WebhookRejected(
            "webhook", f"number is missing or not an integer: {number!r}"
        )
    state = _str(pr, "state")
    labels = pr.get("labels")
    review: ReviewSubmitted | None = None
    raw_review = payload.get("review")
    if isinstance(raw_review, Mapping):
        review_type = _str(raw_review, "type") or event_type
        review_state = _REVIEW_STATES.get(review_type, ReviewState.COMMENT)
        review = ReviewSubmitted(review_state, _str(raw_review, "content"))
    return PullRequestEvent(
        delivery_id=_header(headers, DELIVERY_HEADERS),
        event_type=event_type,
        action=_str(payload, "action"),
        number=number,
        sender=_login(payload.get("sender")),
        head_ref=_str(head, "ref"),
        head_sha=_str(head, "sha"),
        base_ref=_str(base, "ref"),
        state=PullState(state) if state in ("open", "closed") else None,
        merged=pr.get("merged") is True,
        merged_by=_login(pr.get("merged_by")) or None,
        merge_commit_sha=_str(pr, "merge_commit_sha") or None,
        title=_str(pr, "title"),
        labels=tuple(
            _str(label, "name")
            for label in (labels if isinstance(labels, list) else [])
            if isinstance(label, Mapping)
        ),
        review=review,
    )
