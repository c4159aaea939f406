"""Conformance of the fake's webhooks with Forgejo v15.0.3.

Mirrors routers/api/v1/utils/hook.go (``addHook``: inactive unless ``active``,
events default to ``push``), services/webhook/shared/payloader.go (two-space
indented JSON; hex HMAC-SHA256 of the raw body in X-Forgejo-Signature and
X-Gitea-Signature, ``sha256=`` in X-Hub-Signature-256; a uuid delivery id),
services/webhook/deliver.go (one attempt, never retried) and
modules/structs/hook.go (PullRequestPayload: ``action``, ``number``,
``pull_request``, ``repository``, ``sender``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from testing.fake_forgejo.pytest_plugin import assert_no_violations
from testing.fake_forgejo.routes_hooks import deliveries, wait_delivered
from testing.fake_forgejo.server import FakeForgejo

API = "/repos/ops/vault"


class _Sink(BaseHTTPRequestHandler):
    status = 200

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(self.status)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def sink() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[FakeForgejo, httpx.Client]]:
    with FakeForgejo(tmp_path / "forge") as forge:
        token = forge.add_user("alice")
        forge.add_org("ops")
        forge.create_repo("ops", "vault", {"README.md": "hello\n"})
        forge.add_collaborator("ops/vault", "alice", "admin")
        forge.push("ops/vault", "topic", {"a.md": "a\n"}, author="alice")
        client = httpx.Client(
            base_url=forge.api_url, headers={"Authorization": f"token {token}"}
        )
        try:
            yield forge, client
        finally:
            client.close()
    assert_no_violations(forge)


def hook(client: httpx.Client, url: str, **extra: object) -> dict[str, Any]:
    body = {
        "type": "forgejo",
        "config": {"url": url, "content_type": "json", "secret": "s3cret"},
        **extra,
    }
    reply = client.post(f"{API}/hooks", json=body)
    assert reply.status_code == 201, reply.text
    data: dict[str, Any] = reply.json()
    return data


def test_a_hook_is_inactive_and_push_only_by_default(
    world: tuple[FakeForgejo, httpx.Client], sink: str
) -> None:
    forge, client = world
    data = hook(client, sink)
    assert (data["active"], data["events"]) == (False, ["push"])
    assert "secret" not in data["config"]
    client.post(f"{API}/pulls", json={"head": "topic", "base": "main", "title": "t"})
    assert wait_delivered(forge)
    assert deliveries(forge) == []


def test_a_pull_request_event_is_signed_over_the_raw_body(
    world: tuple[FakeForgejo, httpx.Client], sink: str
) -> None:
    forge, client = world
    hook(client, sink, events=["pull_request"], active=True)
    reply = client.post(
        f"{API}/pulls", json={"head": "topic", "base": "main", "title": "t"}
    )
    assert reply.status_code == 201
    assert wait_delivered(forge)
    (sent,) = deliveries(forge)
    digest = hmac.new(b"s3cret", sent.body, hashlib.sha256).hexdigest()
    assert sent.headers["X-Forgejo-Signature"] == digest
    assert sent.headers["X-Gitea-Signature"] == digest
    assert sent.headers["X-Hub-Signature-256"] == f"sha256={digest}"
    assert sent.headers["X-Forgejo-Event-Type"] == "pull_request"
    assert len(sent.headers["X-Forgejo-Delivery"]) == 36
    assert sent.body.startswith(b'{\n  "action": "opened"')
    payload = json.loads(sent.body)
    assert payload["number"] == reply.json()["number"]
    assert payload["repository"]["full_name"] == "ops/vault"
    assert payload["sender"]["login"] == "alice"
    assert payload["sender"]["is_admin"] is False


def test_a_failed_delivery_is_not_retried(
    world: tuple[FakeForgejo, httpx.Client], tmp_path: Path
) -> None:
    forge, client = world
    hook(
        client,
        "http://127.0.0.1:9/nothing-listens",
        events=["pull_request"],
        active=True,
    )
    client.post(f"{API}/pulls", json={"head": "topic", "base": "main", "title": "t"})
    assert wait_delivered(forge)
    assert [d.status for d in deliveries(forge)] == [0]
