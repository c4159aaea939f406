"""Admission of one action against the base side's formulas and policy.

``assess_action`` is what both ``vault validate``/``vault classify`` and the
dispatcher use: form was checked by ``parse_action``; here the action meets its
formula (params), the policy (secrets scoping) and its tier (expiry).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from opsvault.errors import Problem
from opsvault.policy.action import Classification, classify_action, effective_secrets
from opsvault.policy.model import Policy
from opsvault.vault.formula import Formula, param_value_problems
from opsvault.vault.request import Action


@dataclass(frozen=True, slots=True)
class Assessment:
    """An action met with its formula and policy: its tier, and every reason to refuse it."""

    action: Action
    classification: Classification
    problems: tuple[Problem, ...]

    @property
    def refused(self) -> bool:
        return bool(self.problems)


def assess_action(
    action: Action,
    formulas: Mapping[str, Formula],
    policy: Policy,
    now: datetime | None,
) -> Assessment:
    """Return the tier of *action* and every reason it must be refused.

    An unknown formula classifies as ``default_tier`` and is refused (it cannot
    run). Params must be declared, typed and match their patterns; required
    params must be present. Every secret the action would receive must be
    declared by the formula and allowed for it by policy. ``expires``, when
    given, must lie after *now* and within the tier's deadline (not checked
    when *now* is None).
    """
    formula = formulas.get(action.formula) if action.formula is not None else None
    classification = classify_action(action, formula, policy)
    problems: list[Problem] = []
    if action.is_human_request:
        if action.params:
            problems.append(
                Problem("$.params", "a request for a human takes no params")
            )
        if action.secrets:
            problems.append(
                Problem("$.secrets", "a request for a human receives no secrets")
            )
    elif formula is None:
        problems.append(
            Problem(
                "$.formula",
                f"unknown formula {action.formula!r}; use `vault formulas` to list them",
            )
        )
    else:
        problems.extend(_param_problems(action, formula))
        problems.extend(_secret_problems(action, formula, policy))
    if action.expires is not None and now is not None:
        deadline = policy.settings(classification.tier).deadline
        if action.expires <= now:
            problems.append(
                Problem("$.expires", f"{action.expires.isoformat()} has already passed")
            )
        elif action.expires > now + deadline:
            problems.append(
                Problem(
                    "$.expires",
                    f"{action.expires.isoformat()} lies beyond the {classification.tier.label} tier's "
                    f"deadline of {deadline}; choose an earlier time",
                )
            )
    return Assessment(
        action,
        classification,
        tuple(sorted(problems, key=lambda p: (p.path, p.message))),
    )


def _param_problems(action: Action, formula: Formula) -> list[Problem]:
    problems: list[Problem] = []
    given = dict(action.params)
    for name, value in action.params:
        spec = formula.param(name)
        if spec is None:
            declared = ", ".join(repr(p.name) for p in formula.params) or "none"
            problems.append(
                Problem(
                    f"$.params.{name}",
                    f"not declared by formula {formula.name!r} (declared: {declared})",
                )
            )
            continue
        problems.extend(
            Problem(f"$.params.{name}", m) for m in param_value_problems(spec, value)
        )
    for spec in formula.params:
        if spec.required and spec.name not in given:
            problems.append(
                Problem(
                    f"$.params.{spec.name}", f"required by formula {formula.name!r}"
                )
            )
    return problems


def _secret_problems(action: Action, formula: Formula, policy: Policy) -> list[Problem]:
    problems: list[Problem] = []
    for i, name in enumerate(action.secrets):
        if name not in formula.secrets:
            problems.append(
                Problem(
                    f"$.secrets[{i}]",
                    f"{name!r} is not declared by formula {formula.name!r}",
                )
            )
    allowed = policy.secrets_for(formula.name)
    for name in sorted(effective_secrets(action, formula) - allowed):
        if name in action.secrets:
            at = f"$.secrets[{action.secrets.index(name)}]"
        else:
            at = "$.formula"
        problems.append(
            Problem(
                at,
                f"secret {name!r} is not allowed for formula {formula.name!r} by policy; an admin must "
                f"list it in [secrets] allowed and [secrets.formulas] {formula.name}",
            )
        )
    return problems
