"""The claim record: one render and one parse, and claims already on main read back unchanged."""

from __future__ import annotations

import json

from opsvault.dispatcher.records import ClaimRecord, parse_claim, render_claim

# A claim as the dispatcher wrote it before ClaimRecord existed (a dict dumped with sorted keys).
ON_MAIN = {
    "id": "restart-web-1",
    "action_sha256": "ab" * 32,
    "dispatcher": "opsvault-bot",
    "tier": "low",
    "reasons": ["rule 'restarts' matches"],
    "policy_commit": "c" * 40,
    "pr": 12,
    "proposer": "dev-bot",
    "approver": "opsvault-bot",
    "head_commit": "d" * 40,
    "merge_commit": "e" * 40,
    "formula": "restart-service",
    "formula_sha256": None,
    "claimed_by": "opsvault-bot/1234/abcd",
    "claimed_at": "2026-11-21T12:00:00Z",
    "deadline": "2026-11-21T12:15:00Z",
    "attempt": 2,
    "locks": ["service:web"],
    "idempotent": True,
}


def test_a_claim_on_main_reads_back_and_renders_byte_for_byte() -> None:
    raw = (json.dumps(ON_MAIN, indent=2, sort_keys=True) + "\n").encode()
    claim = parse_claim(raw)
    assert claim.pr == 12 and claim.locks == ("service:web",) and claim.idempotent
    assert render_claim(claim) == raw


def test_render_and_parse_are_inverse() -> None:
    claim = ClaimRecord(id="a-1", claimed_by="x", locks=("a", "b"), reasons=("r",))
    assert parse_claim(render_claim(claim)) == claim
