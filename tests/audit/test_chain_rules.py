"""The chain's and the records' own rules, where they live: dispatcher/chain.py, records.py, state.py."""

from __future__ import annotations

import json

import pytest

from opsvault.dispatcher.chain import (
    GENESIS,
    Link,
    anchor_of,
    parse_chain_trailer,
    record_hash,
    relink_record,
    seal,
    with_anchor,
)
from opsvault.dispatcher.reasons import ReasonCode
from opsvault.dispatcher.records import (
    ClaimRecord,
    Outcome,
    ResultRecord,
    parse_claim,
    parse_record,
    render_claim,
    render_record,
)
from opsvault.dispatcher.state import MergeFacts, Role, approval_rule
from opsvault.policy.parse import parse_policy
from opsvault.vault.tier import Tier
from tests.dispatcher.harness import template_files

CLAIM = "vault/running/a-1.claim.json"
RESULT = "vault/fired/2026/11/a-1.result.json"
BASE = "b" * 40


def _result(action_id: str = "a-1") -> bytes:
    return render_record(ResultRecord(action_id, Outcome.SUCCEEDED, ReasonCode.OK))


def test_seal_links_records_in_path_order_and_leaves_other_files() -> None:
    changes: dict[str, bytes | None] = {
        RESULT: _result(),
        CLAIM: render_claim(ClaimRecord(id="a-1")),
        "vault/fired/2026/11/a-1.toml": b"x",
        "vault/running/a-1.toml": None,
    }
    sealed = seal(changes, None, BASE, relink_record)
    first = parse_record(sealed.changes[RESULT] or b"")  # fired/ sorts before running/
    second = parse_claim(sealed.changes[CLAIM] or b"")
    assert (first.chain_prev, first.chain_base) == (GENESIS, BASE)
    assert second.chain_prev == record_hash(sealed.changes[RESULT] or b"")
    assert sealed.head == record_hash(sealed.changes[CLAIM] or b"")
    assert sealed.hashes == {
        RESULT: second.chain_prev,
        CLAIM: sealed.head,
    }
    assert sealed.changes["vault/fired/2026/11/a-1.toml"] == b"x"
    assert parse_chain_trailer(sealed.message("vault: 1 claimed")) == sealed.head


def test_seal_continues_from_the_head_and_writes_no_trailer_without_records() -> None:
    head = record_hash(b"earlier")
    sealed = seal({RESULT: _result()}, head, BASE, relink_record)
    assert parse_record(sealed.changes[RESULT] or b"").chain_prev == head
    nothing = seal({"vault/HALT": b"stop"}, head, BASE, relink_record)
    assert nothing.head is None and nothing.message("vault: halt") == "vault: halt"


def test_a_trailer_counts_only_on_the_last_line() -> None:
    head = record_hash(b"x")
    assert parse_chain_trailer(f"vault: x\n\nVault-Chain: {head}\n") == head
    assert parse_chain_trailer(f"Vault-Chain: {head}\nmore text") is None
    assert parse_chain_trailer("Vault-Chain: sha256:short") is None


def test_anchor_of_finds_the_result_of_an_id_never_a_prs_record() -> None:
    hashes = {
        "vault/fired/2026/11/a-1.2.result.json": "sha256:" + "1" * 64,
        "vault/rejected/2026/11/pr-3/a-1.result.json": "sha256:" + "2" * 64,
        "vault/running/a-1.claim.json": "sha256:" + "3" * 64,
    }
    assert anchor_of(hashes, "a-1") == "sha256:" + "1" * 64
    assert anchor_of(hashes, "a") is None
    assert with_anchor("done.", None) == "done."
    assert with_anchor("done.", "sha256:ab") == "done. (record `sha256:ab`)"


def test_records_written_before_the_chain_render_byte_for_byte() -> None:
    old = ResultRecord("a-1", Outcome.SUCCEEDED, ReasonCode.OK)
    data = json.loads(render_record(old))
    assert not {"chain_prev", "chain_base", "approver_rule"} & set(data)
    linked = parse_record(
        relink_record(RESULT, render_record(old), Link(GENESIS, BASE))
    )
    assert (linked.chain_prev, linked.chain_base) == (GENESIS, BASE)
    assert parse_record(render_record(linked)) == linked


POLICY = parse_policy(
    str(template_files()["vault/policy.toml"]).encode(), "policy.toml"
)


def _facts(tier: Tier, roles: set[Role], protected: bool = False) -> MergeFacts:
    return MergeFacts(
        tier=tier,
        protected=protected,
        refused=False,
        merger="someone",
        merger_roles=frozenset(roles),
        proposer="dev-bot",
        pr_created_at=None,
        merged_at=None,
        head_matches=True,
        blob_matches=True,
    )


@pytest.mark.parametrize(
    ("tier", "roles", "protected", "rule"),
    [
        (Tier.LOW, {Role.DISPATCHER}, False, "dispatcher: merge = auto"),
        (Tier.LOW, {Role.DISPATCHER}, True, None),
        (Tier.HIGH, {Role.DISPATCHER, Role.ADMIN}, False, None),
        (Tier.MEDIUM, {Role.REVIEWER}, False, "reviewer"),
        (Tier.MEDIUM, {Role.ADMIN, Role.REVIEWER}, False, "reviewer"),
        (Tier.HIGH, {Role.ADMIN}, False, "admin"),
        (Tier.MEDIUM, {Role.REVIEWER}, True, None),
        (Tier.HIGH, {Role.ADMIN, Role.PROPOSER}, False, None),
        (Tier.LOW, {Role.BOT, Role.REVIEWER}, False, None),
    ],
)
def test_the_approval_rule_names_what_made_the_merger_eligible(
    tier: Tier, roles: set[Role], protected: bool, rule: str | None
) -> None:
    assert approval_rule(_facts(tier, roles, protected), POLICY) == rule
