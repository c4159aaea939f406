from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from opsvault.policy.action import (
    Source,
    classify_action,
    formula_tier_reason,
    rule_matches,
)
from opsvault.policy.change import ChangedFile, ChangeKind
from opsvault.policy.classify import BaseState, classify_change
from opsvault.policy.model import MergeMode, Policy, Rule, RuleCondition, TierSettings
from opsvault.vault.formula import Formula, ParamSpec, Step
from opsvault.vault.request import Action
from opsvault.vault.tier import Tier

TIERS = st.sampled_from(list(Tier))
NAMES = st.sampled_from(["alpha", "beta", "gamma"])
VALUES = st.sampled_from(["prod", "staging", "dev"])
SECRETS = st.sampled_from(["PROD_KEY", "DEV_KEY", "TOKEN"])


def make_policy(
    default: Tier = Tier.HIGH,
    formulas: Iterable[tuple[str, Tier]] = (),
    rules: Iterable[Rule] = (),
) -> Policy:
    settings_ = {
        t: TierSettings(
            MergeMode.ADMIN if t is Tier.HIGH else MergeMode.REVIEWER, timedelta(days=1)
        )
        for t in Tier
    }
    return Policy(
        default_tier=default,
        tiers=settings_,
        formulas=tuple(formulas),
        rules=tuple(rules),
    )


FORMULAS = {
    name: Formula(
        name=name,
        description=name,
        steps=(Step("s", ("true",)),),
        blast_radius=tier,
        params=(ParamSpec("env", "string"),),
        secrets=("TOKEN",),
    )
    for name, tier in (("alpha", Tier.LOW), ("beta", Tier.MEDIUM), ("gamma", None))
}

rules_st = st.builds(
    lambda name, tier, formula_any, env, secrets: Rule(
        name,
        tier,
        RuleCondition(
            params=(("env", (env,)),) if env else (),
            secrets_any=secrets,
            formula_any=formula_any,
        ),
    ),
    st.text("abcdefgh", min_size=1, max_size=6),
    TIERS,
    st.frozensets(NAMES, max_size=2),
    st.none() | VALUES,
    st.lists(st.sampled_from(["PROD_*", "DEV_KEY", "*"]), max_size=2).map(tuple),
)
policies_st = st.builds(
    lambda default, formulas, rules: make_policy(default, formulas, rules),
    st.sampled_from([Tier.MEDIUM, Tier.HIGH]),
    st.lists(st.tuples(NAMES, TIERS), max_size=3, unique_by=lambda x: x[0]),
    st.lists(rules_st, max_size=4),
)
actions_st = st.builds(
    lambda formula, env, secrets, radius, human: Action(
        id="act-1",
        context="c",
        formula=None if human else formula,
        params=() if human or env is None else (("env", env),),
        secrets=tuple(secrets),
        blast_radius=radius,
        action_required="do it" if human else None,
    ),
    st.sampled_from(["alpha", "beta", "gamma", "unknown"]),
    st.none() | VALUES,
    st.lists(SECRETS, max_size=2, unique=True),
    st.none() | TIERS,
    st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(policies_st, actions_st)
def test_tier_never_below_formula_rule_or_own_tier(
    policy: Policy, action: Action
) -> None:
    formula = FORMULAS.get(action.formula or "")
    result = classify_action(action, formula, policy)
    floor = (
        []
        if action.is_human_request
        else [formula_tier_reason(action.formula, formula, policy).tier]
    )
    floor += [r.tier for r in policy.rules if rule_matches(r, action, formula)]
    if action.blast_radius is not None:
        floor.append(action.blast_radius)
    assert result.tier >= max(floor, default=Tier.LOW)
    if action.is_human_request:
        assert result.tier is Tier.HIGH
    assert result.tier == max(r.tier for r in result.reasons)


@settings(max_examples=200, deadline=None)
@given(policies_st, actions_st)
def test_classify_is_deterministic(policy: Policy, action: Action) -> None:
    formula = FORMULAS.get(action.formula or "")
    assert classify_action(action, formula, policy) == classify_action(
        action, formula, policy
    )


@settings(max_examples=200, deadline=None)
@given(policies_st, actions_st, rules_st)
def test_adding_a_rule_never_lowers_the_tier(
    policy: Policy, action: Action, extra: Rule
) -> None:
    formula = FORMULAS.get(action.formula or "")
    before = classify_action(action, formula, policy).tier
    after = classify_action(
        action, formula, dataclasses.replace(policy, rules=(*policy.rules, extra))
    ).tier
    assert after >= before


@settings(max_examples=200, deadline=None)
@given(policies_st, actions_st)
def test_own_blast_radius_only_raises(policy: Policy, action: Action) -> None:
    formula = FORMULAS.get(action.formula or "")
    without = classify_action(
        dataclasses.replace(action, blast_radius=None), formula, policy
    ).tier
    assert classify_action(action, formula, policy).tier >= without


def test_unknown_formula_fails_closed_to_default_tier() -> None:
    policy = make_policy(default=Tier.MEDIUM)
    action = Action(id="act-1", context="c", formula="nope")
    result = classify_action(action, None, policy)
    assert result.tier is Tier.MEDIUM
    assert result.reasons[0].source is Source.DEFAULT


def test_policy_formulas_entry_overrides_formula_blast_radius() -> None:
    policy = make_policy(formulas=[("beta", Tier.HIGH)])
    action = Action(id="act-1", context="c", formula="beta")
    assert classify_action(action, FORMULAS["beta"], policy).tier is Tier.HIGH


def test_rule_values_compare_with_type() -> None:
    rule = Rule("r", Tier.HIGH, RuleCondition(params=(("n", (1,)),)))
    action = Action(id="act-1", context="c", formula="alpha", params=(("n", True),))
    assert not rule_matches(rule, action, None)


def test_rule_secrets_include_formula_declared_secrets() -> None:
    # The proposer cannot dodge a secrets rule by not listing the formula's secret.
    rule = Rule("r", Tier.HIGH, RuleCondition(secrets_any=("TOK*",)))
    action = Action(id="act-1", context="c", formula="alpha")
    assert rule_matches(rule, action, FORMULAS["alpha"])


def test_formula_any_is_exact_not_a_pattern() -> None:
    rule = Rule("r", Tier.HIGH, RuleCondition(formula_any=frozenset({"alph"})))
    assert not rule_matches(
        rule, Action(id="act-1", context="c", formula="alpha"), FORMULAS["alpha"]
    )


def test_empty_change_is_default_tier() -> None:
    verdict = classify_change([], {}, BaseState(make_policy(Tier.MEDIUM), FORMULAS))
    assert verdict.tier is Tier.MEDIUM


def test_rename_of_existing_action_is_high_and_protected() -> None:
    change = ChangedFile(
        "vault/actions/new-1.toml",
        ChangeKind.RENAMED,
        old_path="vault/actions/old-1.toml",
    )
    content = b'formula = "alpha"\ncontext = "c"\n'
    verdict = classify_change(
        [change],
        {"vault/actions/new-1.toml": content},
        BaseState(make_policy(), FORMULAS),
    )
    assert verdict.tier is Tier.HIGH
    assert verdict.protected


def test_reused_id_is_refused() -> None:
    content = b'formula = "alpha"\ncontext = "c"\n'
    base = BaseState(make_policy(), FORMULAS, frozenset({"used-1"}))
    verdict = classify_change(
        [ChangedFile("vault/actions/used-1.toml", ChangeKind.ADDED)],
        {"vault/actions/used-1.toml": content},
        base,
    )
    assert verdict.refused
    assert "never reused" in verdict.files[0].problems[0].message
