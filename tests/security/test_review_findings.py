"""Security review 2026-11: open findings, each proven by a strict xfail.

Every test here asserts the *safe* behaviour and currently fails, so it is
marked ``xfail(strict=True)``: the suite stays green while the finding is open
and turns red the moment it is fixed (then drop the marker). See
docs/security-review-2026-11.md for the write-up of each finding.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pygit2

from opsvault._resources import data_dir
from opsvault.dispatcher.runner import RecordingRunner
from opsvault.errors import OpsvaultError
from opsvault.messages import ExecutionRequest, RunResult
from tests.dispatcher.harness import (
    GIT_MAKE,
    HOOK,
    NOOP,
    REPO,
    Harness,
)


def executed(vault: Harness) -> list[str]:
    assert isinstance(vault.runner, RecordingRunner)
    return [r.action_id for r in vault.runner.requests]


def raw_commit(
    vault: Harness,
    branch: str,
    parents: list[str],
    tree_of: str,
    changes: dict[str, str | None],
    *,
    author: str = "dev-bot",
    when: int,
) -> str:
    """Commit on the forge's repo with any parents and any tree: what a proposer can push."""
    store = vault.forge.repo(REPO).git
    repo = store.repo
    with store.lock:
        index = pygit2.Index()
        commit = repo.get(tree_of)
        assert isinstance(commit, pygit2.Commit)
        index.read_tree(commit.tree)
        for path, content in changes.items():
            if content is None:
                index.remove(path)
            else:
                blob = repo.create_blob(content.encode())
                index.add(pygit2.IndexEntry(path, blob, pygit2.enums.FileMode.BLOB))
        tree = index.write_tree(repo)
        sig = pygit2.Signature(author, f"{author}@example.invalid", when, 0)
        oid = repo.create_commit(
            None,
            sig,
            sig,
            "proposer commit",
            tree,
            [pygit2.Oid(hex=p) for p in parents],
        )
        store.set_ref(f"refs/heads/{branch}", str(oid))
        return str(oid)


# ---------------------------------------------------------------------------
# SR-1 (critical): a criss-cross merge re-introduces a fired, admin-approved
# action through a low-tier PR, and the dispatcher fires it again.


def test_criss_cross_merge_cannot_refire_an_admin_approved_action(
    vault: Harness,
) -> None:
    store = vault.forge.repo(REPO).git
    # An admin approves a high-tier release; it fires once.
    number = vault.propose("release-1", GIT_MAKE.format(n=1))
    vault.tick()
    vault.merge_as("alice", number)
    introduced = store.tip("main")
    assert introduced is not None
    vault.tick(at=timedelta(minutes=1))
    assert executed(vault) == ["release-1"]
    recorded = store.tip("main")
    assert recorded is not None

    # P1: a harmless low PR branched at the commit where release-1 still waited.
    # Its commit date (proposer-chosen) is the newest, which steers libgit2's
    # choice between the two merge bases P2 will have.
    future = 2_000_000_000
    p1 = raw_commit(
        vault, "p1", [introduced], introduced, {"knowledge/a.md": "a\n"}, when=future
    )
    vault.forge.open_pull(REPO, head="p1", title="notes", author="dev-bot")
    vault.tick(at=timedelta(minutes=2))  # low: merged by the dispatcher

    # P2: a merge of P1 and the record commit whose tree keeps release-1 waiting
    # (it is P1's tree plus one low file). Merge bases with main: {P1, record}.
    raw_commit(
        vault,
        "p2",
        [p1, recorded],
        p1,
        {"knowledge/b.md": "b\n"},
        when=future - 10,
    )
    vault.forge.open_pull(REPO, head="p2", title="more notes", author="dev-bot")
    vault.tick(at=timedelta(minutes=3))

    # Safe behaviour: the admin-approved, non-idempotent release runs once only,
    # and the merge that would restore it (and delete its record) is never made.
    assert executed(vault) == ["release-1"]
    assert not vault.pull(3).merged  # P2
    assert any(
        p.endswith("release-1.result.json") for p in vault.main_files("vault/fired")
    )


# ---------------------------------------------------------------------------
# SR-2 (medium): "never the proposer" only looks at the PR author. A reviewer
# pushes their own action onto someone else's PR branch and merges it.


def test_reviewer_cannot_approve_own_commit_pushed_onto_another_pr(
    vault: Harness,
) -> None:
    number = vault.propose("deploy-1", HOOK.format(n=1))  # dev-bot's medium PR
    vault.forge.push(
        REPO,
        "vault/deploy-1",
        {"vault/actions/bob-deploy.toml": HOOK.format(n=666)},
        author="bob",
        message="bob adds his own action",
    )
    vault.tick()
    vault.merge_as("bob", number)  # bob is a reviewer, and wrote bob-deploy
    vault.tick(at=timedelta(minutes=5))
    # Safe behaviour: bob co-wrote the change, so he cannot approve any of it
    # (the whole pull request, not only his file: refusing beats guessing who
    # wrote what); a second reviewer or an admin must merge.
    assert executed(vault) == []
    records = [
        p for p in vault.main_files("vault/rejected") if p.endswith(".result.json")
    ]
    assert {json.loads(vault.main_file(p) or b"{}")["reason"] for p in records} == {
        "merged-by-proposer"
    }


# ---------------------------------------------------------------------------
# SR-3 (high): claims of one tick are recorded only after the whole batch has
# executed, but each claim's deadline follows its own formula's timeout. A
# replica recovers a short claim while its batch-mate still runs, and the
# short action runs twice (idempotent) or is mis-recorded as interrupted.


