"""Action-level classification: the tier of one action and the reasons for it.

The tier of an action is the maximum over everything that applies (see
``classify_action``): its formula's tier, every matching rule, its own
``blast_radius`` and HIGH for a human request. Change-level classification
(files, paths, floors) builds on this in ``opsvault.policy.classify``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from opsvault.policy.glob import name_match
from opsvault.policy.model import Policy, Rule
from opsvault.vault.formula import Formula, ParamValue
from opsvault.vault.request import Action
from opsvault.vault.tier import Tier


class Source(StrEnum):
    """Where a reason comes from; stored in results and shown to approvers."""

    POLICY_FORMULA = "policy-formula"
    FORMULA = "formula"
    DEFAULT = "default"
    RULE = "rule"
    ACTION = "action"
    HUMAN = "human"
    PATH = "path"
    FLOOR = "floor"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class Reason:
    """One thing that contributed a tier, and where it comes from."""

    tier: Tier
    source: Source
    detail: str

    def render(self) -> str:
        return f"{self.tier.label}: {self.detail}"


@dataclass(frozen=True, slots=True)
class Classification:
    """A tier and every reason that contributed to it (``--explain`` prints them)."""

    tier: Tier
    reasons: tuple[Reason, ...]


def join_reasons(reasons: Sequence[Reason]) -> Classification:
    return Classification(max(r.tier for r in reasons), tuple(reasons))


def formula_tier_reason(
    name: str | None, formula: Formula | None, policy: Policy
) -> Reason:
    """Return the reason giving an action its base tier from its formula."""
    if name is not None:
        tier = policy.formula_tier(name)
        if tier is not None:
            return Reason(
                tier,
                Source.POLICY_FORMULA,
                f"policy [formulas] sets {name!r} to {tier.label}",
            )
        if formula is not None and formula.blast_radius is not None:
            return Reason(
                formula.blast_radius,
                Source.FORMULA,
                f"formula {name!r} has blast_radius {formula.blast_radius.label}",
            )
        if formula is not None:
            return Reason(
                policy.default_tier,
                Source.DEFAULT,
                f"formula {name!r} sets no blast_radius: default_tier",
            )
    what = "no formula" if name is None else f"unknown formula {name!r}"
    return Reason(
        policy.default_tier,
        Source.DEFAULT,
        f"{what}: default_tier {policy.default_tier.label}",
    )


def effective_params(action: Action, formula: Formula | None) -> dict[str, ParamValue]:
    """Return the action's params with the formula's defaults filled in."""
    values: dict[str, ParamValue] = {}
    if formula is not None:
        values.update(
            (spec.name, spec.default)
            for spec in formula.params
            if spec.default is not None
        )
    values.update(action.params)
    return values


def effective_secrets(action: Action, formula: Formula | None) -> frozenset[str]:
    """Return every secret the action would receive: the formula's and the action's own."""
    return frozenset(action.secrets) | frozenset(formula.secrets if formula else ())


def _same(a: object, b: object) -> bool:
    # True == 1 in Python; a rule on `count = 1` must not match `count = true`.
    return type(a) is type(b) and a == b


def rule_matches(rule: Rule, action: Action, formula: Formula | None) -> bool:
    """Return whether every condition of *rule* holds for *action*."""
    when = rule.when
    if when.formula_any and action.formula not in when.formula_any:
        return False
    if when.secrets_any:
        secrets = effective_secrets(action, formula)
        if not any(name_match(p, s) for p in when.secrets_any for s in secrets):
            return False
    params = effective_params(action, formula)
    for name, wanted in when.params:
        if name not in params:
            return False
        value = params[name]
        items: Iterable[object] = value if isinstance(value, tuple) else (value,)
        if not any(_same(item, w) for item in items for w in wanted):
            return False
    return True


def classify_action(
    action: Action, formula: Formula | None, policy: Policy
) -> Classification:
    """Return the tier of *action* and every reason that contributed.

    *formula* is the formula the action names as found on the base side, or
    None when it is unknown (fails closed to ``default_tier``). The tier is the
    maximum of the formula's tier (policy ``[formulas]`` entry, else the
    formula's ``blast_radius``, else ``default_tier``), every matching rule, the
    action's own ``blast_radius`` and HIGH for a human request.
    """
    if action.is_human_request:
        reasons = [
            Reason(
                Tier.HIGH,
                Source.HUMAN,
                "a request for a human ([action_required]) is always high",
            )
        ]
    else:
        reasons = [formula_tier_reason(action.formula, formula, policy)]
    reasons.extend(
        Reason(rule.tier, Source.RULE, f"rule {rule.name!r} matches")
        for rule in policy.rules
        if rule_matches(rule, action, formula)
    )
    if action.blast_radius is not None:
        reasons.append(
            Reason(
                action.blast_radius,
                Source.ACTION,
                f"the action asks for blast_radius {action.blast_radius.label}",
            )
        )
    return join_reasons(reasons)
