"""`vault policy diff`: what a policy change would do to formulas and actions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from opsvault.policy.action import classify_action, formula_tier_reason
from opsvault.policy.model import Policy
from opsvault.vault.formula import Formula
from opsvault.vault.request import Action
from opsvault.vault.tier import Tier


@dataclass(frozen=True, slots=True)
class TierChange:
    subject: str  # "formula:<name>", "action:<id>", "default_tier", "path:<pattern>"
    old: Tier | None
    new: Tier | None

    @property
    def lowered(self) -> bool:
        return self.old is not None and self.new is not None and self.new < self.old

    @property
    def changed(self) -> bool:
        return self.old != self.new


def policy_impact(
    old: Policy,
    new: Policy,
    formulas: Mapping[str, Formula],
    actions: Sequence[Action] = (),
) -> list[TierChange]:
    """Return every tier that differs between *old* and *new*, lowerings included.

    Covers ``default_tier``, each formula's own tier, each ``[[paths]]`` pattern
    and each given action's full classification.
    """
    changes: list[TierChange] = []
    if old.default_tier != new.default_tier:
        changes.append(TierChange("default_tier", old.default_tier, new.default_tier))
    names = sorted(
        set(formulas) | {n for n, _ in old.formulas} | {n for n, _ in new.formulas}
    )
    for name in names:
        formula = formulas.get(name)
        before = formula_tier_reason(name, formula, old).tier
        after = formula_tier_reason(name, formula, new).tier
        if before != after:
            changes.append(TierChange(f"formula:{name}", before, after))
    old_paths = {p.pattern: p.tier for p in old.paths}
    new_paths = {p.pattern: p.tier for p in new.paths}
    for pattern in sorted(set(old_paths) | set(new_paths)):
        # An absent pattern leaves its files to default_tier, so adding a low
        # pattern is a lowering and must be flagged as one.
        before_path = old_paths.get(pattern, old.default_tier)
        after_path = new_paths.get(pattern, new.default_tier)
        if before_path != after_path:
            changes.append(TierChange(f"path:{pattern}", before_path, after_path))
    for action in actions:
        formula = formulas.get(action.formula) if action.formula else None
        before = classify_action(action, formula, old).tier
        after = classify_action(action, formula, new).tier
        if before != after:
            changes.append(TierChange(f"action:{action.id}", before, after))
    return changes
