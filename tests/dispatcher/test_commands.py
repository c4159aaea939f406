"""`/vault` commands in the PR conversation, on both forges (issue 9 §4)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from opsvault.dispatcher.runner import RecordingRunner
from opsvault.errors import ForgeConflict
from opsvault.forge.types import TimelineKind
from tests.dispatcher.harness import HOOK, NOOP, Harness
from tests.dispatcher.local_harness import veto_on_both_forges

HOLD = "vault/hold"

pytestmark = veto_on_both_forges  # every command flow runs once per forge


def living(vault: Harness, number: int) -> str:
    return next(
        c.body
        for c in vault.client("alice").fetch_comments(number)
        if "opsvault:tier" in c.body
    )


def say(vault: Harness, user: str, number: int, body: str) -> int:
    return vault.client(user).create_comment(number, body).id


def dispatcher_label_events(vault: Harness, number: int) -> list[TimelineKind]:
    return [
        e.kind
        for e in vault.client("alice").fetch_timeline(number)
        if e.actor == "vault-bot" and e.label == HOLD
    ]


def test_explain_posts_the_reasons_in_the_living_comment(veto: Harness) -> None:
    number = veto.propose("deploy-1", HOOK.format(n=1))
    veto.tick()
    asked = say(veto, "mallory", number, "/vault explain")
    veto.tick(at=timedelta(minutes=1))
    body = living(veto, number)
    assert f"@mallory `/vault explain` (comment {asked}): explained below" in body
    assert "Explanation (`/vault explain`):" in body
    assert "vault/actions/deploy-1.toml" in body
    assert "veto window of 2h" in body
    comments = veto.client("alice").fetch_comments(number)
    assert [c.author for c in comments].count("vault-bot") == 1  # no reply comments


def test_a_command_is_executed_once_across_ticks(veto: Harness) -> None:
    number = veto.propose("deploy-1", HOOK.format(n=1))
    veto.tick()
    say(veto, "bob", number, "/vault hold")
    veto.tick(at=timedelta(minutes=1))
    assert dispatcher_label_events(veto, number) == [TimelineKind.LABEL_ADDED]
    veto.client("alice").remove_label(number, HOLD)  # an admin lifts the hold
    for minutes in (2, 3, 4):
        veto.tick(at=timedelta(minutes=minutes))
    assert HOLD not in veto.pull(number).labels  # the hold was not executed again
    assert dispatcher_label_events(veto, number) == [TimelineKind.LABEL_ADDED]


def test_a_command_is_executed_once_across_replicas(veto: Harness) -> None:
    number = veto.propose("deploy-1", HOOK.format(n=1))
    veto.tick(veto.app("d1"))
    bob = veto.client("bob")
    bob.ensure_label(HOLD, "b71c1c")
    bob.add_labels(number, [HOLD])
    say(veto, "bob", number, "/vault release")
    veto.tick(veto.app("d1"), at=timedelta(minutes=1))
    assert HOLD not in veto.pull(number).labels
    veto.client("alice").add_labels(number, [HOLD])  # a new hold after the release
    report = veto.tick(veto.app("d2"), at=timedelta(hours=3))  # a fresh replica
    assert report.ok, report.errors
    assert HOLD in veto.pull(number).labels  # the release was not executed again
    assert not veto.pull(number).merged
    assert dispatcher_label_events(veto, number) == [TimelineKind.LABEL_REMOVED]


def test_refused_commands_name_the_reason(veto: Harness) -> None:
    number = veto.propose("deploy-1", HOOK.format(n=1))
    veto.tick()
    hold = say(veto, "mallory", number, "/vault hold")
    odd = say(veto, "bob", number, "/vault frobnicate")
    retry = say(veto, "mallory", number, "/vault retry")
    veto.tick(at=timedelta(minutes=1))
    body = living(veto, number)
    assert (
        f"@mallory `/vault hold` (comment {hold}): refused: @mallory may not hold"
        in body
    )
    assert f"@bob `/vault frobnicate` (comment {odd}): refused: unknown command" in body
    assert f"@mallory `/vault retry` (comment {retry}): refused" in body
    assert HOLD not in veto.pull(number).labels


def test_retry_merges_after_a_transient_refusal(veto: Harness) -> None:
    number = veto.propose("note-1", NOOP.format(msg="hi"))
    app = veto.app()
    real_merge = app.forge.merge
    refusals = [ForgeConflict("PR #1: 405 Please try again later")]

    def merge_refused_once(*args: Any, **kwargs: Any) -> Any:
        if refusals:  # what the client raises for Forgejo's transient 405
            raise refusals.pop()
        return real_merge(*args, **kwargs)

    app.forge.merge = merge_refused_once  # type: ignore[method-assign]
    report = veto.tick(app)
    assert not veto.pull(number).merged, report.decisions
    assert any(d.event == "merge refused by forge" for d in report.decisions)
    asked = say(veto, "dev-bot", number, "/vault retry")  # the proposer may ask
    report = veto.tick(app, at=timedelta(minutes=1))
    assert report.ok, report.errors
    assert veto.pull(number).merged
    assert isinstance(veto.runner, RecordingRunner)
    assert [r.action_id for r in veto.runner.requests] == ["note-1"]
    assert any(d.event == "command" and "retry" in d.detail for d in report.decisions)
    assert asked
