"""Refusals: every way an action may reach main without the approval its tier needs."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from opsvault.dispatcher.runner import RecordingRunner
from opsvault.errors import ForgeConflict
from opsvault.forge.types import MergeResult
from tests.dispatcher.harness import GIT_MAKE, HOOK, NOOP, REPO, Harness
from tests.dispatcher.local_harness import both_forges


def rejected(vault: Harness) -> dict[str, dict[str, Any]]:
    out = {}
    for path in vault.main_files("vault/rejected"):
        if path.endswith(".result.json"):
            data = json.loads(vault.main_file(path) or b"{}")
            out[data["id"]] = data
    return out


def executed(vault: Harness) -> list[str]:
    assert isinstance(vault.runner, RecordingRunner)
    return [r.action_id for r in vault.runner.requests]


def assert_refused(vault: Harness, action_id: str, reason: str) -> None:
    report = vault.tick(at=timedelta(minutes=10))
    assert report.ok, report.errors
    record = rejected(vault)[action_id]
    assert (record["outcome"], record["reason"]) == ("refused", reason)
    assert action_id not in executed(vault)
    assert not [p for p in vault.main_files("vault/actions") if action_id in p]


@both_forges
def test_high_merged_by_a_non_admin_is_refused(vault: Harness) -> None:
    number = vault.propose("release-1", GIT_MAKE.format(n=1))
    vault.tick()
    vault.merge_as("bob", number)  # a reviewer, not an admin
    assert_refused(vault, "release-1", "merger-not-eligible")
    assert any(n.event == "refused" for _s, n in vault.notifier.sent)


@both_forges
def test_merged_by_the_proposer_is_refused(vault: Harness) -> None:
    number = vault.propose("release-1", GIT_MAKE.format(n=1), author="alice")
    vault.tick()
    vault.merge_as("alice", number)  # an admin, but the proposer
    assert_refused(vault, "release-1", "merged-by-proposer")


@both_forges
def test_merged_by_a_bot_is_refused(vault: Harness) -> None:
    number = vault.propose("deploy-1", HOOK.format(n=1), author="mallory")
    vault.tick()
    vault.merge_as("dev-bot", number)  # a proposer identity never approves
    assert_refused(vault, "deploy-1", "merged-by-bot")


@both_forges
def test_medium_merged_by_a_stranger_is_refused(vault: Harness) -> None:
    number = vault.propose("deploy-1", HOOK.format(n=1))
    vault.tick()
    vault.merge_as("mallory", number)  # has write access, is not a reviewer
    assert_refused(vault, "deploy-1", "merger-not-eligible")


def test_action_edited_on_main_after_merge_is_refused(vault: Harness) -> None:
    number = vault.propose("deploy-1", HOOK.format(n=1))
    vault.tick()
    vault.merge_as("bob", number)
    edited = HOOK.format(n=1).replace("deploy.example.org/1", "evil.example.org/1")
    vault.forge.push(
        REPO, "main", {"vault/actions/deploy-1.toml": edited}, author="mallory"
    )
    assert_refused(vault, "deploy-1", "changed-after-merge")


def test_action_pushed_straight_to_main_is_refused(vault: Harness) -> None:
    vault.forge.push(
        REPO,
        "main",
        {"vault/actions/sneaky-1.toml": NOOP.format(msg="x")},
        author="mallory",
    )
    assert_refused(vault, "sneaky-1", "no-merge")
    assert any(n.event == "refused" for _s, n in vault.notifier.sent)


def test_action_with_policy_edit_is_never_merged_and_forgejo_refuses_a_reviewer(
    vault: Harness,
) -> None:
    policy = (
        (vault.main_file("vault/policy.toml") or b"")
        .decode()
        .replace("[formulas]\n", '[formulas]\nhttp-hook = "low"\n')
    )
    number = vault.propose(
        "deploy-1", HOOK.format(n=1), extra={"vault/policy.toml": policy}
    )
    report = vault.tick()
    assert ("pr#1", "merged") not in {(d.subject, d.event) for d in report.decisions}
    assert not vault.pull(number).merged
    assert "vault/tier/high" in vault.pull(number).labels
    # docs/forgejo.md protects vault/policy.toml: Forgejo itself refuses a
    # reviewer's merge (only an admin with force_merge could merge it).
    with pytest.raises(ForgeConflict, match="Changed protected files"):
        vault.merge_as("bob", number)
    vault.tick()
    assert not vault.pull(number).merged
    assert "deploy-1" not in str(vault.main_files("vault"))


def test_head_changed_after_classification_is_not_merged(vault: Harness) -> None:
    number = vault.propose("noop-1", NOOP.format(msg="a"))
    app = vault.app()
    real_merge = app.forge.merge

    def racing_merge(n: int, head_sha: str, **kwargs: Any) -> MergeResult:
        # the proposer pushes again between classification and merge
        vault.forge.push(
            REPO,
            "vault/noop-1",
            {"vault/actions/noop-1.toml": NOOP.format(msg="b")},
            author="dev-bot",
        )
        return real_merge(n, head_sha, **kwargs)

    app.forge.merge = racing_merge  # type: ignore[method-assign, assignment]
    report = vault.tick(app)
    assert ("pr#1", "merge refused by forge") in {
        (d.subject, d.event) for d in report.decisions
    }
    assert not vault.pull(number).merged
    assert executed(vault) == []


@both_forges
def test_halt_stops_everything(vault: Harness) -> None:
    vault.push_main({"vault/HALT": "incident 42\n"}, author="alice")
    number = vault.propose("noop-1", NOOP.format(msg="a"))
    report = vault.tick()
    assert report.halted
    assert not vault.pull(number).merged
    assert executed(vault) == []
    assert report.commits == 0


@both_forges
def test_invalid_proposal_is_published_refused_and_never_merged(vault: Harness) -> None:
    number = vault.propose(
        "noop-1", 'formula = "noop"\ncontext = "x"\nsecrets = ["HOOK_TOKEN"]\n'
    )
    vault.tick()
    pr = vault.pull(number)
    assert not pr.merged
    assert "vault/tier/refused" in pr.labels
    body = next(
        c.body
        for c in vault.client("alice").fetch_comments(number)
        if "opsvault:tier" in c.body
    )
    assert "refused" in body and "$.secrets[0]" in body


def test_medium_is_merged_after_an_unvetoed_veto_window(veto: Harness) -> None:
    number = veto.propose("deploy-1", HOOK.format(n=1))
    veto.tick()
    veto.tick(at=timedelta(hours=1))
    assert not veto.pull(number).merged
    report = veto.tick(at=timedelta(hours=2, minutes=1))
    assert report.ok, report.errors
    assert veto.pull(number).merged
    fired = [
        p for p in veto.main_files("vault/fired") if p.endswith("deploy-1.result.json")
    ]
    assert fired, report.decisions


def test_hold_label_vetoes_the_window(veto: Harness) -> None:
    number = veto.propose("deploy-1", HOOK.format(n=1))
    veto.tick()
    client = veto.client("alice")
    client.ensure_label("vault/hold", "000000")
    client.add_labels(number, ["vault/hold"])
    veto.tick(at=timedelta(hours=3))
    assert not veto.pull(number).merged


def test_request_changes_vetoes_the_window(veto: Harness) -> None:
    from opsvault.forge.types import ReviewState

    number = veto.propose("deploy-1", HOOK.format(n=1))
    veto.tick()
    pr = veto.pull(number)
    import httpx

    with httpx.Client() as http:  # a reviewer asks for changes through the API
        reply = http.post(
            f"{veto.forge.api_url}/repos/acme/ops/pulls/{number}/reviews",
            headers={"Authorization": f"token {veto.tokens['bob']}"},
            json={"event": "REQUEST_CHANGES", "body": "no", "commit_id": pr.head_sha},
        )
    assert reply.status_code == 200, reply.text
    assert any(
        r.state is ReviewState.REQUEST_CHANGES
        for r in veto.client("alice").fetch_reviews(number)
    )
    veto.tick(at=timedelta(hours=3))
    assert not veto.pull(number).merged


@both_forges
def test_unmerged_pr_expires_after_its_tier_deadline(vault: Harness) -> None:
    number = vault.propose("deploy-1", HOOK.format(n=1))
    vault.tick()
    report = vault.tick(at=timedelta(hours=73))  # medium deadline in the template: 72h
    assert report.ok, report.errors
    assert vault.pull(number).state.value == "closed"
    record = rejected(vault)["deploy-1"]
    assert (record["outcome"], record["reason"]) == ("expired", "deadline-passed")
    again = vault.tick(at=timedelta(hours=74))
    assert again.commits == 0


@both_forges
def test_closing_a_pr_records_a_rejection(vault: Harness) -> None:
    number = vault.propose("deploy-1", HOOK.format(n=1))
    vault.tick()
    vault.client("alice").close_pull_request(number)
    vault.tick(at=timedelta(minutes=5))
    record = rejected(vault)["deploy-1"]
    assert (record["outcome"], record["reason"]) == ("rejected", "closed-unmerged")
