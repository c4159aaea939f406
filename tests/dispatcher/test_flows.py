"""End-to-end dispatcher flows, with real git, on both forges: LocalForge and the fake Forgejo."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from opsvault.dispatcher.runner import RecordingRunner
from tests.dispatcher.harness import HOOK, HUMAN, NOOP
from tests.dispatcher.harness import Harness as ForgejoHarness
from tests.dispatcher.local_harness import LocalHarness, both_forges

Harness = ForgejoHarness | LocalHarness
pytestmark = both_forges  # every flow here runs once per forge


def records(vault: Harness, family: str) -> dict[str, dict[str, Any]]:
    out = {}
    for path in vault.main_files(family):
        if path.endswith(".result.json"):
            data = json.loads(vault.main_file(path) or b"{}")
            out[data["id"]] = data
    return out


def test_low_tier_is_merged_fired_and_recorded_in_one_tick(vault: Harness) -> None:
    number = vault.propose("noop-smoke-1", NOOP.format(msg="hi"))
    report = vault.tick()
    assert report.ok, report.errors
    events = {(d.subject, d.event) for d in report.decisions}
    assert ("pr#1", "merged") in events
    assert ("action:noop-smoke-1", "claimed") in events
    assert ("action:noop-smoke-1", "succeeded") in events
    pr = vault.pull(number)
    assert pr.merged and pr.merged_by == "vault-bot"
    fired = records(vault, "vault/fired")
    record = fired["noop-smoke-1"]
    assert record["outcome"] == "succeeded"
    assert record["approver"] == "vault-bot"
    assert record["proposer"] == "dev-bot"
    assert record["tier"] == "low"
    assert record["pr"] == number
    assert record["head_commit"] == pr.head_sha
    assert record["merge_commit"] == pr.merge_commit_sha
    assert vault.main_files("vault/running") == ["vault/running/.gitkeep"]
    assert [p for p in vault.main_files("vault/actions") if p.endswith(".toml")] == []
    assert report.commits <= 2
    runner = vault.runner
    assert isinstance(runner, RecordingRunner)
    assert [r.action_id for r in runner.requests] == ["noop-smoke-1"]
    # idempotent: nothing happens on the next tick
    again = vault.tick(at=timedelta(minutes=1))
    assert again.commits == 0
    assert len(runner.requests) == 1


def test_publishes_status_label_and_one_comment(vault: Harness) -> None:
    number = vault.propose("deploy-1", HOOK.format(n=1))
    vault.tick()
    vault.tick(at=timedelta(minutes=1))
    client = vault.client("alice")
    comments = [c for c in client.fetch_comments(number) if "opsvault:tier" in c.body]
    assert len(comments) == 1
    assert "**MEDIUM**" in comments[0].body
    assert "vault/tier/medium" in vault.pull(number).labels
    assert not vault.pull(number).merged


def test_medium_waits_notifies_once_then_fires_after_reviewer_merge(
    vault: Harness,
) -> None:
    number = vault.propose("deploy-1", HOOK.format(n=1))
    vault.tick()
    vault.tick(at=timedelta(minutes=1))
    # The medium notify list is empty in the template.
    assert [n.event for _s, n in vault.notifier.sent] == []
    vault.merge_as("bob", number)
    report = vault.tick(at=timedelta(minutes=2))
    assert report.ok, report.errors
    fired = records(vault, "vault/fired")
    assert fired["deploy-1"]["approver"] == "bob"
    assert fired["deploy-1"]["tier"] == "medium"


def test_high_is_never_merged_by_the_dispatcher_and_admins_are_notified(
    vault: Harness,
) -> None:
    number = vault.propose("rotate-key-1", HUMAN)
    vault.tick()
    vault.tick(at=timedelta(hours=1))
    assert not vault.pull(number).merged
    notified = [(sink, n.event) for sink, n in vault.notifier.sent]
    assert notified == [("ops", "approval-needed")]


def test_human_request_is_recorded_done_on_admin_merge(vault: Harness) -> None:
    number = vault.propose("rotate-key-1", HUMAN)
    vault.tick()
    vault.merge_as("alice", number)
    report = vault.tick(at=timedelta(minutes=5))
    assert report.ok, report.errors
    record = records(vault, "vault/fired")["rotate-key-1"]
    assert record["outcome"] == "done"
    assert record["approver"] == "alice"
    assert isinstance(vault.runner, RecordingRunner) and vault.runner.requests == []


def test_dispatcher_refuses_a_token_of_another_user(vault: Harness) -> None:
    from opsvault.app import verify_identity
    from opsvault.errors import ConfigError

    app = vault.app()
    verify_identity(app)  # vault-bot's token, identity vault-bot: fine
    app.forge = vault.client("alice")
    with pytest.raises(ConfigError, match="belongs to 'alice'"):
        verify_identity(app)
