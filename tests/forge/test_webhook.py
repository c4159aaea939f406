"""Webhook verification and parsing, on every recorded payload."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from pathlib import Path
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opsvault.forge.errors import WebhookRejected
from opsvault.forge.types import PullState, ReviewState
from opsvault.forge.webhook import DeliverySeen, parse_event, verify_signature

WEBHOOKS = Path(__file__).parent / "webhooks"
SECRET = b"test-webhook-secret"

# Headers per file, as Forgejo v15 sends them (webhooks/README.md).
EVENTS = {
    "forgejo-pull_request-closed-merged.json": ("pull_request", "pull_request"),
    "forgejo-pull_request-closed-not-merged.json": ("pull_request", "pull_request"),
    "forgejo-pull_request-edited.trimmed.json": ("pull_request", "pull_request"),
    "forgejo-pull_request-opened.trimmed.json": ("pull_request", "pull_request"),
    "forgejo-pull_request-reopened.json": ("pull_request", "pull_request"),
    "forgejo-pull_request-synchronized.json": ("pull_request", "pull_request_sync"),
    "forgejo-pull_request_label-label_updated.trimmed.json": (
        "pull_request",
        "pull_request_label",
    ),
    "gitea-pull_request_review_approved.json": (
        "pull_request_approved",
        "pull_request_review_approved",
    ),
    "gitea-pull_request_review_rejected.json": (
        "pull_request_rejected",
        "pull_request_review_rejected",
    ),
}


def _sign(body: bytes, secret: bytes = SECRET) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def _headers(name: str, body: bytes, *, gitea_only: bool = False) -> dict[str, str]:
    event, event_type = EVENTS[name]
    if name.startswith("gitea-") or gitea_only:
        return {
            "X-Gitea-Event": event,
            "X-Gitea-Event-Type": event_type,
            "X-Gitea-Delivery": f"delivery-{name}",
            "X-Gitea-Signature": _sign(body),
            "Content-Type": "application/json",
        }
    return {
        "X-Forgejo-Event": event,
        "X-Forgejo-Event-Type": event_type,
        "X-Forgejo-Delivery": f"delivery-{name}",
        "X-Forgejo-Signature": _sign(body),
        "X-Gitea-Signature": _sign(body),
        "Content-Type": "application/json",
    }


def test_every_recorded_payload_is_covered() -> None:
    assert sorted(p.name for p in WEBHOOKS.glob("*.json")) == sorted(EVENTS)


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_every_payload_verifies_and_parses(name: str) -> None:
    body = (WEBHOOKS / name).read_bytes()
    headers = _headers(name, body)

    verify_signature(body, headers, SECRET)
    event = parse_event(body, headers)

    assert event is not None
    assert event.delivery_id == f"delivery-{name}"
    assert event.event_type == EVENTS[name][1]
    assert event.number in (1, 2, 7)
    assert event.head_sha and event.head_ref and event.base_ref


def test_readme_test_vectors() -> None:
    body = (WEBHOOKS / "forgejo-pull_request-closed-merged.json").read_bytes()
    expected = "47a12d83bead6a6f72612bb621dc1ec70ebc8f6c398a3230465163a66c192537"
    verify_signature(body, {"X-Forgejo-Signature": expected}, SECRET)
    body = (WEBHOOKS / "forgejo-pull_request-synchronized.json").read_bytes()
    expected = "5eb827341f04d6467d5abb657d6d7dfa7e2ed39be0a376a873df3ea5fbc66ebf"
    verify_signature(body, {"x-gitea-signature": expected}, SECRET)


def test_merged_event() -> None:
    name = "forgejo-pull_request-closed-merged.json"
    body = (WEBHOOKS / name).read_bytes()
    event = parse_event(body, _headers(name, body))
    assert event is not None
    assert (event.action, event.state, event.merged) == (
        "closed",
        PullState.CLOSED,
        True,
    )
    assert event.merged_by and event.merge_commit_sha


def test_closed_without_merge_and_sync() -> None:
    name = "forgejo-pull_request-closed-not-merged.json"
    body = (WEBHOOKS / name).read_bytes()
    event = parse_event(body, _headers(name, body))
    assert (
        event is not None and event.merged is False and event.state is PullState.CLOSED
    )
    name = "forgejo-pull_request-synchronized.json"
    body = (WEBHOOKS / name).read_bytes()
    event = parse_event(body, _headers(name, body))
    assert event is not None and event.action == "synchronized" and event.number == 2


@pytest.mark.parametrize(
    ("name", "state"),
    [
        ("gitea-pull_request_review_approved.json", ReviewState.APPROVED),
        ("gitea-pull_request_review_rejected.json", ReviewState.REQUEST_CHANGES),
    ],
)
def test_review_events(name: str, state: ReviewState) -> None:
    body = (WEBHOOKS / name).read_bytes()
    event = parse_event(body, _headers(name, body))
    assert event is not None and event.review is not None
    assert event.review.state is state and event.action == "reviewed"


def test_trimmed_payload_takes_number_from_the_envelope() -> None:
    name = "forgejo-pull_request-opened.trimmed.json"
    body = (WEBHOOKS / name).read_bytes()
    event = parse_event(body, _headers(name, body))
    assert event is not None and event.number == 1 and event.action == "opened"


def test_wrong_signature_is_rejected() -> None:
    body = (WEBHOOKS / "forgejo-pull_request-reopened.json").read_bytes()
    with pytest.raises(WebhookRejected, match="does not match"):
        verify_signature(body, {"X-Forgejo-Signature": _sign(body, b"other")}, SECRET)
    with pytest.raises(WebhookRejected, match="does not match"):
        verify_signature(body + b" ", {"X-Forgejo-Signature": _sign(body)}, SECRET)
    with pytest.raises(WebhookRejected, match="does not match"):
        verify_signature(body, {"X-Forgejo-Signature": "zz\u00e9"}, SECRET)


def test_missing_signature_or_secret_is_rejected() -> None:
    body = b"{}"
    with pytest.raises(WebhookRejected, match="missing"):
        verify_signature(body, {}, SECRET)
    with pytest.raises(WebhookRejected, match="no secret"):
        verify_signature(body, {"X-Forgejo-Signature": _sign(body, b"")}, b"")


def test_form_content_type_signs_the_payload_field() -> None:
    payload = (WEBHOOKS / "forgejo-pull_request-reopened.json").read_bytes()
    body = urlencode({"payload": payload.decode()}).encode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Forgejo-Signature": _sign(payload),
        "X-Forgejo-Event-Type": "pull_request",
    }
    verify_signature(body, headers, SECRET)
    event = parse_event(body, headers)
    assert event is not None and event.action == "reopened"


def test_other_events_are_ignored() -> None:
    assert (
        parse_event(b"{}", {"X-Forgejo-Event": "push", "X-Forgejo-Event-Type": "push"})
        is None
    )
    assert parse_event(b"{}", {}) is None


def test_malformed_pull_request_payload_is_rejected() -> None:
    headers = {"X-Forgejo-Event-Type": "pull_request"}
    with pytest.raises(WebhookRejected):
        parse_event(b"not json", headers)
    with pytest.raises(WebhookRejected):
        parse_event(b'{"action": "opened"}', headers)
    with pytest.raises(WebhookRejected, match="number"):
        parse_event(
            b'{"pull_request": {"head": {}, "base": {}}, "number": "1"}', headers
        )


@given(st.binary(max_size=300))
def test_arbitrary_bodies_raise_only_webhook_rejected(body: bytes) -> None:
    headers = {"X-Forgejo-Event-Type": "pull_request", "X-Forgejo-Signature": "00"}
    with pytest.raises(WebhookRejected):
        verify_signature(body, headers, SECRET)
    with contextlib.suppress(WebhookRejected):
        parse_event(body, headers)


def test_delivery_seen_deduplicates_and_is_bounded() -> None:
    seen = DeliverySeen(capacity=3)
    assert seen.check_and_add("a") is False
    assert seen.check_and_add("a") is True
    for delivery in ("b", "c", "d"):
        assert seen.check_and_add(delivery) is False
    assert len(seen) == 3
    assert "a" not in seen  # the oldest is forgotten first
    assert seen.check_and_add("d") is True
    with pytest.raises(ValueError):
        DeliverySeen(capacity=0)
