"""The webhook receiver over real HTTP, with the recorded Forgejo payloads."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from opsvault.config import InvalidConfigError, load_settings
from opsvault.dispatcher.nudges import Nudges
from opsvault.dispatcher.webhooks import WebhookReceiver, load_webhook_secret
from opsvault.errors import ConfigError
from tests.forge.test_webhook import EVENTS, SECRET, WEBHOOKS

MERGED = WEBHOOKS / "forgejo-pull_request-closed-merged.json"
MERGED_REPO = "anbraten/test-repo"


class Counting(Nudges):
    def __init__(self) -> None:
        super().__init__()
        self.wakes = 0

        def wake() -> None:
            self.wakes += 1

        self.wake = wake


@pytest.fixture
def nudges() -> Counting:
    return Counting()


@pytest.fixture
def receiver(nudges: Counting) -> Iterator[WebhookReceiver]:
    with WebhookReceiver(
        secret=SECRET, repo=MERGED_REPO, nudges=nudges, max_body=64 * 1024
    ) as receiver:
        yield receiver


def signed(
    body: bytes,
    *,
    event: tuple[str, str] = ("pull_request", "pull_request"),
    secret: bytes = SECRET,
    header: str = "X-Forgejo-Signature",
    delivery: str | None = None,
) -> dict[str, str]:
    digest = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        header: digest,
        "X-Forgejo-Delivery": delivery or str(uuid.uuid4()),
        "X-Forgejo-Event": event[0],
        "X-Forgejo-Event-Type": event[1],
    }


def post(
    receiver: WebhookReceiver, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    host, port = receiver.address
    return httpx.post(f"http://{host}:{port}/webhook", content=body, headers=headers)


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_every_recorded_payload_nudges_its_pull_request(name: str) -> None:
    body = (WEBHOOKS / name).read_bytes()
    data = json.loads(body)
    nudges = Counting()
    with WebhookReceiver(
        secret=SECRET, repo=data["repository"]["full_name"], nudges=nudges
    ) as receiver:
        reply = post(receiver, body, signed(body, event=EVENTS[name]))
    assert reply.status_code == 202, reply.text
    assert nudges.drain() == {data["number"]}
    assert nudges.wakes == 1


def test_the_recorded_test_vector_is_accepted(
    receiver: WebhookReceiver, nudges: Counting
) -> None:
    body = MERGED.read_bytes()
    headers = signed(body)  # README.md: 47a12d83... for this file and this key
    assert headers["X-Forgejo-Signature"].startswith("47a12d83bead6a6f")
    assert post(receiver, body, headers).status_code == 202
    assert nudges.drain() == {1}


def test_gitea_signature_alone_is_accepted(
    receiver: WebhookReceiver, nudges: Counting
) -> None:
    body = MERGED.read_bytes()
    reply = post(receiver, body, signed(body, header="X-Gitea-Signature"))
    assert reply.status_code == 202


@pytest.mark.parametrize(
    "tamper",
    ["missing", "wrong-secret", "other-body", "empty"],
)
def test_missing_or_bad_signature_is_401_and_wakes_nothing(
    receiver: WebhookReceiver, nudges: Counting, tamper: str
) -> None:
    body = MERGED.read_bytes()
    headers = signed(body)
    if tamper == "missing":
        del headers["X-Forgejo-Signature"]
    elif tamper == "wrong-secret":
        headers = signed(body, secret=b"not-the-secret-at-all")
    elif tamper == "other-body":
        body = body.replace(b'"merged": true', b'"merged": false')
    else:
        headers["X-Forgejo-Signature"] = ""
    reply = post(receiver, body, headers)
    assert reply.status_code == 401, reply.text
    assert (nudges.drain(), nudges.wakes) == (frozenset(), 0)


def test_a_repeated_delivery_is_acted_on_once(
    receiver: WebhookReceiver, nudges: Counting
) -> None:
    body = MERGED.read_bytes()
    headers = signed(body, delivery="d6f6d3a5-0000-4000-8000-000000000001")
    assert post(receiver, body, headers).status_code == 202
    again = post(receiver, body, headers)
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    assert nudges.wakes == 1


def test_an_oversized_body_is_413_unread(
    receiver: WebhookReceiver, nudges: Counting
) -> None:
    body = b"{" + b" " * (64 * 1024) + b"}"
    reply = post(receiver, body, signed(body))
    assert reply.status_code == 413
    assert nudges.wakes == 0


def test_an_unknown_repository_is_404(nudges: Counting) -> None:
    body = MERGED.read_bytes()
    with WebhookReceiver(secret=SECRET, repo="acme/ops", nudges=nudges) as receiver:
        reply = post(receiver, body, signed(body))
    assert reply.status_code == 404
    assert nudges.wakes == 0


def test_a_signed_body_that_is_not_json_is_400(
    receiver: WebhookReceiver, nudges: Counting
) -> None:
    body = b"not json"
    assert post(receiver, body, signed(body)).status_code == 400
    assert nudges.wakes == 0


def test_a_comment_on_the_pull_request_nudges_it(
    receiver: WebhookReceiver, nudges: Counting
) -> None:
    payload = {
        "action": "created",
        "issue": {"number": 12},
        "comment": {"id": 3, "body": "/vault hold"},
        "repository": {"full_name": MERGED_REPO},
        "is_pull": True,
    }
    body = json.dumps(payload, indent=2).encode()
    headers = signed(body, event=("issue_comment", "pull_request_comment"))
    assert post(receiver, body, headers).status_code == 202
    assert nudges.drain() == {12}


def test_other_events_only_wake(receiver: WebhookReceiver, nudges: Counting) -> None:
    body = json.dumps(
        {"ref": "refs/heads/main", "repository": {"full_name": MERGED_REPO}}
    )
    reply = post(receiver, body.encode(), signed(body.encode(), event=("push", "push")))
    assert reply.status_code == 202
    assert (nudges.drain(), nudges.wakes) == (frozenset(), 1)


# -- configuration ---------------------------------------------------------------------


def test_secret_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("0123456789abcdef0123456789abcdef\n")
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_webhook_secret(path)
    os.chmod(path, 0o600)
    assert load_webhook_secret(path) == b"0123456789abcdef0123456789abcdef"


def test_a_short_secret_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("short")
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError, match="shorter than 16 bytes"):
        load_webhook_secret(path)


def test_port_needs_a_secret_file_and_forgejo_mode(tmp_path: Path) -> None:
    ops = tmp_path / "ops"
    (ops / "vault").mkdir(parents=True)
    (ops / "vault" / "policy.toml").write_text("")
    config = tmp_path / "dispatcher.toml"
    config.write_text(f'[forge]\npath = "{ops}"\n[webhook]\nport = 8471\n')
    with pytest.raises(InvalidConfigError) as caught:
        load_settings({}, config)
    text = str(caught.value)
    assert "webhook.port" in text or "$.webhook.port" in text
    assert "secret_file" in text


def test_bind_defaults_to_loopback(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("0123456789abcdef0123456789abcdef")
    os.chmod(secret, 0o600)
    config = tmp_path / "dispatcher.toml"
    config.write_text(
        '[forge]\nkind = "forgejo"\nurl = "https://forge.example.org"\nrepo = "acme/ops"\n'
        f'[webhook]\nport = 0\nsecret_file = "{secret}"\n'
    )
    settings = load_settings({"OPSVAULT_FORGE_TOKEN": "t" * 40}, config)
    assert (settings.webhook.bind, settings.webhook.port) == ("127.0.0.1", 0)
    receiver = WebhookReceiver.from_settings(settings, Nudges())
    assert receiver is not None and receiver.bind == "127.0.0.1"
    assert "0123456789" not in repr(receiver)


def test_events_the_dispatcher_caused_wake_nothing(nudges: Counting) -> None:
    data = json.loads(MERGED.read_bytes())
    data["sender"]["login"] = "vault-bot"
    body = json.dumps(data, indent=2).encode()
    with WebhookReceiver(
        secret=SECRET, repo=MERGED_REPO, nudges=nudges, identity="vault-bot"
    ) as receiver:
        reply = post(receiver, body, signed(body))
    assert (reply.status_code, reply.json()["status"]) == (200, "own event")
    assert nudges.wakes == 0
