"""The dispatcher against Forgejo's real merge behaviour (issue 9 §2, ADR 0008).

Each test runs real ticks against the faithful fake under the branch
protection of docs/forgejo.md: listed PRs without ``merged_by``, merges
answered 405 while Forgejo re-checks mergeability, scheduled auto-merges
without a pin, and auto-detected merges attributed by commit e-mail.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pygit2

from opsvault.dispatcher.cache import load_cache
from opsvault.dispatcher.runner import RecordingRunner
from opsvault.dispatcher.tick import tick
from opsvault.forge.types import MergeResult
from tests.dispatcher.harness import GIT_MAKE, HOOK, NOOP, REPO, T0, Harness

MERGE = "/repos/{owner}/{repo}/pulls/{index}/merge"
ONE_PULL = "/repos/{owner}/{repo}/pulls/{index}"


def executed(vault: Harness) -> list[str]:
    assert isinstance(vault.runner, RecordingRunner)
    return [r.action_id for r in vault.runner.requests]


def record(vault: Harness, family: str, action_id: str) -> dict[str, object]:
    for path in vault.main_files(family):
        if path.endswith(f"/{action_id}.result.json"):
            return dict(json.loads(vault.main_file(path) or b"{}"))
    raise AssertionError(f"no {family} record for {action_id}")


def test_a_fresh_dispatcher_fires_an_action_a_reviewer_merged(vault: Harness) -> None:
    """The listing has merged_by null: provenance must read the single PR."""
    number = vault.propose("deploy-1", HOOK.format(n=1))
    vault.merge_as("bob", number)  # before any dispatcher ever ran
    report = vault.tick(vault.app("fresh"))
    assert report.ok, report.errors
    assert executed(vault) == ["deploy-1"]
    assert record(vault, "vault/fired", "deploy-1")["approver"] == "bob"


def test_a_new_replica_fires_what_another_replica_merged(vault: Harness) -> None:
    number = vault.propose("noop-1", NOOP.format(msg="a"))
    vault.wait_for_checks()
    vault.merge_as_dispatcher(number)  # replica 1 (with its mark, ADR 0004), then gone
    report = vault.tick(vault.app("replica2"))
    assert report.ok, report.errors
    assert executed(vault) == ["noop-1"]


def test_a_dispatcher_that_lost_its_merge_answer_fires_on_the_next_tick(
    vault: Harness,
) -> None:
    number = vault.propose("noop-1", NOOP.format(msg="a"))
    app = vault.app()
    vault.forge.faults.drop_after_write("POST", MERGE)
    vault.forge.faults.fail("GET", ONE_PULL, times=6)  # nor can it read the PR back
    lost = vault.tick(app)
    assert not lost.ok
    assert vault.pull(number).merged and executed(vault) == []
    assert load_cache(app.state_dir).merges == {}  # it never learnt of its merge
    report = vault.tick(app)
    assert report.ok, report.errors
    assert executed(vault) == ["noop-1"]


def test_a_merge_answered_try_again_later_is_retried_within_minutes(
    vault: Harness,
) -> None:
    """main moves between the listing and the merge: Forgejo answers 405."""
    number = vault.propose("noop-1", NOOP.format(msg="a"))
    app = vault.app()
    real_merge = app.forge.merge
    raced: list[str] = []

    def racing_merge(n: int, head_sha: str, **kwargs: Any) -> MergeResult:
        if not raced:  # someone's merge lands on main first
            raced.append(
                vault.forge.push(REPO, "main", {"x.txt": "x\n"}, author="alice")
            )
        return real_merge(n, head_sha, **kwargs)

    app.forge.merge = racing_merge  # type: ignore[method-assign, assignment]
    first = vault.tick(app, at=timedelta(seconds=5))
    assert ("pr#1", "merge refused by forge") in {
        (d.subject, d.event) for d in first.decisions
    }
    assert not vault.pull(number).merged
    due = load_cache(app.state_dir).pulls["1"].due
    assert due <= (T0 + timedelta(minutes=1)).isoformat()
    second = vault.tick(app, at=timedelta(minutes=1))
    assert second.ok, second.errors
    assert vault.pull(number).merged
    assert executed(vault) == ["noop-1"]


def test_a_pr_forgejo_is_still_checking_is_tried_again_within_minutes(
    vault: Harness,
) -> None:
    vault.forge.checking_seconds = 45  # a slow Forgejo queue: mergeable is false
    number = vault.propose("noop-1", NOOP.format(msg="a"))
    app = vault.app()
    first = vault.tick(app, at=timedelta(seconds=5))
    assert ("pr#1", "merge deferred") in {(d.subject, d.event) for d in first.decisions}
    due = load_cache(app.state_dir).pulls["1"].due
    assert due <= (T0 + timedelta(minutes=1)).isoformat()
    second = vault.tick(app, at=timedelta(minutes=1))
    assert second.ok, second.errors
    assert vault.pull(number).merged
    assert executed(vault) == ["noop-1"]


def test_after_a_merge_the_next_low_pr_waits_for_a_later_tick(vault: Harness) -> None:
    first = vault.propose("noop-1", NOOP.format(msg="a"))
    second = vault.propose("noop-2", NOOP.format(msg="b"))
    app = vault.app()
    report = vault.tick(app)
    events = {
        d.event: d.subject for d in report.decisions if d.subject.startswith("pr#")
    }
    assert {events["merged"], events["merge deferred"]} == {
        f"pr#{first}",
        f"pr#{second}",
    }
    vault.tick(app)
    assert vault.pull(first).merged and vault.pull(second).merged
    assert sorted(executed(vault)) == ["noop-1", "noop-2"]


def test_a_dismissed_bot_approval_is_renewed_at_the_new_head(vault: Harness) -> None:
    """With required approvals, a push dismisses the bot's approval; it approves again."""
    rule = vault.forge.repo(REPO).protections[0]
    from dataclasses import replace

    vault.forge.protect_branch(REPO, replace(rule, required_approvals=1))
    vault.forge.checking_seconds = 45
    number = vault.propose("noop-1", NOOP.format(msg="a"))
    app = vault.app()
    vault.tick(app, at=timedelta(seconds=5))  # approves, merge: still checking
    vault.forge.push(
        REPO,
        "vault/noop-1",
        {"vault/actions/noop-1.toml": NOOP.format(msg="b")},
        author="dev-bot",
    )
    reviews = vault.client("alice").fetch_reviews(number)
    assert reviews and all(r.dismissed for r in reviews)  # dismiss_stale_approvals
    report = vault.tick(app, at=timedelta(minutes=2))
    assert report.ok, report.errors
    assert vault.pull(number).merged
    live = [r for r in vault.client("alice").fetch_reviews(number) if not r.dismissed]
    assert [r.commit_id for r in live] == [vault.pull(number).head_sha]
    assert executed(vault) == ["noop-1"]


