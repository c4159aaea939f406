"""docs/forgejo.md "Webhook": its dispatcher.toml and hook examples work as written."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import httpx

from opsvault.config import load_settings
from opsvault.dispatcher.nudges import Nudges
from opsvault.dispatcher.webhooks import WebhookReceiver
from testing.fake_forgejo.routes_hooks import deliveries, wait_delivered
from tests.dispatcher.harness import REPO, make_harness

DOC = (Path(__file__).resolve().parents[2] / "docs" / "forgejo.md").read_text()
SECTION = DOC[DOC.index("## Webhook") : DOC.index("## Commands in the pull request")]


def block(language: str) -> str:
    match = re.search(rf"```{language}\n(.*?)```", SECTION, re.DOTALL)
    assert match, f"no {language} block in the Webhook section"
    return match.group(1).replace("\n   ", "\n")


def private(path: Path, text: str) -> Path:
    path.write_text(text)
    os.chmod(path, 0o600)
    return path


def test_the_config_example_loads_and_builds_a_receiver(tmp_path: Path) -> None:
    text = block("toml")
    token = private(tmp_path / "forge-token", "t" * 40)
    secret = private(tmp_path / "webhook-secret", "0123456789abcdef" * 4)
    text = text.replace("/run/credentials/opsvault/forge-token", str(token))
    text = text.replace("/run/credentials/opsvault/webhook-secret", str(secret))
    config = tmp_path / "dispatcher.toml"
    config.write_text(text)
    settings = load_settings({}, config)
    webhook = settings.webhook
    assert (webhook.port, webhook.bind, webhook.max_body) == (
        8471,
        "127.0.0.1",
        1 << 20,
    )
    receiver = WebhookReceiver.from_settings(settings, Nudges())
    assert receiver is not None and receiver.repo == "acme/ops"


def test_the_hook_example_is_accepted_and_delivers(tmp_path: Path) -> None:
    vault = make_harness(tmp_path)
    try:
        nudges = Nudges()
        secret = "0123456789abcdef0123456789abcdef"
        with WebhookReceiver(secret=secret.encode(), repo=REPO, nudges=nudges) as rx:
            host, port = rx.address
            body = json.loads(block("json"))
            body["config"]["url"] = f"http://{host}:{port}/webhook"
            body["config"]["secret"] = secret
            reply = httpx.post(
                f"{vault.forge.api_url}/repos/{REPO}/hooks",
                headers={"Authorization": f"token {vault.tokens['alice']}"},
                json=body,
            )
            assert reply.status_code == 201, reply.text
            number = vault.propose("note-1", 'formula = "noop"\ncontext = "x"\n')
            vault.client("bob").create_comment(number, "/vault explain")
            assert wait_delivered(vault.forge)
        assert [d.status for d in deliveries(vault.forge)] == [202]
        assert nudges.drain() == {number}
    finally:
        vault.close()
