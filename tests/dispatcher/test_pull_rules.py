"""What the dispatcher does with an open pull request: ``decide_pull``, row by row.

tests/dispatcher/test_state_rules.py draws facts at random; a veto (a hold, the
hold label, a request for changes) only matters for a medium change past its
veto window and before its deadline, which random facts rarely reach. Here
each veto, approval and floor is tried on exactly such a change, so the
forge-driven tests (tests/dispatcher/test_refusals.py, tests/security/test_hold.py)
only need to show that the label, the review or the timeline reach the facts.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opsvault._resources import data_dir
from opsvault.dispatcher.hold import HOLD_LABEL
from opsvault.dispatcher.state import Act, PullFacts, decide_pull
from opsvault.errors import Problem
from opsvault.policy.action import Classification
from opsvault.policy.change import ChangeKind
from opsvault.policy.classify import ChangeVerdict, FileVerdict
from opsvault.policy.parse import parse_policy
from opsvault.vault.tier import Tier

TEMPLATE = (data_dir("ops-template") / "vault" / "policy.toml").read_text()
PLAIN = parse_policy(TEMPLATE)
VETO = parse_policy(TEMPLATE.replace('# veto_window = "2h"', 'veto_window = "2h"', 1))
REVIEWED_LOW = parse_policy(
    TEMPLATE.replace('[tiers.low]\nmerge = "auto"', '[tiers.low]\nmerge = "reviewer"')
)
assert REVIEWED_LOW != PLAIN
T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
HEAD, OLD = "a" * 40, "b" * 40


def verdict(
    tier: Tier, *, protected: bool = False, refused: bool = False
) -> ChangeVerdict:
    file = FileVerdict(
        "vault/actions/a-1.toml",
        ChangeKind.ADDED,
        Classification(tier, ()),
        problems=(Problem("$", "bad"),) if refused else (),
        protected=protected,
    )
    return ChangeVerdict(tier, (file,))


def facts(**change: Any) -> PullFacts:
    """A medium PR whose head was first seen 3 h ago: past a 2 h window, before 72 h."""
    base = PullFacts(
        number=7,
        head_sha=HEAD,
        created_at=T0,
        head_seen_at=T0,
        labels=frozenset(),
        verdict=verdict(Tier.MEDIUM),
        request_changes=False,
        notified_head=None,
        approvals_needed=0,
        approved_head=None,
        now=T0 + timedelta(hours=3),
    )
    return replace(base, **change)


N, A, M, E = Act.NOTIFY, Act.APPROVE, Act.MERGE, Act.EXPIRE
CASES: list[tuple[str, PullFacts, Any, list[Act]]] = [
    ("medium, window passed, unvetoed", facts(), VETO, [N, M]),
    ("medium without a window", facts(), PLAIN, [N]),
    ("held per the timeline", facts(held=True), VETO, [N]),
    ("the hold label", facts(labels=frozenset({HOLD_LABEL})), VETO, [N]),
    ("a request for changes", facts(request_changes=True), VETO, [N]),
    ("a floor", facts(verdict=verdict(Tier.MEDIUM, protected=True)), VETO, [N]),
    ("refused", facts(verdict=verdict(Tier.MEDIUM, refused=True)), VETO, []),
    ("window not yet passed", facts(now=T0 + timedelta(hours=1)), VETO, [N]),
    (
        "a push restarted the window",
        facts(head_seen_at=T0 + timedelta(hours=2)),
        VETO,
        [N],
    ),
    ("deadline passed", facts(now=T0 + timedelta(hours=73)), VETO, [E]),
    ("approvers already told of this head", facts(notified_head=HEAD), VETO, [M]),
    ("told of an older head", facts(notified_head=OLD), VETO, [N, M]),
    ("protection wants an approval", facts(approvals_needed=1), VETO, [N, A, M]),
    (
        "this head already approved",
        facts(approvals_needed=1, approved_head=HEAD),
        VETO,
        [N, M],
    ),
    (
        "an older head approved",
        facts(approvals_needed=1, approved_head=OLD),
        VETO,
        [N, A, M],
    ),
    ("high never merges", facts(verdict=verdict(Tier.HIGH)), VETO, [N]),
    ("low merges at once", facts(verdict=verdict(Tier.LOW)), PLAIN, [M]),
    (
        "low, an approval first",
        facts(verdict=verdict(Tier.LOW), approvals_needed=2),
        PLAIN,
        [A, M],
    ),
    (
        "low behind a floor waits for a person",
        facts(verdict=verdict(Tier.LOW, protected=True)),
        PLAIN,
        [N],
    ),
    (
        "low without merge = auto waits for a person",
        facts(verdict=verdict(Tier.LOW)),
        REVIEWED_LOW,
        [N],
    ),
    (
        "a held low still merges (a hold is a veto of the window)",
        facts(verdict=verdict(Tier.LOW), held=True),
        PLAIN,
        [M],
    ),
]


@pytest.mark.parametrize(
    "pull, policy, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_decide_pull_table(pull: PullFacts, policy: Any, expected: list[Act]) -> None:
    effects = decide_pull(pull, policy)
    assert [e.act for e in effects] == [Act.PUBLISH, *expected]
    assert {e.head_sha for e in effects} == {HEAD}  # pinned to the classified head


vetoes = st.fixed_dictionaries(
    {
        "held": st.booleans(),
        "labels": st.frozensets(st.sampled_from([HOLD_LABEL, "other"])),
        "request_changes": st.booleans(),
    }
)


@given(
    veto=vetoes,
    past=st.integers(0, 69 * 3600).map(lambda s: timedelta(hours=2, seconds=s)),
    approvals=st.integers(0, 2),
)
def test_any_veto_keeps_a_medium_past_its_window_unmerged(
    veto: dict[str, Any], past: timedelta, approvals: int
) -> None:
    """Past the window and before the deadline, a medium merges iff nothing vetoes it."""
    pull = facts(now=T0 + past, approvals_needed=approvals, **veto)
    acts = [e.act for e in decide_pull(pull, VETO)]
    vetoed = veto["held"] or HOLD_LABEL in veto["labels"] or veto["request_changes"]
    assert (Act.MERGE in acts) is not vetoed
    assert (Act.APPROVE in acts) is (not vetoed and approvals > 0)
