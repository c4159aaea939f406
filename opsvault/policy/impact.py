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
    """One tier that moves: ``subject`` is "default_tier", "formula:<name>",
    "path:<pattern>", "rule:<name>" or "action:<id>"; None is "not there"."""

    subject: str
    old: Tier | None
    new: Tier | None
    note: str = ""  # rules: "added", "removed", "condition changed"

    @property
    def lowered(self) -> bool:
        """Whether the change can lower a tier.

        An escalation rule removed, or whose condition changed, can stop
        raising what it matched: both count as lowerings (fail closed; the
        replayed actions show the ones it hits).
        """
        if self.subject.startswith("rule:") and self.old is not None:
            return self.new is None or self.new < self.old or bool(self.note)
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

    Covers ``default_tier``, each formula's own tier, each ``[[paths]]``
    pattern, each ``[[rules]]`` escalation (by name: added, removed, tier or
    condition changed) and each given action's full classification.
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
    changes.extend(_rule_changes(old, new))
    for action in actions:
        formula = formulas.get(action.formula) if action.formula else None
        before = classify_action(action, formula, old).tier
        after = classify_action(action, formula, new).tier
        if before != after:
            changes.append(TierChange(f"action:{action.id}", before, after))
    return changes


def _rule_changes(old: Policy, new: Policy) -> list[TierChange]:
    before = {r.name: r for r in old.rules}
    after = {r.name: r for r in new.rules}
    changes = []
    for name in sorted(set(before) | set(after)):
        was, now = before.get(name), after.get(name)
        if was == now:
            continue
        if was is None or now is None:
            note = "added" if was is None else "removed"
        else:
            note = "condition changed" if was.when != now.when else ""
        changes.append(
            TierChange(
                f"rule:{name}",
                was.tier if was is not None else None,
                now.tier if now is not None else None,
                note,
            )
        )
    return changes
