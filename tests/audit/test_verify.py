"""`vault audit verify` against histories real ticks wrote, then tampered with (ADR 0021).

Each history is written by the real dispatcher (ticks on LocalForge and on the
fake Forgejo), then rewritten with real git objects the way someone with the
repo's git could: a record deleted, edited or reordered, an action pushed
straight to main, a policy edit rebased under old records. Each is reported.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pygit2
import pytest

from opsvault.audit.breaks import AuditReport, BreakKind
from opsvault.audit.verify import verify
from opsvault.dispatcher.chain import GENESIS, parse_chain_trailer, record_hash
from opsvault.git.pygit2_repo import Pygit2OpsRepo
from tests.audit.tamper import blob, find, first_parents, open_raw, push_direct, rebuild
from tests.dispatcher.harness import NOOP, REPO
from tests.dispatcher.harness import Harness as ForgejoHarness
from tests.dispatcher.local_harness import LocalHarness, both_forges

Harness = ForgejoHarness | LocalHarness
pytestmark = both_forges


def repo_path(vault: Harness) -> Path:
    if isinstance(vault, LocalHarness):
        return vault.repo.path
    return Path(vault.forge.repo(REPO).git.path)


def audit(vault: Harness, *, forge: bool = True) -> AuditReport:
    repo = Pygit2OpsRepo.open(repo_path(vault))
    return verify(
        repo,
        "main",
        forge=vault.client("alice") if forge else None,
        identity=vault.identity,
    )


def kinds(report: AuditReport) -> set[BreakKind]:
    return {b.kind for b in report.breaks}


@pytest.fixture
def fired(vault: Harness) -> Iterator[Harness]:
    """Three low actions, each merged, claimed, executed and recorded by its own tick."""
    for n in (1, 2, 3):
        vault.propose(f"noop-audit-{n}", NOOP.format(msg=f"hi {n}"))
        report = vault.tick()
        assert report.ok, report.errors
    yield vault


def records_commits(raw: pygit2.Repository) -> list[int]:
    history = first_parents(raw)
    return find(history, lambda c: parse_chain_trailer(c.message) is not None)


def test_a_history_the_dispatcher_wrote_verifies(fired: Harness) -> None:
    report = audit(fired)
    assert report.ok, [b.render() for b in report.breaks]
    assert report.records == 6 and report.chained == 6 and report.pre_chain == 0
    assert report.replayed == 6
    assert report.anchors == 3 and not report.warnings
    raw = open_raw(repo_path(fired))
    first = first_parents(raw)[records_commits(raw)[0]]
    assert report.chain_start == str(first.id)


def test_each_record_links_to_the_one_before_and_its_pr_comment_anchors_it(
    fired: Harness,
) -> None:
    raw = open_raw(repo_path(fired))
    history = first_parents(raw)
    prev = GENESIS
    last_result = None
    for i in records_commits(raw):
        commit = history[i]
        paths = sorted(
            d.new_file.path
            for d in commit.parents[0].tree.diff_to_tree(commit.tree).deltas
            if d.new_file.path.endswith((".claim.json", ".result.json"))
            and d.status != pygit2.GIT_DELTA_DELETED
        )
        for path in paths:
            content = blob(raw, commit, path)
            data = json.loads(content)
            assert data["chain_prev"] == prev
            assert data["chain_base"] == str(commit.parents[0].id)
            prev = record_hash(content)
            if path.endswith(".result.json"):
                last_result = (data, prev)
        assert parse_chain_trailer(commit.message) == prev
    assert last_result is not None
    data, digest = last_result
    bodies = [c.body for c in fired.client("alice").fetch_comments(data["pr"])]
    assert any(digest in body for body in bodies)


def test_records_carry_what_replays_their_decision(fired: Harness) -> None:
    """The claim and result of a fired action: blob hash, commits, formula hash, approver and rule."""
    raw = open_raw(repo_path(fired))
    history = first_parents(raw)
    claim_commit, result_commit = (history[i] for i in records_commits(raw)[:2])
    [claim_path] = [p for p in _added(raw, claim_commit) if p.endswith(".claim.json")]
    [result_path] = [
        p for p in _added(raw, result_commit) if p.endswith(".result.json")
    ]
    claim = json.loads(blob(raw, claim_commit, claim_path))
    result = json.loads(blob(raw, result_commit, result_path))
    pr = fired.pull(claim["pr"])
    for record in (claim, result):
        assert record["merge_commit"] == pr.merge_commit_sha
        assert record["head_commit"] == pr.head_sha
        merge = raw[record["merge_commit"]].peel(pygit2.Commit)
        assert record["policy_commit"] == str(merge.parents[0].id)
        assert (record["approver"], record["approver_rule"]) == (
            "vault-bot",
            "dispatcher: merge = auto",
        )
        assert record["tier"] == "low" and record["reasons"]
        assert record["formula"] == "noop" and len(record["formula_sha256"]) == 64
        action = blob(raw, merge, f"vault/actions/{record['id']}.toml")
        assert record["action_sha256"] == hashlib.sha256(action).hexdigest()


def test_a_record_deleted_by_a_later_commit_is_reported(fired: Harness) -> None:
    raw = open_raw(repo_path(fired))
    tip = raw.revparse_single("refs/heads/main").peel(pygit2.Commit)
    [result] = [p for p in _files(tip.tree) if p.endswith("noop-audit-2.result.json")]
    push_direct(raw, {result: None}, "tidy up")
    report = audit(fired)
    assert BreakKind.DELETED in kinds(report)


def test_a_record_removed_by_a_force_push_breaks_the_chain(fired: Harness) -> None:
    raw = open_raw(repo_path(fired))
    history = first_parents(raw)
    second_result = history[records_commits(raw)[3]]  # claim1 result1 claim2 result2
    [path] = [p for p in _added(raw, second_result) if p.endswith(".result.json")]
    at = history.index(second_result)
    rebuild(
        raw,
        at,
        history[at:],
        edits={str(c.id): {path: None} for c in history[at:]},
    )
    report = audit(fired, forge=False)
    found = kinds(report)
    assert BreakKind.CHAIN in found  # the next record names the one removed
    assert BreakKind.NO_OUTCOME in found  # its claim ended without a result
    chain = [b for b in report.breaks if b.kind is BreakKind.CHAIN]
    assert chain[0].path is not None and "noop-audit-3.claim.json" in chain[0].path


def test_a_record_edited_in_place_by_a_force_push_breaks_the_chain(
    fired: Harness,
) -> None:
    raw = open_raw(repo_path(fired))
    history = first_parents(raw)
    first_result = history[records_commits(raw)[1]]
    [path] = [p for p in _added(raw, first_result) if p.endswith(".result.json")]
    data = json.loads(blob(raw, first_result, path))
    data["outcome"], data["output_tail"] = "failed", "it never ran"
    edited = (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()
    at = history.index(first_result)
    rebuild(raw, at, history[at:], edits={str(first_result.id): {path: edited}})
    report = audit(fired, forge=False)
    assert {BreakKind.CHAIN, BreakKind.TRAILER} <= kinds(report)


def test_records_reordered_by_a_force_push_break_the_chain(fired: Harness) -> None:
    raw = open_raw(repo_path(fired))
    history = first_parents(raw)
    claim1, result1, claim2 = (history[i] for i in records_commits(raw)[:3])
    at = history.index(result1)
    # result 1 now lands after claim 2: same files, another order
    order = [c for c in history[at:] if c.id != result1.id]
    order.insert(order.index(claim2) + 1, result1)
    rebuild(raw, at, order)
    report = audit(fired, forge=False)
    assert {BreakKind.CHAIN, BreakKind.CHAIN_BASE} <= kinds(report)
    assert claim1.id  # the first claim is untouched


def test_the_last_record_rewritten_consistently_is_caught_by_its_anchor(
    fired: Harness,
) -> None:
    """Edit the newest result and fix its commit's trailer: git alone cannot tell; the PR comment can."""
    raw = open_raw(repo_path(fired))
    history = first_parents(raw)
    last = history[records_commits(raw)[-1]]
    [path] = [p for p in _added(raw, last) if p.endswith(".result.json")]
    data = json.loads(blob(raw, last, path))
    data["output_tail"] = "nothing to see"
    edited = (
        json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    ).encode()
    message = last.message.replace(
        parse_chain_trailer(last.message) or "", record_hash(edited)
    )
    at = history.index(last)
    rebuild(
        raw,
        at,
        history[at:],
        edits={str(last.id): {path: edited}},
        messages={str(last.id): message},
    )
    # Consistent: the repo alone proves nothing here.
    assert audit(fired, forge=False).ok
    report = audit(fired)
    assert kinds(report) == {BreakKind.ANCHOR}
    assert report.breaks[0].path == path


