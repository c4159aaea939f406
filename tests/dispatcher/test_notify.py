from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from opsvault._resources import data_dir
from opsvault.dispatcher.notify import (
    RecordingNotifier,
    WebhookNotifier,
    render_ntfy_message,
    render_webhook_payload,
    sinks_named,
)
from opsvault.dispatcher.secrets import EnvSecrets
from opsvault.messages import Notification
from opsvault.policy.model import Policy, Sink
from opsvault.policy.parse import parse_policy
from opsvault.vault.tier import Tier

TOKEN = "s3cr3t-notify-token-value"
NOTE = Notification(
    event="approval-needed",
    title="restart-web-1 needs an admin",
    body="high tier: destructive-hook",
    tier="high",
    url="https://forge.example/acme/ops/pulls/7",
    action_ids=("restart-web-1",),
    mentions=("alice", "acme/ops-admins"),
)


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def notifier(sleeps: Sleeps) -> Iterator[WebhookNotifier]:
    with WebhookNotifier(
        EnvSecrets({"OPSVAULT_SECRET_NOTIFY_TOKEN": TOKEN}), sleep=sleeps, timeout=5.0
    ) as n:
        yield n


def test_webhook_posts_the_documented_json(
    httpserver: HTTPServer, notifier: WebhookNotifier
) -> None:
    httpserver.expect_oneshot_request(
        "/hook",
        method="POST",
        headers={"Content-Type": "application/json"},
        json={
            "event": "approval-needed",
            "title": "restart-web-1 needs an admin",
            "body": "high tier: destructive-hook",
            "tier": "high",
            "url": "https://forge.example/acme/ops/pulls/7",
            "action_ids": ["restart-web-1"],
            "mentions": ["alice", "acme/ops-admins"],
            "source": "opsvault",
        },
    ).respond_with_data("ok")
    failed = notifier.notify(
        [Sink("ops", "webhook", httpserver.url_for("/hook"))], NOTE
    )
    httpserver.check_assertions()
    assert failed == []
    (request, _), *_ = httpserver.log
    assert "Authorization" not in request.headers


def test_ntfy_posts_plain_text_with_ntfy_headers(
    httpserver: HTTPServer, notifier: WebhookNotifier
) -> None:
    httpserver.expect_oneshot_request(
        "/ops-alerts",
        method="POST",
        headers={
            "Title": "restart-web-1 needs an admin",
            "Priority": "default",
            "Tags": "hourglass,opsvault,approval-needed,tier-high",
            "Click": "https://forge.example/acme/ops/pulls/7",
        },
    ).respond_with_json({"id": "x"})
    sink = Sink("phone", "ntfy", httpserver.url_for("/ops-alerts"))
    assert notifier.notify([sink], NOTE) == []
    httpserver.check_assertions()
    (request, _), *_ = httpserver.log
    assert request.headers["Content-Type"].startswith("text/plain")
    assert request.get_data(as_text=True) == (
        "high tier: destructive-hook\n\n"
        "actions: restart-web-1\n\n"
        "approvers: alice, acme/ops-admins\n\n"
        "https://forge.example/acme/ops/pulls/7"
    )


def test_ntfy_title_is_one_line_and_rfc2047_encoded_when_not_ascii() -> None:
    headers, _ = render_ntfy_message(
        Notification("failed", "déploiement\r\nX-Injected: 1", "")
    )
    assert headers["Title"].startswith("=?utf-8?")
    assert "\n" not in headers["Title"]
    assert headers["Priority"] == "high"
    ascii_headers, _ = render_ntfy_message(Notification("failed", "a\nb", ""))
    assert ascii_headers["Title"] == "a b"


def test_bearer_token_comes_from_the_named_secret(
    httpserver: HTTPServer, notifier: WebhookNotifier
) -> None:
    httpserver.expect_oneshot_request(
        "/hook", method="POST", headers={"Authorization": f"Bearer {TOKEN}"}
    ).respond_with_data("ok")
    sink = Sink("ops", "webhook", httpserver.url_for("/hook"), "NOTIFY_TOKEN")
    assert notifier.notify([sink], NOTE) == []
    httpserver.check_assertions()


def test_missing_token_secret_fails_the_sink_without_posting(
    httpserver: HTTPServer, notifier: WebhookNotifier
) -> None:
    sink = Sink("ops", "webhook", httpserver.url_for("/hook"), "ABSENT_TOKEN")
    assert notifier.notify([sink], NOTE) == ["ops"]
    assert httpserver.log == []


