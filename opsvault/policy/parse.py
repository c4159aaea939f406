"""Parse ``vault/policy.toml`` into a Policy, reporting every problem at once."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opsvault.errors import PolicyError, Problem
from opsvault.layout import POLICY as POLICY_PATH
from opsvault.policy.model import (
    MergeMode,
    PathRule,
    Policy,
    Principals,
    Rule,
    RuleCondition,
    Sink,
    SuggestSettings,
    TierSettings,
)
from opsvault.vault.duration import parse_duration
from opsvault.vault.schema import parse_toml, schema_errors, schema_problems
from opsvault.vault.tier import Tier

# Imported where used: a valid policy is never pruned, and one without [[freeze]]
# needs no window rules (a cold `vault classify FILE` parses one, issue 11).
if TYPE_CHECKING:
    from opsvault.policy.freeze import Freeze
    from opsvault.policy.salvage import Pruned


def parse_policy(text: str | bytes, where: str = POLICY_PATH) -> Policy:
    """Return the Policy in *text*; raise PolicyError listing every problem.

    Beyond the schema: tier order (low may not need more approval than high is
    fine, but ``merge = "auto"`` is allowed only on low), notify names must exist,
    and secrets scoped to a formula must be globally allowed. Every problem is
    reported at once: a schema problem does not hide those beyond it.
    """
    reading = read_policy(text, where)
    if reading.problems or reading.policy is None:
        raise PolicyError(where, reading.problems)
    return reading.policy


@dataclass(frozen=True, slots=True)
class PolicyReading:
    """Every problem of a policy text, and what is left to lint when it has some.

    ``policy`` is built from the valid parts only (``salvage.prune``) and is
    for finding more problems (``vault policy check``), never for classifying:
    only ``parse_policy`` hands out a policy, and only when there is no
    problem. ``None`` when the text is not a TOML document or nothing valid
    is left.
    """

    problems: tuple[Problem, ...]
    policy: Policy | None
    pruned: Pruned | None = None

    def original_problems(self, problems: Iterable[Problem]) -> list[Problem]:
        """Return *problems* found in ``policy`` with paths as in the file."""
        if self.pruned is None:
            return list(problems)
        return self.pruned.original_problems(problems)


def read_policy(text: str | bytes, where: str = POLICY_PATH) -> PolicyReading:
    """Return every problem of the policy in *text* and the policy left of its valid parts.

    Raise PolicyError only when *text* is not a TOML document (nothing to read).
    """
    data = parse_toml(text, where, PolicyError)
    problems = schema_problems(data, "policy")
    if not problems:
        semantic = _semantic_problems(data)
        return PolicyReading(tuple(semantic), _build(_buildable(data, semantic)))
    from opsvault.policy.salvage import prune

    pruned = prune(data, lambda d: schema_errors(d, "policy"))
    if pruned is None:
        return PolicyReading(tuple(problems), None)
    semantic_pruned = _semantic_problems(pruned.data)
    semantic = pruned.original_problems(semantic_pruned)
    every = sorted(set(problems) | set(semantic), key=lambda p: (p.path, p.message))
    policy = _build(_buildable(pruned.data, semantic_pruned))
    return PolicyReading(tuple(every), policy, pruned)


def _buildable(data: dict[str, Any], problems: list[Problem]) -> dict[str, Any]:
    """Return schema-valid *data* with the durations *problems* name made neutral."""
    bad = {p.path for p in problems}
    if not any(path.endswith((".deadline", ".veto_window")) for path in bad):
        return data
    fixed = {**data, "tiers": {k: dict(v) for k, v in data["tiers"].items()}}
    for name, settings in fixed["tiers"].items():
        if f"$.tiers.{name}.deadline" in bad:
            settings["deadline"] = "1d"
        if f"$.tiers.{name}.veto_window" in bad:
            settings.pop("veto_window", None)
    return fixed


def _semantic_problems(data: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    sinks = set(data.get("notify", {}))
    for tier_name, settings in data["tiers"].items():
        for key in ("deadline", "veto_window"):
            if key in settings:
                try:
                    parse_duration(settings[key])
                except ValueError as exc:
                    problems.append(Problem(f"$.tiers.{tier_name}.{key}", str(exc)))
        if settings["merge"] == "auto" and tier_name != "low":
            problems.append(
                Problem(
                    f"$.tiers.{tier_name}.merge",
                    "'auto' is allowed only for the low tier; use 'reviewer' or 'admin'",
                )
            )
        if tier_name == "high" and settings["merge"] != "admin":
            problems.append(
                Problem(
                    "$.tiers.high.merge", "the high tier must be merged by an admin"
                )
            )
        if "veto_window" in settings and tier_name != "medium":
            problems.append(
                Problem(
                    f"$.tiers.{tier_name}.veto_window",
                    "a veto window exists only for the medium tier",
                )
            )
        for i, name in enumerate(settings.get("notify", [])):
            if name not in sinks:
                problems.append(
                    Problem(
                        f"$.tiers.{tier_name}.notify[{i}]",
                        f"no sink {name!r}; define [notify.{name}] or remove it",
                    )
                )
    allowed = set(data.get("secrets", {}).get("allowed", []))
    for formula, names in data.get("secrets", {}).get("formulas", {}).items():
        for i, name in enumerate(names):
            if name not in allowed:
                problems.append(
                    Problem(
                        f"$.secrets.formulas[{formula!r}][{i}]",
                        f"{name!r} is not in secrets.allowed; add it there or remove it here",
                    )
                )
    seen: set[str] = set()
    for i, rule in enumerate(data.get("rules", [])):
        if rule["name"] in seen:
            problems.append(
                Problem(f"$.rules[{i}].name", f"duplicate rule name {rule['name']!r}")
            )
        seen.add(rule["name"])
    window = data.get("suggest", {}).get("window")
    if window is not None:
        try:
            parse_duration(window)
        except ValueError as exc:
            problems.append(Problem("$.suggest.window", f'{exc}; write it like "30d"'))
    for i, path_rule in enumerate(data.get("paths", [])):
        pattern = path_rule["pattern"]
        if any(part in ("", ".", "..") for part in pattern.split("/")):
            problems.append(
                Problem(
                    f"$.paths[{i}].pattern",
                    f"{pattern!r} has an empty, '.' or '..' segment",
                )
            )
    if "freeze" in data:
        from opsvault.policy.freeze import freeze_problems

        problems.extend(freeze_problems(data["freeze"]))
    return problems


def _principals(data: dict[str, Any] | None) -> Principals:
    data = data or {}
    return Principals(
        frozenset(data.get("users", [])), frozenset(data.get("teams", []))
    )


def _param_values(value: Any) -> tuple[str | int | bool, ...]:
    return tuple(value) if isinstance(value, list) else (value,)


def _build(data: dict[str, Any]) -> Policy:
    tiers = {
        Tier.parse(name): TierSettings(
            merge=MergeMode(settings["merge"]),
            deadline=parse_duration(settings["deadline"]),
            veto_window=parse_duration(settings["veto_window"])
            if "veto_window" in settings
            else None,
            notify=tuple(settings.get("notify", [])),
        )
        for name, settings in data["tiers"].items()
    }
    rules = tuple(
        Rule(
            name=rule["name"],
            tier=Tier.parse(rule["tier"]),
            when=RuleCondition(
                params=tuple(
                    (name, _param_values(value))
                    for name, value in rule["when"].get("params", {}).items()
                ),
                secrets_any=tuple(rule["when"].get("secrets_any", [])),
                formula_any=frozenset(rule["when"].get("formula_any", [])),
            ),
        )
        for rule in data.get("rules", [])
    )
    secrets = data.get("secrets", {})
    return Policy(
        default_tier=Tier.parse(data["default_tier"]),
        tiers=tiers,
        admins=_principals(data.get("admins")),
        reviewers=_principals(data.get("reviewers")),
        bots=_principals(data.get("bots")),
        formulas=tuple(
            (name, Tier.parse(tier)) for name, tier in data.get("formulas", {}).items()
        ),
        paths=tuple(
            PathRule(p["pattern"], Tier.parse(p["tier"])) for p in data.get("paths", [])
        ),
        rules=rules,
        secrets_allowed=frozenset(secrets.get("allowed", [])),
        secrets_by_formula=tuple(
            (name, frozenset(names))
            for name, names in secrets.get("formulas", {}).items()
        ),
        sinks=tuple(
            Sink(name, sink["kind"], sink["url"], sink.get("token_secret"))
            for name, sink in data.get("notify", {}).items()
        ),
        freezes=_freezes(data.get("freeze", [])),
        suggest=_suggest(data.get("suggest", {})),
    )


def _freezes(entries: list[dict[str, Any]]) -> tuple[Freeze, ...]:
    if not entries:
        return ()
    from opsvault.policy.freeze import build_freezes

    return build_freezes(entries)


def _suggest(data: dict[str, Any]) -> SuggestSettings:
    defaults = SuggestSettings()
    return SuggestSettings(
        runs=int(data.get("runs", defaults.runs)),
        window=parse_duration(data["window"]) if "window" in data else defaults.window,
    )
