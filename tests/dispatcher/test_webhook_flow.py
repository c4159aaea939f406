"""The full flow through signed webhooks: merge in the fake → delivery → woken tick → fired.

The service ticks every hour here, so only a webhook can make it fire within
seconds; the fake Forgejo posts each delivery signed with the hook's secret,
the way Forgejo v15 does (testing/fake_forgejo/routes_hooks.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

import httpx

from opsvault.dispatcher.runner import RecordingRunner
from opsvault.dispatcher.service import run_service
from opsvault.dispatcher.webhooks import WebhookReceiver
from testing.fake_forgejo.routes_hooks import deliveries, wait_delivered
from tests.dispatcher.harness import HOOK, REPO, Harness

SECRET = "a-long-random-webhook-secret-for-tests"


def add_hook(vault: Harness, url: str, events: list[str]) -> None:
    reply = httpx.post(
        f"{vault.forge.api_url}/repos/{REPO}/hooks",
        headers={"Authorization": f"token {vault.tokens['alice']}"},
        json={
            "type": "forgejo",
            "config": {"url": url, "content_type": "json", "secret": SECRET},
            "events": events,
            "active": True,
        },
    )
    assert reply.status_code == 201, reply.text


def wait_for(condition: Callable[[], object], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_a_merge_fires_through_a_signed_webhook_within_seconds(vault: Harness) -> None:
    number = vault.propose("deploy-1", HOOK.format(n=1))
    app = vault.app()
    vault.tick(app)  # classified and notified; medium waits for a reviewer
    receiver = WebhookReceiver(
        secret=SECRET.encode(),
        repo=REPO,
        nudges=app.nudges,
        port=0,
        identity=app.identity,
    )
    stop = threading.Event()
    results = []
    service = threading.Thread(
        target=lambda: results.append(
            run_service(
                app,
                timedelta(hours=1),  # polling alone would take an hour
                stop=stop,
                install_signals=False,
                clock=lambda: vault.now[0],
                webhook=receiver,
            )
        )
    )
    service.start()
    try:
        assert wait_for(lambda: receiver._server is not None)
        host, port = receiver.address
        add_hook(vault, f"http://{host}:{port}/webhook", ["pull_request"])
        vault.at(timedelta(minutes=10))
        started = time.monotonic()
        vault.merge_as("bob", number)  # a reviewer merges in Forgejo
        assert isinstance(vault.runner, RecordingRunner)
        runner = vault.runner
        assert wait_for(lambda: [r.action_id for r in runner.requests] == ["deploy-1"])
        latency = time.monotonic() - started
        assert wait_for(lambda: bool(vault.main_files("vault/fired")))
    finally:
        stop.set()
        service.join(timeout=30)
    assert wait_delivered(vault.forge)
    sent = deliveries(vault.forge)
    merged = [d for d in sent if b'"merged": true' in d.body]
    assert merged and merged[0].status == 202
    assert merged[0].headers["X-Forgejo-Event-Type"] == "pull_request"
    assert latency < 5.0
    assert receiver.accepted >= 1 and receiver.refused == 0


def test_a_delivery_signed_with_another_secret_wakes_nothing(vault: Harness) -> None:
    app = vault.app()
    receiver = WebhookReceiver(
        secret=b"the-dispatcher-knows-another-secret", repo=REPO, nudges=app.nudges
    )
    woken = []
    app.nudges.wake = lambda: woken.append(1)
    with receiver:
        host, port = receiver.address
        add_hook(vault, f"http://{host}:{port}/", ["pull_request"])
        number = vault.propose("deploy-1", HOOK.format(n=1))
        vault.client("bob").create_comment(number, "/vault hold")
        assert wait_delivered(vault.forge)
    assert [d.status for d in deliveries(vault.forge)] == [401]
    assert woken == [] and app.nudges.drain() == frozenset()
