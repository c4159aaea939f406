"""The dispatcher's rules, tested where they live (dispatcher/state.py): tables and properties.

No forge, no git: ``decide_pull``, ``next_timer``, ``may_merge``,
``verify_merge`` and ``decide_action`` are pure, so every combination of the
facts they read is cheap to try.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opsvault._resources import data_dir
from opsvault.dispatcher.reasons import ReasonCode
from opsvault.dispatcher.state import (
    Act,
    ActionFacts,
    Claim,
    Defer,
    Done,
    Expire,
    MergeFacts,
    PullFacts,
    Refuse,
    Role,
    decide_action,
    decide_pull,
    may_merge,
    next_timer,
    verify_merge,
)
from opsvault.errors import Problem
from opsvault.policy.action import Classification
from opsvault.policy.change import ChangeKind
from opsvault.policy.classify import ChangeVerdict, FileVerdict
from opsvault.policy.model import Policy
from opsvault.policy.parse import parse_policy
from opsvault.vault.tier import Tier

TEMPLATE = (data_dir("ops-template") / "vault" / "policy.toml").read_text()
assert '# veto_window = "2h"' in TEMPLATE
POLICIES = {
    "template": parse_policy(TEMPLATE),
    "veto window": parse_policy(
        TEMPLATE.replace('# veto_window = "2h"', 'veto_window = "2h"', 1)
    ),
}
T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)

tiers = st.sampled_from(list(Tier))
roles = st.one_of(
    st.sampled_from([frozenset({r}) for r in Role]),  # the common cases, often
    st.frozensets(st.sampled_from(list(Role))),
)
mostly = st.sampled_from([True, True, True, False])  # a fact that usually holds
policies = st.sampled_from(sorted(POLICIES)).map(POLICIES.__getitem__)
offsets = st.integers(min_value=0, max_value=10 * 24 * 3600).map(
    lambda s: timedelta(seconds=s)
)


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


@st.composite
def pull_facts(draw: st.DrawFn) -> PullFacts:
    created = T0
    seen = created + draw(offsets)
    head = draw(st.sampled_from(["a" * 40, "b" * 40]))
    return PullFacts(
        number=7,
        head_sha=head,
        created_at=created,
        head_seen_at=seen,
        labels=draw(st.frozensets(st.sampled_from(["vault/hold", "x"]))),
        verdict=verdict(
            draw(tiers), protected=draw(st.booleans()), refused=draw(st.booleans())
        ),
        request_changes=draw(st.booleans()),
        notified_head=draw(st.sampled_from([None, "a" * 40, "b" * 40])),
        approvals_needed=draw(st.integers(0, 2)),
        approved_head=draw(st.sampled_from([None, "a" * 40])),
        now=seen + draw(offsets),
        held=draw(st.booleans()),
    )


@st.composite
def merge_facts(draw: st.DrawFn) -> MergeFacts:
    created = T0
    return MergeFacts(
        tier=draw(tiers),
        protected=draw(st.booleans()),
        refused=not draw(mostly),
        merger=draw(st.sampled_from([None, "alice", "alice", "vault-bot"])),
        merger_roles=draw(roles),
        proposer="mallory",
        pr_created_at=draw(st.sampled_from([None, created])),
        merged_at=draw(st.sampled_from([None, created + draw(offsets)])),
        head_matches=draw(mostly),
        blob_matches=draw(mostly),
        vetoed=draw(st.booleans()),
        merger_approved_head=draw(st.booleans()),
        held_at_merge=draw(st.booleans()),
    )


# ---------------------------------------------------------------------------
# decide_pull and next_timer


@settings(max_examples=300, deadline=None)
@given(facts=pull_facts(), policy=policies)
def test_decide_pull_never_merges_high_refused_or_protected(
    facts: PullFacts, policy: Policy
) -> None:
    acts = [e.act for e in decide_pull(facts, policy)]
    assert acts[0] is Act.PUBLISH
    if facts.verdict.tier is Tier.HIGH or facts.verdict.refused:
        assert Act.MERGE not in acts and Act.APPROVE not in acts
    if facts.verdict.protected:
        assert Act.MERGE not in acts
    if Act.EXPIRE in acts:
        assert acts == [Act.PUBLISH, Act.EXPIRE]
    merges = [e for e in decide_pull(facts, policy) if e.act is Act.MERGE]
    assert all(e.head_sha == facts.head_sha for e in merges)  # pinned to the head


@settings(max_examples=300, deadline=None)
@given(facts=pull_facts(), policy=policies)
def test_a_held_or_vetoed_medium_is_never_merged(
    facts: PullFacts, policy: Policy
) -> None:
    if facts.verdict.tier is Tier.MEDIUM and (
        facts.held or "vault/hold" in facts.labels or facts.request_changes
    ):
        assert Act.MERGE not in [e.act for e in decide_pull(facts, policy)]


@pytest.mark.parametrize(
    "policy_name, tier, seen_after, now_after, expected",
    [
        # (policy, tier, head first seen, now, acts after PUBLISH)
        ("template", Tier.LOW, timedelta(0), timedelta(hours=1), [Act.MERGE]),
        ("template", Tier.LOW, timedelta(0), timedelta(hours=25), [Act.EXPIRE]),
        ("template", Tier.MEDIUM, timedelta(0), timedelta(hours=5), [Act.NOTIFY]),
        ("veto window", Tier.MEDIUM, timedelta(0), timedelta(hours=1), [Act.NOTIFY]),
        (
            "veto window",
            Tier.MEDIUM,
            timedelta(0),
            timedelta(hours=2),
            [Act.NOTIFY, Act.MERGE],
        ),
        # a push restarts the veto window
        (
            "veto window",
            Tier.MEDIUM,
            timedelta(hours=1),
            timedelta(hours=2),
            [Act.NOTIFY],
        ),
        ("veto window", Tier.HIGH, timedelta(0), timedelta(hours=5), [Act.NOTIFY]),
        ("template", Tier.HIGH, timedelta(0), timedelta(days=8), [Act.EXPIRE]),
    ],
)
def test_decide_pull_table(
    policy_name: str,
    tier: Tier,
    seen_after: timedelta,
    now_after: timedelta,
    expected: list[Act],
) -> None:
    facts = PullFacts(
        number=7,
        head_sha="a" * 40,
        created_at=T0,
        head_seen_at=T0 + seen_after,
        labels=frozenset(),
        verdict=verdict(tier),
        request_changes=False,
        notified_head=None,
        approvals_needed=0,
        approved_head=None,
        now=T0 + now_after,
    )
    acts = [e.act for e in decide_pull(facts, POLICIES[policy_name])]
    assert acts == [Act.PUBLISH, *expected]


@pytest.mark.parametrize(
    "policy_name, tier, seen_after, due_after",
    [
        ("template", Tier.LOW, timedelta(0), timedelta(hours=24)),
        ("template", Tier.MEDIUM, timedelta(0), timedelta(hours=72)),
        ("template", Tier.HIGH, timedelta(0), timedelta(days=7)),
        ("veto window", Tier.MEDIUM, timedelta(0), timedelta(hours=2)),
        ("veto window", Tier.MEDIUM, timedelta(hours=3), timedelta(hours=5)),
        ("veto window", Tier.MEDIUM, timedelta(hours=71), timedelta(hours=72)),
        ("veto window", Tier.HIGH, timedelta(0), timedelta(days=7)),
    ],
)
def test_next_timer_table(
    policy_name: str, tier: Tier, seen_after: timedelta, due_after: timedelta
) -> None:
    facts = PullFacts(
        number=7,
        head_sha="a" * 40,
        created_at=T0,
        head_seen_at=T0 + seen_after,
        labels=frozenset(),
        verdict=verdict(tier),
        request_changes=False,
        notified_head=None,
        approvals_needed=0,
        approved_head=None,
        now=T0,
    )
    assert next_timer(facts, POLICIES[policy_name]) == T0 + due_after


@settings(max_examples=200, deadline=None)
@given(facts=pull_facts(), policy=policies)
def test_nothing_changes_before_next_timer(facts: PullFacts, policy: Policy) -> None:
    """Between now and next_timer, decide_pull gives the same acts (no tick is missed)."""
    due = next_timer(facts, policy)
    if facts.now < due:
        later = replace(facts, now=due - timedelta(seconds=1))
        assert [e.act for e in decide_pull(facts, policy)] == [
            e.act for e in decide_pull(later, policy)
        ]


# ---------------------------------------------------------------------------
# may_merge and verify_merge


@pytest.mark.parametrize(
    "tier, who, protected, allowed",
    [
        (Tier.LOW, {Role.REVIEWER}, False, True),
        (Tier.MEDIUM, {Role.REVIEWER}, False, True),
        (Tier.HIGH, {Role.REVIEWER}, False, False),
        (Tier.HIGH, {Role.ADMIN}, False, True),
        (Tier.LOW, {Role.REVIEWER}, True, False),
        (Tier.LOW, {Role.ADMIN}, True, True),
        (Tier.HIGH, {Role.ADMIN, Role.PROPOSER}, False, False),
        (Tier.LOW, {Role.ADMIN, Role.BOT}, False, False),
        (Tier.LOW, {Role.ADMIN, Role.DISPATCHER}, False, False),
        (Tier.LOW, set(), False, False),
    ],
)
def test_may_merge_table(
    tier: Tier, who: set[Role], protected: bool, allowed: bool
) -> None:
    assert may_merge(tier, frozenset(who), protected) is allowed


@given(tier=tiers, who=roles, protected=st.booleans())
def test_may_merge_is_monotonic_in_the_tier(
    tier: Tier, who: frozenset[Role], protected: bool
) -> None:
    """Whoever may merge a tier may merge every lower one: a higher tier is never easier."""
    if may_merge(tier, who, protected):
        assert all(may_merge(t, who, protected) for t in Tier if t <= tier)
        assert may_merge(tier, who, False)


@settings(max_examples=500, deadline=None)
@given(facts=merge_facts(), policy=policies)
def test_verify_merge_never_passes_a_high_merge_but_an_admins(
    facts: MergeFacts, policy: Policy
) -> None:
    """Never merges high: only an admin (not the proposer, a bot or the dispatcher) fires high."""
    if verify_merge(facts, policy) is None and facts.tier is Tier.HIGH:
        assert Role.ADMIN in facts.merger_roles
        assert not facts.merger_roles & {Role.PROPOSER, Role.BOT, Role.DISPATCHER}
        assert facts.merger_approved_head  # vouched (ADR 0008)


@settings(max_examples=500, deadline=None)
@given(facts=merge_facts(), policy=policies)
def test_a_lowering_is_impossible(facts: MergeFacts, policy: Policy) -> None:
    """What passes at a tier also passes at every lower one, never the other way round.

    The tier is recomputed from the base policy: a merge is judged at that tier,
    so a merger eligible for a lower tier only is refused at the real one.
    """
    if verify_merge(facts, policy) is None:
        for lower in (t for t in Tier if t < facts.tier):
            assert verify_merge(replace(facts, tier=lower), policy) is None
    if facts.protected and verify_merge(facts, policy) is None:
        assert Role.ADMIN in facts.merger_roles


@settings(max_examples=500, deadline=None)
@given(facts=merge_facts(), policy=policies)
def test_verify_merge_refuses_every_broken_fact(
    facts: MergeFacts, policy: Policy
) -> None:
    why = verify_merge(facts, policy)
    if not facts.head_matches:
        assert why is ReasonCode.HEAD_MISMATCH
    elif not facts.blob_matches:
        assert why is ReasonCode.CHANGED_AFTER_MERGE
    elif facts.refused:
        assert why is ReasonCode.INVALID
    elif facts.merger is None:
        assert why is ReasonCode.NO_PULL_REQUEST
    elif Role.PROPOSER in facts.merger_roles:
        assert why is ReasonCode.MERGED_BY_PROPOSER
    elif Role.BOT in facts.merger_roles:
        assert why is ReasonCode.MERGED_BY_BOT
    elif Role.DISPATCHER in facts.merger_roles and (
        facts.held_at_merge or facts.protected or facts.tier is Tier.HIGH
    ):
        assert why is not None


# ---------------------------------------------------------------------------
# decide_action


@st.composite
def action_facts(draw: st.DrawFn) -> ActionFacts:
    merge = draw(
        st.one_of(
            merge_facts(),
            st.sampled_from(
                [
                    ReasonCode.NO_MERGE,
                    ReasonCode.NO_PULL_REQUEST,
                    ReasonCode.PROVENANCE_UNKNOWN,
                    ReasonCode.NOT_ADDED_BY_MERGE,
                ]
            ),
        )
    )
    locks = tuple(draw(st.lists(st.sampled_from(["a", "b", "c"]), max_size=2)))
    return ActionFacts(
        now=T0,
        queued=draw(st.integers(0, 3)),
        queue_limit=draw(st.integers(1, 3)),
        merge=merge,
        policy=draw(policies),
        merger="alice",
        parse_problems=draw(st.sampled_from([(), ("$.formula: missing",)])),
        expires=draw(
            st.sampled_from([None, T0 - timedelta(hours=1), T0 + timedelta(hours=1)])
        ),
        human_request=draw(st.booleans()),
        assessment_problems=draw(st.sampled_from([(), ("unknown formula",)])),
        locks=locks,
        held=draw(st.frozensets(st.sampled_from(["a", "b", "c"]))),
    )


@settings(max_examples=500, deadline=None)
@given(facts=action_facts())
def test_decide_action_never_claims_what_verify_merge_refused(
    facts: ActionFacts,
) -> None:
    decision = decide_action(facts)
    if facts.queued >= facts.queue_limit:
        assert isinstance(decision, Defer)
        return
    merge = facts.merge
    if isinstance(merge, ReasonCode):
        assert isinstance(decision, Refuse) and decision.reason is merge
        return
    assert isinstance(merge, MergeFacts) and facts.policy is not None
    refusal = verify_merge(merge, facts.policy)
    if refusal is not None:
        assert isinstance(decision, Refuse) and decision.reason is refusal
    if isinstance(decision, Claim | Done | Expire):
        assert refusal is None and not facts.parse_problems
    if isinstance(decision, Claim):
        assert not facts.assessment_problems and not facts.human_request
        assert not facts.held.intersection(facts.locks)
        assert facts.expires is None or facts.expires > facts.now
        assert decision.locks == facts.locks


def passing_merge() -> MergeFacts:
    return MergeFacts(
        tier=Tier.LOW,
        protected=False,
        refused=False,
        merger="alice",
        merger_roles=frozenset({Role.REVIEWER}),
        proposer="mallory",
        pr_created_at=T0,
        merged_at=T0,
        head_matches=True,
        blob_matches=True,
    )


@pytest.mark.parametrize(
    "change, expected",
    [
        ({}, Claim(("a",), "low tier, merged by alice")),
        ({"queued": 2}, Defer("queue limit of 2 reached this tick")),
        ({"merge": None}, Refuse(ReasonCode.PROVENANCE_UNKNOWN, "")),
        ({"merge": ReasonCode.NO_MERGE}, Refuse(ReasonCode.NO_MERGE, "")),
        ({"policy": None}, Refuse(ReasonCode.INVALID, "")),
        (
            {"merge": replace(passing_merge(), tier=Tier.HIGH)},
            Refuse(ReasonCode.MERGER_NOT_ELIGIBLE, ""),
        ),
        ({"parse_problems": ("bad",)}, Refuse(ReasonCode.INVALID, "bad")),
        (
            {"expires": T0, "human_request": True},
            Expire(f"expires {T0.isoformat()} has passed"),
        ),
        (
            {"human_request": True, "assessment_problems": ("unknown formula",)},
            Done("human request merged by alice"),
        ),
        (
            {"assessment_problems": ("unknown formula",), "held": frozenset({"a"})},
            Refuse(ReasonCode.INVALID, "unknown formula"),
        ),
        ({"held": frozenset({"a"})}, Defer("lock held: ['a']")),
    ],
)
def test_decide_action_table(change: dict[str, object], expected: object) -> None:
    facts = replace(
        ActionFacts(
            now=T0,
            queued=0,
            queue_limit=2,
            merge=passing_merge(),
            policy=POLICIES["template"],
            merger="alice",
            locks=("a",),
        ),
        **change,  # type: ignore[arg-type]
    )
    decision = decide_action(facts)
    if isinstance(expected, Refuse) and not expected.detail:
        assert isinstance(decision, Refuse) and decision.reason is expected.reason
    else:
        assert decision == expected


# ---------------------------------------------------------------------------
# The merge-eligibility rule, stated once (needs_admin, dispatcher_merges,
# veto_window_merges): decide_pull, may_merge and the texts people read agree.

ELIGIBILITY_POLICIES = {
    **POLICIES,
    "low by review": parse_policy(
        TEMPLATE.replace('merge = "auto"', 'merge = "reviewer"', 1)
    ),
}


@pytest.mark.parametrize("name", sorted(ELIGIBILITY_POLICIES))
@pytest.mark.parametrize("tier", list(Tier))
@pytest.mark.parametrize("protected", [False, True])
def test_the_merge_rule_reads_the_same_everywhere(
    name: str, tier: Tier, protected: bool
) -> None:
    from opsvault.dispatcher.commands import Conversation
    from opsvault.dispatcher.hold import HoldState
    from opsvault.dispatcher.publish import explain, who_may_merge
    from opsvault.dispatcher.state import (
        dispatcher_merges,
        needs_admin,
        veto_window_merges,
    )

    policy = ELIGIBILITY_POLICIES[name]
    facts = PullFacts(
        number=7,
        head_sha="a" * 40,
        created_at=T0,
        head_seen_at=T0,
        labels=frozenset(),
        verdict=verdict(tier, protected=protected),
        request_changes=False,
        notified_head="a" * 40,
        approvals_needed=0,
        approved_head=None,
        now=T0 + timedelta(hours=3),  # past a 2h veto window, before any deadline
    )
    merges = any(e.act is Act.MERGE for e in decide_pull(facts, policy))
    by_itself = dispatcher_merges(tier, protected, policy)
    assert merges == (
        by_itself or veto_window_merges(tier, protected, policy) is not None
    )
    assert by_itself == (tier is Tier.LOW and not protected and name != "low by review")
    assert needs_admin(tier, protected) == (tier is Tier.HIGH or protected)
    assert may_merge(tier, frozenset({Role.REVIEWER}), protected) == (
        not needs_admin(tier, protected)
    )
    text = who_may_merge(tier, protected, policy)
    assert text.startswith("an admin") == needs_admin(tier, protected)
    assert (text == "the dispatcher merges it") == by_itself
    talk = Conversation(HoldState(held=False), explain=True)
    said = explain(verdict(tier, protected=protected), policy, talk, facts)[-1]
    assert (said == "- the dispatcher merges it") == by_itself