def test_a_medium_merge_without_the_mergers_approval_is_refused(vault: Harness) -> None:
    number = vault.propose("deploy-1", HOOK.format(n=1))
    vault.tick()
    vault.merge_unapproved("bob", number)
    vault.tick(at=timedelta(minutes=10))
    assert record(vault, "vault/rejected", "deploy-1")["reason"] == "merge-not-vouched"
    assert executed(vault) == []


def test_an_auto_merge_of_a_head_pushed_after_scheduling_is_refused(
    vault: Harness,
) -> None:
    """alice approves and schedules a merge of a medium change; the proposer then
    pushes a different action, which Forgejo merges (no pin) in alice's name."""
    number = vault.propose("deploy-1", HOOK.format(n=1))
    vault.tick()
    vault.wait_for_checks()
    head = vault.pull(number).head_sha
    alice = vault.client("alice")
    alice.approve(number, head, "fine")
    with httpx.Client(
        base_url=vault.forge.api_url,
        headers={"Authorization": f"token {vault.tokens['alice']}"},
    ) as http:
        scheduled = http.post(
            f"/repos/{REPO}/pulls/{number}/merge",
            json={"Do": "merge", "merge_when_checks_succeed": True},
        )
    assert scheduled.status_code == 201
    vault.forge.push(
        REPO,
        "vault/deploy-1",
        {"vault/actions/deploy-1.toml": HOOK.format(n=666)},
        author="dev-bot",
    )
    vault.tick(at=timedelta(minutes=1))  # classifies the new head, publishes vault/tier
    vault.wait_for_checks()  # Forgejo's check ends: the scheduled merge runs
    pr = vault.pull(number)
    assert pr.merged and pr.merged_by == "alice" and pr.head_sha != head
    vault.tick(at=timedelta(minutes=10))
    assert record(vault, "vault/rejected", "deploy-1")["reason"] == "merge-not-vouched"
    assert executed(vault) == []