def test_retries_on_503_then_succeeds(
    httpserver: HTTPServer, notifier: WebhookNotifier, sleeps: Sleeps
) -> None:
    httpserver.expect_ordered_request("/hook", method="POST").respond_with_data(
        "busy", status=503
    )
    httpserver.expect_ordered_request("/hook", method="POST").respond_with_data("ok")
    assert (
        notifier.notify([Sink("ops", "webhook", httpserver.url_for("/hook"))], NOTE)
        == []
    )
    httpserver.check_assertions()
    assert len(httpserver.log) == 2
    assert sleeps == [1.0]


def test_persistent_5xx_is_reported_after_bounded_retries(
    httpserver: HTTPServer, notifier: WebhookNotifier, sleeps: Sleeps
) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data(
        "down", status=502
    )
    good = Sink("good", "webhook", httpserver.url_for("/good"))
    httpserver.expect_request("/good", method="POST").respond_with_data("ok")
    bad = Sink("bad", "webhook", httpserver.url_for("/hook"))
    assert notifier.notify([bad, good], NOTE) == ["bad"]
    assert [r.path for r, _ in httpserver.log] == ["/hook"] * 3 + ["/good"]
    assert sleeps == [1.0, 2.0]


def test_4xx_is_not_retried(
    httpserver: HTTPServer, notifier: WebhookNotifier, sleeps: Sleeps
) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data(
        "nope", status=403
    )
    assert notifier.notify(
        [Sink("ops", "webhook", httpserver.url_for("/hook"))], NOTE
    ) == ["ops"]
    assert len(httpserver.log) == 1
    assert sleeps == []


def test_connection_errors_are_retried_then_reported(sleeps: Sleeps) -> None:
    calls: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("connection refused", request=request)

    with WebhookNotifier(
        EnvSecrets({}), transport=httpx.MockTransport(refuse), sleep=sleeps, retries=1
    ) as notifier:
        assert notifier.notify(
            [Sink("ops", "webhook", "http://hooks.test/x")], NOTE
        ) == ["ops"]
    assert len(calls) == 2
    assert sleeps == [1.0]


def test_unknown_kind_fails_that_sink_only(
    httpserver: HTTPServer, notifier: WebhookNotifier
) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    sinks = [
        Sink("odd", "carrier-pigeon", httpserver.url_for("/odd")),
        Sink("ops", "webhook", httpserver.url_for("/hook")),
    ]
    assert notifier.notify(sinks, NOTE) == ["odd"]


def test_token_never_reaches_the_logs(
    httpserver: HTTPServer,
    notifier: WebhookNotifier,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def echo_auth(request: Request) -> Response:
        return Response(f"denied {request.headers.get('Authorization')}", status=500)

    httpserver.expect_request("/hook", method="POST").respond_with_handler(echo_auth)
    caplog.set_level(logging.DEBUG)
    sink = Sink("ops", "webhook", httpserver.url_for("/hook"), "NOTIFY_TOKEN")
    assert notifier.notify([sink], NOTE) == ["ops"]
    assert "ops" in caplog.text
    assert "500" in caplog.text
    assert TOKEN not in caplog.text
    assert "/hook" not in "".join(
        r.getMessage() for r in caplog.records if r.name.startswith("opsvault")
    )


def test_recording_notifier_records_and_fails_on_request() -> None:
    notifier = RecordingNotifier(failing=frozenset({"down"}))
    sinks = [Sink("ops", "webhook", "http://x"), Sink("down", "ntfy", "http://y")]
    assert notifier.notify(sinks, NOTE) == ["down"]
    assert notifier.sent == [("ops", NOTE)]


def test_sinks_named_keeps_order_and_skips_unknown() -> None:
    a, b = Sink("a", "webhook", "http://a"), Sink("b", "ntfy", "http://b")
    policy = Policy(default_tier=Tier.HIGH, tiers={}, sinks=(a, b))
    assert sinks_named(policy, ["b", "zz", "a", "b"]) == (b, a)
    assert sinks_named(policy, []) == ()


DOC = Path(__file__).parents[2] / "docs" / "operating-notifications.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(), flags=re.S)


def test_documented_payload_is_what_a_webhook_receives() -> None:
    (example,) = _blocks("json")
    assert json.loads(example) == render_webhook_payload(NOTE)


def test_documented_sinks_parse_into_the_policy() -> None:
    (fragment,) = _blocks("toml")
    template = (data_dir("ops-template") / "vault" / "policy.toml").read_text()
    high = '[tiers.high]\nmerge = "admin"\nnotify = []\ndeadline = "7d"\n'
    assert high in template
    policy = parse_policy(template.replace(high, fragment), "vault/policy.toml")
    assert sinks_named(policy, policy.settings(Tier.HIGH).notify) == (
        Sink("ops-admins", "webhook", "https://hooks.example/opsvault", "NOTIFY_TOKEN"),
        Sink("phone", "ntfy", "https://ntfy.example/ops-alerts"),
    )
