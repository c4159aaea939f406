"""The metrics: one registry per service, bounded labels, and each counter's source."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from prometheus_client import REGISTRY

from opsvault.dispatcher.cache import PullEntry
from opsvault.dispatcher.nudges import Nudges
from opsvault.dispatcher.report import Decision, TickReport
from opsvault.dispatcher.status import RunningAction, Status, WaitingAction
from opsvault.dispatcher.webhooks import WebhookReceiver
from opsvault.errors import ForgeUnavailable, GitError, PushRejected
from opsvault.forge.client import ForgejoClient
from opsvault.forge.session import Backoff
from opsvault.forge.token import ForgeToken
from opsvault.web.metrics import Metrics, endpoint_class
from opsvault.web.service import CountingMainline
from tests.web.support import samples, value

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def text(metrics: Metrics) -> str:
    return metrics.render().decode()


def test_each_service_has_its_own_registry() -> None:
    one, two = Metrics(), Metrics()
    one.push("ok")
    assert value(text(one), "opsvault_git_pushes_total", result="ok") == 1
    assert value(text(two), "opsvault_git_pushes_total", result="ok") == 0
    assert REGISTRY.get_sample_value("opsvault_git_pushes_total") is None


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/repos/acme/ops/pulls", "GET repo/pulls"),
        ("POST", "/repos/acme/ops/pulls/12/merge", "POST repo/pulls/{n}/merge"),
        ("GET", "/repos/acme/ops/pulls/12/files?page=2", "GET repo/pulls/{n}/files"),
        ("GET", "/repos/acme/ops/branches/vault/<script>", "GET repo/branches/*"),
        ("GET", "/repos/acme/ops/contents/vault/policy.toml", "GET repo/contents/*"),
        ("GET", "/user", "GET user"),
        ("GET", "/orgs/acme/teams", "GET orgs/*"),
    ],
)
def test_endpoint_classes_are_bounded(method: str, path: str, expected: str) -> None:
    assert endpoint_class(method, path) == expected


def test_forge_requests_are_counted_by_endpoint_class_and_status() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/pulls/404"):
            return httpx.Response(404, json={"message": "not found"})
        if request.url.path.endswith("/pulls/500"):
            return httpx.Response(500, json={"message": "down"})
        return httpx.Response(200, json={"login": "vault-bot"})

    client = ForgejoClient(
        "https://forge.example",
        "acme",
        "ops",
        ForgeToken("t0ken"),
        transport=httpx.MockTransport(answer),
        backoff=Backoff(attempts=2, base=0.0, cap=0.0),
        sleep=lambda _: None,
    )
    metrics = Metrics()
    client.observe_requests(metrics.forge_request)
    assert client.whoami() == "vault-bot"
    with pytest.raises(Exception, match="404"):
        client.fetch_pull_request(404)
    with pytest.raises(ForgeUnavailable):
        client.fetch_pull_request(500)
    found = text(metrics)
    name = "opsvault_forge_requests_total"
    assert value(found, name, endpoint="GET user", status="200") == 1
    assert value(found, name, endpoint="GET repo/pulls/{n}", status="404") == 1
    # Retried.
    assert value(found, name, endpoint="GET repo/pulls/{n}", status="500") == 2
    client.close()


class _Mainline:
    def __init__(self, outcomes: list[Exception | None]) -> None:
        self.outcomes = outcomes

    @property
    def branch(self) -> str:
        return "main"

    def refresh(self) -> str:
        return "0" * 40

    def publish(self, new: str, expected_old: str) -> None:
        outcome = self.outcomes.pop(0)
        if outcome is not None:
            raise outcome

    def fetch_pull_head(self, number: int, sha: str) -> bool:
        return True


def test_pushes_and_compare_and_swap_losses_are_counted() -> None:
    metrics = Metrics()
    mainline = CountingMainline(
        _Mainline([None, PushRejected("main", "moved"), GitError("origin", "boom")]),
        metrics,
    )
    mainline.publish("b", "a")
    with pytest.raises(PushRejected):
        mainline.publish("c", "a")
    with pytest.raises(GitError):
        mainline.publish("c", "b")
    found = text(metrics)
    assert value(found, "opsvault_git_pushes_total", result="ok") == 1
    assert value(found, "opsvault_git_pushes_total", result="lost") == 1
    assert value(found, "opsvault_git_pushes_total", result="error") == 1
    assert value(found, "opsvault_git_push_cas_losses_total") == 1


def test_webhook_deliveries_accepted_and_refused() -> None:
    secret = b"s" * 32
    receiver = WebhookReceiver(secret=secret, repo="acme/ops", nudges=Nudges())
    metrics = Metrics()
    metrics.watch_webhook(lambda: (receiver.accepted, receiver.refused))
    body = json.dumps(
        {"repository": {"full_name": "acme/ops"}, "sender": {"login": "mallory"}}
    ).encode()
    signed = hmac.new(secret, body, hashlib.sha256).hexdigest()
    assert receiver.answer({"X-Forgejo-Signature": signed}, body)[0] == 202
    assert receiver.answer({"X-Forgejo-Signature": "0" * 64}, body)[0] == 401
    assert receiver.answer({}, body)[0] == 401
    found = text(metrics)
    assert value(found, "opsvault_webhook_deliveries_total", result="accepted") == 1
    assert value(found, "opsvault_webhook_deliveries_total", result="refused") == 2


def test_a_tick_counts_decisions_by_event_and_tier_and_outcomes() -> None:
    metrics = Metrics()
    report = TickReport(
        "2026-12-02T12:00:00Z",
        "2026-12-02T12:00:01Z",
        None,
        None,
        False,
        False,
        (
            Decision("pr#3", "classified", "medium (refused)"),
            Decision("pr#3", "notified", "waits"),
            Decision("action:a-1", "claimed", ""),
            Decision("action:a-1", "failed", "exit-1, exit 1"),
            Decision("main", "halted", ""),
        ),
        forge_requests=7,
    )
    metrics.observe_tick(
        report, 0.3, NOW, lambda s: "high" if s == "action:a-1" else "unknown"
    )
    metrics.observe_tick(None, 2.0, NOW)
    found = text(metrics)
    assert (
        value(found, "opsvault_decisions_total", event="notified", tier="medium") == 1
    )
    assert value(found, "opsvault_decisions_total", event="failed", tier="high") == 1
    assert value(found, "opsvault_decisions_total", event="halted", tier="unknown") == 1
    assert value(found, "opsvault_outcomes_total", outcome="failed") == 1
    assert value(found, "opsvault_outcomes_total", outcome="succeeded") == 0
    assert value(found, "opsvault_ticks_total", result="ok") == 1
    assert value(found, "opsvault_ticks_total", result="raised") == 1
    assert value(found, "opsvault_tick_duration_seconds_count") == 2
    assert value(found, "opsvault_tick_duration_seconds_bucket", le="0.5") == 1
    assert (
        value(found, "opsvault_last_successful_tick_timestamp_seconds")
        == NOW.timestamp()
    )
    assert value(found, "opsvault_forge_requests_last_tick") == 7


def test_gauges_follow_the_status_and_the_open_prs() -> None:
    metrics = Metrics()
    status = Status(
        source="x",
        halted=True,
        waiting=(
            WaitingAction("a-1", "vault/actions/a-1.toml", "low"),
            WaitingAction("a-2", "vault/actions/a-2.toml", "high"),
        ),
        running=(RunningAction("r-1", "vault/running/r-1.toml", stale=True),),
        sandboxed=True,
    )
    pulls = {
        "4": PullEntry("h", "2026-12-01T00:00:00Z", "medium", "2026-12-02T11:00:00Z"),
        "5": PullEntry("h", "2026-12-02T00:00:00Z", "medium", "2026-12-03T00:00:00Z"),
    }
    metrics.set_state(status, pulls, NOW)
    found = text(metrics)
    assert (
        value(found, "opsvault_actions_waiting", tier="medium", stage="approval") == 2
    )
    assert value(found, "opsvault_actions_waiting", tier="high", stage="fire") == 1
    assert value(found, "opsvault_queue_depth") == 2
    assert value(found, "opsvault_actions_running") == 1
    assert value(found, "opsvault_actions_past_deadline", stage="approval") == 1
    assert value(found, "opsvault_actions_past_deadline", stage="running") == 1
    assert value(found, "opsvault_halted") == 1
    assert value(found, "opsvault_steps_sandboxed") == 1
    assert all(
        labels
        for (name, labels) in samples(found)
        if name == "opsvault_actions_waiting"
    )


def test_a_failing_read_after_the_tick_never_fails_the_tick(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from opsvault.app import App
    from opsvault.config import Settings
    from opsvault.web.service import ServiceSurface

    unusable = cast(Any, None)  # the read after the tick trips over it
    app = App(
        settings=Settings(),
        forge=unusable,
        repo=unusable,
        mainline=unusable,
        runner=unusable,
        notifier=unusable,
        state_dir=tmp_path,
        identity="vault-bot",
    )
    surface = ServiceSurface(app)
    report = TickReport("t0", "t1", "a" * 40, "b" * 40, False, False, ())

    def tick(app: App, now: datetime, *, dry_run: bool = False) -> TickReport:
        return report

    assert surface.wrap(tick)(app, NOW) is report
    assert "the read after the tick failed" in caplog.text
    assert value(text(surface.metrics), "opsvault_ticks_total", result="ok") == 1
    assert surface.observed().ticks[0].result == "ok"