def test_an_action_added_by_a_direct_push_is_reported(fired: Harness) -> None:
    raw = open_raw(repo_path(fired))
    push_direct(
        raw,
        {"vault/actions/noop-sneaky-1.toml": NOOP.format(msg="sneaky").encode()},
        "add an action",
    )
    fired.tick()  # the dispatcher refuses it (no merge); the audit still reports the push
    report = audit(fired)
    [push] = [b for b in report.breaks if b.kind is BreakKind.DIRECT_PUSH]
    assert push.path == "vault/actions/noop-sneaky-1.toml"


def test_a_policy_edit_rebased_under_old_records_is_reported(fired: Harness) -> None:
    """Insert a policy commit right after the first one and replay everything after it on top."""
    raw = open_raw(repo_path(fired))
    history = first_parents(raw)
    policy = blob(raw, history[0], "vault/policy.toml")
    raw.references["refs/heads/main"].set_target(history[0].id)
    push_direct(
        raw,
        {"vault/policy.toml": policy.replace(b'noop = "low"', b'noop = "high"')},
        "policy: noop is high",
    )
    rebuild(raw, 2, history[1:])
    report = audit(fired, forge=False)
    # every record names commits the rewritten history no longer has
    assert {BreakKind.HISTORY, BreakKind.CHAIN_BASE} <= kinds(report)
    assert report.replayed == 6


