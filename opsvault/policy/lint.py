"""`vault policy check`: problems in a policy that parse cleanly but are still wrong."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from opsvault.errors import Problem
from opsvault.layout import formula_path
from opsvault.policy.glob import name_match
from opsvault.policy.model import Policy, Rule
from opsvault.vault.formula import Formula, param_value_problems


@dataclass(frozen=True, slots=True)
class LintFinding:
    severity: str  # "error" | "warning"
    problem: Problem


def lint_policy(
    policy: Policy,
    formulas: Mapping[str, Formula],
    shadowed: frozenset[str] = frozenset(),
) -> list[LintFinding]:
    """Return findings about *policy* given the *formulas* actions can name.

    Errors: formulas named but missing, rules that can never match. Warnings:
    secrets scoped to unknown formulas, ops formulas shadowing built-ins.
    """
    findings: list[LintFinding] = []

    def error(path: str, message: str) -> None:
        findings.append(LintFinding("error", Problem(path, message)))

    def warning(path: str, message: str) -> None:
        findings.append(LintFinding("warning", Problem(path, message)))

    for name, _tier in policy.formulas:
        if name not in formulas:
            error(
                f"$.formulas[{name!r}]",
                f"no formula {name!r} exists; add vault/formulas/{name}.toml or remove the entry",
            )
    for name, _secrets in policy.secrets_by_formula:
        if name not in formulas:
            warning(f"$.secrets.formulas[{name!r}]", f"no formula {name!r} exists")
    for i, rule in enumerate(policy.rules):
        for why in _never_matches(rule, policy, formulas):
            error(f"$.rules[{i}]", f"rule {rule.name!r} can never match: {why}")
    for name in sorted(shadowed):
        warning(formula_path(name), f"replaces the built-in formula {name!r}")
    # notify names without a sink are found by parse_policy (read_policy) already.
    return findings


def _never_matches(
    rule: Rule, policy: Policy, formulas: Mapping[str, Formula]
) -> list[str]:
    reasons: list[str] = []
    when = rule.when
    candidates = {
        n: f
        for n, f in formulas.items()
        if not when.formula_any or n in when.formula_any
    }
    missing = sorted(when.formula_any - set(formulas))
    if missing and not candidates:
        reasons.append(f"formula_any names only unknown formulas {missing}")
    if when.secrets_any and not any(
        name_match(pattern, secret)
        for pattern in when.secrets_any
        for secret in policy.secrets_allowed
    ):
        reasons.append(
            f"secrets_any {list(when.secrets_any)} matches no secret in [secrets] allowed"
        )
    for name, wanted in when.params:
        fits = [
            f.name
            for f in candidates.values()
            if (spec := f.param(name)) is not None
            and any(
                not param_value_problems(spec, w)
                or (spec.type == "array" and not param_value_problems(spec, (w,)))
                for w in wanted
            )
        ]
        if candidates and not fits:
            reasons.append(
                f"no formula declares a param {name!r} that can take {list(wanted)}"
            )
    return reasons
