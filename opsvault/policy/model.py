"""Policy value types: tier settings, approvers, path rules, escalation rules, secrets, sinks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from opsvault.vault.tier import Tier

if TYPE_CHECKING:  # a policy without [[freeze]] never imports the window rules
    from opsvault.policy.freeze import Freeze


class MergeMode(StrEnum):
    AUTO = "auto"
    REVIEWER = "reviewer"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principals:
    """Who holds a role (``[admins]``, ``[reviewers]``, ``[bots]``): forge users and ``org/team`` teams."""

    users: frozenset[str] = frozenset()
    teams: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class TierSettings:
    """``[tiers.<tier>]``: who merges, how long a PR may wait, and whom to notify."""

    merge: MergeMode
    deadline: timedelta
    veto_window: timedelta | None = None
    notify: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PathRule:
    """One ``[[paths]]`` entry: changed files matching *pattern* are at least *tier*."""

    pattern: str
    tier: Tier


@dataclass(frozen=True, slots=True)
class RuleCondition:
    """Every given part must hold for the rule to match (an empty part is not checked)."""

    params: tuple[tuple[str, tuple[str | int | bool, ...]], ...] = ()
    secrets_any: tuple[str, ...] = ()
    formula_any: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Rule:
    """One ``[[rules]]`` entry: actions matching *when* are at least *tier*."""

    name: str
    tier: Tier
    when: RuleCondition


@dataclass(frozen=True, slots=True)
class Sink:
    """One ``[notify.<name>]`` sink: where notices of a tier go."""

    name: str
    kind: str
    url: str
    token_secret: str | None = None


@dataclass(frozen=True, slots=True)
class SuggestSettings:
    """``[suggest]``: the history ``vault policy suggest`` needs (policy/suggest.py)."""

    runs: int = 20
    window: timedelta = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Policy:
    """The parsed ``vault/policy.toml``. Build it with ``policy.parse.parse_policy``."""

    default_tier: Tier
    tiers: dict[Tier, TierSettings] = field(hash=False)
    admins: Principals = Principals()
    reviewers: Principals = Principals()
    bots: Principals = Principals()
    formulas: tuple[tuple[str, Tier], ...] = ()
    paths: tuple[PathRule, ...] = ()
    rules: tuple[Rule, ...] = ()
    secrets_allowed: frozenset[str] = frozenset()
    secrets_by_formula: tuple[tuple[str, frozenset[str]], ...] = ()
    sinks: tuple[Sink, ...] = ()
    freezes: tuple[Freeze, ...] = ()  # [[freeze]] windows (policy/freeze.py)
    suggest: SuggestSettings = SuggestSettings()

    def formula_tier(self, name: str) -> Tier | None:
        """Return the tier policy assigns to formula *name*, or None if it names none."""
        for formula, tier in self.formulas:
            if formula == name:
                return tier
        return None

    def secrets_for(self, formula: str) -> frozenset[str]:
        """Return the secrets *formula* may receive: scoped to it and globally allowed."""
        for name, secrets in self.secrets_by_formula:
            if name == formula:
                return secrets & self.secrets_allowed
        return frozenset()

    def settings(self, tier: Tier) -> TierSettings:
        return self.tiers[tier]