def test_a_policy_edit_rebased_under_records_rewritten_to_match_is_reported(
    fired: Harness,
) -> None:
    """The same, and every record rewritten to name the new commits and chained again.

    The chain is consistent again; replayed at the commits the records now
    name, the actions are high tier, not the low they were fired as, and the
    PR comments still anchor the hashes of the records that were replaced.
    """
    raw = open_raw(repo_path(fired))
    history = first_parents(raw)
    policy = blob(raw, history[0], "vault/policy.toml")
    raw.references["refs/heads/main"].set_target(history[0].id)
    push_direct(
        raw,
        {"vault/policy.toml": policy.replace(b'noop = "low"', b'noop = "high"')},
        "policy: noop is high",
    )
    rebuild(raw, 2, history[1:], reseal=True)
    offline = audit(fired, forge=False)
    found = kinds(offline)
    assert BreakKind.CHAIN not in found and BreakKind.HISTORY not in found, [
        b.render() for b in offline.breaks
    ]
    assert BreakKind.TIER in found
    tiers = [b for b in offline.breaks if b.kind is BreakKind.TIER]
    assert len(tiers) == 6 and "is high" in tiers[0].detail
    assert BreakKind.ANCHOR in kinds(audit(fired))


def test_a_forged_claim_for_an_action_never_merged_is_reported(fired: Harness) -> None:
    """Someone writes a well-linked claim by hand: the chain holds, the replay does not."""
    raw = open_raw(repo_path(fired))
    tip = raw.revparse_single("refs/heads/main").peel(pygit2.Commit)
    head = parse_chain_trailer(
        next(
            c for c in reversed(first_parents(raw)) if parse_chain_trailer(c.message)
        ).message
    )
    claim = {
        "id": "noop-forged-1",
        "pr": 1,
        "merge_commit": str(first_parents(raw)[1].id),
        "policy_commit": str(first_parents(raw)[0].id),
        "head_commit": "0" * 40,
        "tier": "low",
        "approver": "vault-bot",
        "chain_prev": head,
        "chain_base": str(tip.id),
    }
    content = (json.dumps(claim, indent=2, sort_keys=True) + "\n").encode()
    push_direct(
        raw,
        {
            "vault/running/noop-forged-1.claim.json": content,
            "vault/running/noop-forged-1.toml": NOOP.format(msg="x").encode(),
        },
        f"vault: 1 claimed\n\nVault-Chain: {record_hash(content)}",
    )
    report = audit(fired, forge=False)
    assert BreakKind.CHAIN not in kinds(report)
    assert BreakKind.HISTORY in kinds(report)


def _files(tree: pygit2.Tree, prefix: str = "") -> list[str]:
    out = []
    for entry in tree:
        path = f"{prefix}{entry.name}"
        if entry.type_str == "tree":
            out.extend(_files(entry, f"{path}/"))  # type: ignore[arg-type]
        else:
            out.append(path)
    return out


def _added(raw: pygit2.Repository, commit: pygit2.Commit) -> list[str]:
    return [
        d.new_file.path
        for d in commit.parents[0].tree.diff_to_tree(commit.tree).deltas
        if d.status != pygit2.GIT_DELTA_DELETED
    ]
