"""Who may fire what: ``verify_merge`` (dispatcher/state.py), one row per reason it gives.

tests/dispatcher/test_state_rules.py holds the properties; this table names
the exact ReasonCode of each way a merge fails to approve a change, so the
forge-driven flow tests (tests/dispatcher/test_refusals.py,
tests/dispatcher/test_forgejo_merges.py, tests/security/test_identity.py) only
need to show that the facts reach the rule (who merged, with which roles,
approving which head).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from opsvault._resources import data_dir
from opsvault.dispatcher.reasons import ReasonCode
from opsvault.dispatcher.state import MergeFacts, Role, verify_merge
from opsvault.policy.parse import parse_policy
from opsvault.vault.tier import Tier

TEMPLATE = (data_dir("ops-template") / "vault" / "policy.toml").read_text()
PLAIN = parse_policy(TEMPLATE)
VETO = parse_policy(TEMPLATE.replace('# veto_window = "2h"', 'veto_window = "2h"', 1))
T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ADMIN, REVIEWER = frozenset({Role.ADMIN}), frozenset({Role.REVIEWER})
BOT = frozenset({Role.DISPATCHER})


def merge(**change: Any) -> MergeFacts:
    """A reviewer's vouched merge of a medium change at the classified head and blob."""
    facts = MergeFacts(
        tier=Tier.MEDIUM,
        protected=False,
        refused=False,
        merger="bob",
        merger_roles=REVIEWER,
        proposer="dev-bot",
        pr_created_at=T0,
        merged_at=T0 + timedelta(minutes=5),
        head_matches=True,
        blob_matches=True,
        merger_approved_head=True,
    )
    return replace(facts, **change)


CASES: list[tuple[str, MergeFacts, Any, ReasonCode | None]] = [
    ("reviewer merges medium", merge(), PLAIN, None),
    ("reviewer merges low", merge(tier=Tier.LOW), PLAIN, None),
    ("admin merges high", merge(tier=Tier.HIGH, merger_roles=ADMIN), PLAIN, None),
    (
        "admin merges a protected change",
        merge(tier=Tier.HIGH, protected=True, merger_roles=ADMIN),
        PLAIN,
        None,
    ),
    # the facts of the merge itself, checked first
    ("head moved", merge(head_matches=False), PLAIN, ReasonCode.HEAD_MISMATCH),
    (
        "edited after the merge",
        merge(blob_matches=False, head_matches=True),
        PLAIN,
        ReasonCode.CHANGED_AFTER_MERGE,
    ),
    ("invalid at base", merge(refused=True), PLAIN, ReasonCode.INVALID),
    ("no merger", merge(merger=None), PLAIN, ReasonCode.NO_PULL_REQUEST),
    # who merged
    (
        "the proposer, even an admin",
        merge(merger_roles=frozenset({Role.ADMIN, Role.PROPOSER})),
        PLAIN,
        ReasonCode.MERGED_BY_PROPOSER,
    ),
    (
        "a bot, even an admin",
        merge(merger_roles=frozenset({Role.ADMIN, Role.BOT})),
        PLAIN,
        ReasonCode.MERGED_BY_BOT,
    ),
    (
        "a reviewer merges high",
        merge(tier=Tier.HIGH),
        PLAIN,
        ReasonCode.MERGER_NOT_ELIGIBLE,
    ),
    (
        "a reviewer merges a protected change",
        merge(protected=True),
        PLAIN,
        ReasonCode.PROTECTED_CHANGE,
    ),
    (
        "a stranger with write access",
        merge(merger_roles=frozenset()),
        PLAIN,
        ReasonCode.MERGER_NOT_ELIGIBLE,
    ),
    (
        "an eligible merger without an approval of the merged head (ADR 0008)",
        merge(merger_approved_head=False),
        PLAIN,
        ReasonCode.MERGE_NOT_VOUCHED,
    ),
    (
        "an admin's unvouched high merge",
        merge(tier=Tier.HIGH, merger_roles=ADMIN, merger_approved_head=False),
        PLAIN,
        ReasonCode.MERGE_NOT_VOUCHED,
    ),
    (
        "low needs no approval of its own",
        merge(tier=Tier.LOW, merger_approved_head=False),
        PLAIN,
        None,
    ),
    # the dispatcher's own merges count by policy, never by its roles
    ("dispatcher merges auto low", merge(tier=Tier.LOW, merger_roles=BOT), PLAIN, None),
    (
        "dispatcher merges medium without a veto window",
        merge(merger_roles=BOT | ADMIN),
        PLAIN,
        ReasonCode.MERGER_NOT_ELIGIBLE,
    ),
    (
        "dispatcher merges medium before the window",
        merge(merger_roles=BOT),
        VETO,
        ReasonCode.VETO_WINDOW_NOT_PASSED,
    ),
    (
        "dispatcher merges medium after the window",
        merge(merger_roles=BOT, merged_at=T0 + timedelta(hours=2)),
        VETO,
        None,
    ),
    (
        "dispatcher merges medium after the window, without times",
        merge(merger_roles=BOT, merged_at=None),
        VETO,
        ReasonCode.VETO_WINDOW_NOT_PASSED,
    ),
    (
        "dispatcher merges a vetoed medium",
        merge(merger_roles=BOT, merged_at=T0 + timedelta(hours=3), vetoed=True),
        VETO,
        ReasonCode.VETOED,
    ),
    (
        "dispatcher merges a medium held at the merge",
        merge(merger_roles=BOT, merged_at=T0 + timedelta(hours=3), held_at_merge=True),
        VETO,
        ReasonCode.HELD_AT_MERGE,
    ),
    (
        "dispatcher merges high, as an admin",
        merge(tier=Tier.HIGH, merger_roles=BOT | ADMIN, merger_approved_head=True),
        PLAIN,
        ReasonCode.MERGER_NOT_ELIGIBLE,
    ),
    (
        "dispatcher merges a protected low",
        merge(tier=Tier.LOW, protected=True, merger_roles=BOT | ADMIN),
        PLAIN,
        ReasonCode.PROTECTED_CHANGE,
    ),
    (
        "a reviewer's merge held at the merge still counts (the hold binds the dispatcher)",
        merge(held_at_merge=True),
        PLAIN,
        None,
    ),
]


@pytest.mark.parametrize(
    "facts, policy, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_verify_merge_table(
    facts: MergeFacts, policy: Any, expected: ReasonCode | None
) -> None:
    assert verify_merge(facts, policy) is expected