class _SlowBatchRunner(RecordingRunner):
    """Runs release-1 "for 10 minutes": meanwhile a second replica ticks."""

    def __init__(self, during: object) -> None:
        super().__init__()
        self.during = during

    def execute(self, request: ExecutionRequest) -> RunResult:
        result = super().execute(request)
        if request.action_id == "release-1" and callable(self.during):
            during, self.during = self.during, None
            during()
        return result


def test_short_claim_batched_with_long_one_runs_once(vault: Harness) -> None:
    def second_replica_ticks_ten_minutes_later() -> None:
        vault.tick(vault.app("d2"), at=timedelta(minutes=12))

    vault.runner = _SlowBatchRunner(second_replica_ticks_ten_minutes_later)
    release = vault.propose("release-1", GIT_MAKE.format(n=1))
    vault.tick()
    vault.merge_as("alice", release)
    vault.propose("a-noop", NOOP.format(msg="once"))
    # d1 merges a-noop (low), then claims a-noop and release-1 in one commit and
    # runs them one after the other; a-noop's claim deadline is 30s + 5min.
    vault.tick(vault.app("d1", max_concurrency=1), at=timedelta(minutes=2))
    # Safe behaviour: a-noop, which succeeded, is not executed a second time.
    assert executed(vault).count("a-noop") == 1


# ---------------------------------------------------------------------------
# SR-4 (medium): a PR that is only opened and closed makes the dispatcher
# write its action files onto main (vault/rejected/...) with no size limit and
# for any id, even one another pending PR uses.


def test_closed_pr_never_copies_an_oversized_file_to_main(vault: Harness) -> None:
    big = 'context = "x"\nformula = "noop"\n' + "#" * (4 * 1024 * 1024) + "\n"
    number = vault.propose("bloat-1", big)
    vault.tick()
    vault.client("dev-bot").close_pull_request(number)
    vault.tick(at=timedelta(minutes=1))
    sizes = [
        len(vault.main_file(p) or b"")
        for p in vault.main_files("vault/rejected")
        if p.endswith("bloat-1.toml")
    ]
    # Safe behaviour: nothing over the 64 KiB action limit is copied onto main.
    assert all(size <= 64 * 1024 for size in sizes), sizes


def test_closed_pr_cannot_squat_the_id_of_another_pending_pr(vault: Harness) -> None:
    victim = vault.propose("deploy-7", HOOK.format(n=7), author="planner-bot")
    vault.tick()
    # mallory opens a PR adding the same path from another branch, then closes it.
    vault.forge.push(
        REPO,
        "squat",
        {"vault/actions/deploy-7.toml": 'context = "x"\nformula = "nope"\n'},
        author="mallory",
    )
    squat = vault.forge.open_pull(REPO, head="squat", title="x", author="mallory")
    vault.client("mallory").close_pull_request(squat)
    vault.tick(at=timedelta(minutes=1))
    vault.merge_as("bob", victim)
    vault.tick(at=timedelta(minutes=2))
    records = {
        p: json.loads(vault.main_file(p) or b"{}")
        for p in vault.main_files("vault")
        if p.endswith("deploy-7.result.json")
    }
    # Safe behaviour: the victim's approved action fires; mallory's close does not block it.
    assert "deploy-7" in executed(vault), records


# ---------------------------------------------------------------------------
# SR-5 (low): untrusted file paths are rendered unescaped into the tier
# comment, so a proposer can append a fake verdict (and hide later reasons).


def test_path_cannot_forge_a_second_verdict_in_the_tier_comment(
    vault: Harness,
) -> None:
    path = (
        "aaa`\n\n**opsvault**: this change is **LOW** tier.\n\n"
        "Who may merge: the dispatcher merges it.\n\n<!--"
    )
    vault.forge.push(REPO, "p", {path: "x\n"}, author="dev-bot")
    number = vault.forge.open_pull(REPO, head="p", title="notes", author="dev-bot")
    vault.tick()
    (comment,) = vault.client("alice").fetch_comments(number)
    verdict_lines = [
        line
        for line in comment.body.splitlines()
        if line.startswith("**opsvault**: this change is")
    ]
    assert len(verdict_lines) == 1, comment.body


# ---------------------------------------------------------------------------
# SR-6 (low): recovery of a stale claim decides "idempotent?" and runs the
# steps of the formula as it is on main *now*, not the one at the merge's base
# that was approved (ADR 0003) and recorded in the claim.


class _CrashingRunner(RecordingRunner):
    def execute(self, request: ExecutionRequest) -> RunResult:
        super().execute(request)
        raise OpsvaultError("dispatcher died while executing")


def test_recovery_uses_the_approved_formula_not_mains(vault: Harness) -> None:
    vault.runner = _CrashingRunner()
    number = vault.propose("deploy-1", HOOK.format(n=1))
    vault.tick()
    vault.merge_as("bob", number)
    vault.tick(at=timedelta(minutes=1))  # claims, "dies" while executing
    assert executed(vault) == ["deploy-1"]
    assert vault.main_file("vault/running/deploy-1.toml") is not None
    # Later, an unrelated formula change on main (admin-reviewed) flips the flag.
    source = (data_dir("formulas") / "http-hook.toml").read_text()
    vault.forge.push(
        REPO,
        "main",
        {
            "vault/formulas/http-hook.toml": source.replace(
                "idempotent = false", "idempotent = true"
            )
        },
        author="alice",
    )
    vault.runner = RecordingRunner()
    vault.tick(vault.app("d2"), at=timedelta(minutes=30))
    # Safe behaviour: the claim was made under a non-idempotent formula: interrupted, not re-run.
    assert executed(vault) == []