def test_an_auto_detected_merge_with_a_forged_author_email_is_refused(
    vault: Harness,
) -> None:
    """Forgejo names as merger whoever owns the merge commit's author e-mail."""
    vault.forge.repo(REPO).autodetect_manual_merge = True
    number = vault.propose("release-1", GIT_MAKE.format(n=1))
    vault.tick()
    store = vault.forge.repo(REPO).git
    forged = pygit2.Signature("alice", "alice@example.invalid", 1795000000, 0)
    head = vault.pull(number).head_sha
    store.merge("main", head, "merge release-1", forged)  # pushed past the API
    pr = vault.pull(number)
    assert pr.merged and pr.merged_by == "alice"  # an admin, says Forgejo
    vault.tick(at=timedelta(minutes=10))
    assert record(vault, "vault/rejected", "release-1")["reason"] == "merge-not-vouched"
    assert executed(vault) == []


def test_an_admin_who_approved_and_merged_a_high_change_fires_it(
    vault: Harness,
) -> None:
    number = vault.propose("release-1", GIT_MAKE.format(n=1))
    vault.tick()
    vault.merge_as("alice", number)
    report = tick(vault.app(), vault.at(timedelta(minutes=10)))
    assert report.ok, report.errors
    assert executed(vault) == ["release-1"]


def test_tier_labels_and_the_hold_label_never_clear_each_other(
    vault: Harness,
) -> None:
    """Forgejo drops same-scope siblings when an exclusive label is added."""
    from opsvault.dispatcher.hold import HOLD_LABEL
    from opsvault.dispatcher.publish import LABELS

    for name in (*LABELS, HOLD_LABEL):  # an operator made them all exclusive
        vault.forge.add_label(REPO, name, exclusive=True)
    number = vault.propose("deploy-1", HOOK.format(n=1))
    vault.client("alice").add_labels(number, [HOLD_LABEL])
    vault.tick()
    labels = set(vault.pull(number).labels)
    assert HOLD_LABEL in labels and "vault/tier/medium" in labels
    vault.client("alice").add_labels(number, [HOLD_LABEL])  # and the other way round
    assert "vault/tier/medium" in vault.pull(number).labels


def test_the_documented_protection_takes_dispatcher_records_and_refuses_the_rest(
    vault: Harness, tmp_path: Path
) -> None:
    """docs/forgejo.md's rule, as Forgejo's pre-receive applies it (the fake's git hook)."""
    import subprocess

    from testing.fake_forgejo.protection import PUSHER_ENV

    work = tmp_path / "work"
    origin = str(vault.forge.repo(REPO).git.path)
    subprocess.run(["git", "clone", "-q", origin, str(work)], check=True)

    def push(pusher: str, path: str) -> subprocess.CompletedProcess[str]:
        subprocess.run(["git", "-C", str(work), "reset", "-q", "--hard", "origin/main"])
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_text("x\n")
        subprocess.run(["git", "-C", str(work), "add", "-A"], check=True)
        subprocess.run(
            [
                "git",
                "-C",
                str(work),
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@e.invalid",
                "commit",
                "-qm",
                path,
            ],
            check=True,
        )
        return subprocess.run(
            ["git", "-C", str(work), "push", "-q", "origin", "HEAD:main"],
            capture_output=True,
            text=True,
            env={**os.environ, PUSHER_ENV: pusher},
            check=False,
        )

    assert push("vault-bot", "vault/running/x.toml").returncode == 0
    subprocess.run(["git", "-C", str(work), "fetch", "-q"], check=True)
    assert push("vault-bot", "vault/fired/2026/11/x.result.json").returncode == 0
    subprocess.run(["git", "-C", str(work), "fetch", "-q"], check=True)
    policy = push("vault-bot", "vault/policy.toml")
    assert policy.returncode != 0 and "protected from changing file" in policy.stderr
    for path in ("vault/actions/sneaky.toml", "vault/fired/2026/11/fake.result.json"):
        refused = push("alice", path)  # an admin, not on the push whitelist
        assert refused.returncode != 0 and "Not allowed to push" in refused.stderr


def test_an_approval_dismissed_at_the_same_head_is_renewed(vault: Harness) -> None:
    """The cache remembers approving this head; Forgejo says the approval is gone."""
    from dataclasses import replace

    rule = vault.forge.repo(REPO).protections[0]
    vault.forge.protect_branch(REPO, replace(rule, required_approvals=1))
    vault.forge.checking_seconds = 45
    number = vault.propose("noop-1", NOOP.format(msg="a"))
    app = vault.app()
    vault.tick(app, at=timedelta(seconds=5))  # approves; the merge is still checking
    pull = vault.forge.repo(REPO).issues[number].pull
    assert pull is not None and [r.state for r in pull.reviews] == ["APPROVED"]
    # An admin dismissed it.
    pull.reviews = [replace(r, dismissed=True) for r in pull.reviews]
    report = vault.tick(app, at=timedelta(minutes=2))
    assert report.ok, report.errors
    assert vault.pull(number).merged
    assert executed(vault) == ["noop-1"]
