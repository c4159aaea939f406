"""Trust earned from history: tier changes suggested by what formulas did (issue 14 §3, pure).

``suggest_tiers`` reads the outcomes recorded on the base branch (as ``Run``
values: the shell reads them through ``dispatcher/records.py``) and returns,
per formula, at most one suggestion with the runs behind it:

- **lower to low**: the formula is medium today and ran at least
  ``[suggest] runs`` times at medium within ``[suggest] window``, every one
  succeeded, and nothing else of it in the window failed, timed out,
  was interrupted, vetoed, refused or rejected;
- **raise one tier**: within the window it failed, timed out, or was vetoed
  (a hold at its merge counts as a veto).

Nothing here changes a policy by itself: ``apply_suggestions`` returns the
edited text, which becomes a high-tier policy PR an admin merges (or not).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import tomlkit

from opsvault.policy.action import formula_tier_reason
from opsvault.policy.model import Policy
from opsvault.vault.duration import render_duration
from opsvault.vault.formula import Formula
from opsvault.vault.tier import Tier

# Outcome and reason values as recorded (dispatcher/records.py, docs/lifecycle.md).
SUCCEEDED = "succeeded"
ESCALATING_OUTCOMES = frozenset({"failed", "timeout"})
VETO_REASONS = frozenset({"vetoed", "held-at-merge"})
NEUTRAL_OUTCOMES = frozenset({"expired", "done"})  # nobody acted, or a human request


@dataclass(frozen=True, slots=True)
class Run:
    """One recorded outcome of an action of *formula*: a result record on the base branch."""

    action_id: str
    formula: str
    outcome: str
    reason: str
    tier: str | None
    when: datetime | None
    record: str  # its path on the base branch
    pr: int | None = None
    approver: str | None = None

    @property
    def escalates(self) -> bool:
        return self.outcome in ESCALATING_OUTCOMES or (
            self.outcome == "refused" and self.reason in VETO_REASONS
        )

    @property
    def clean(self) -> bool:
        return self.outcome == SUCCEEDED


@dataclass(frozen=True, slots=True)
class Suggestion:
    formula: str
    current: Tier
    suggested: Tier
    why: str
    runs: tuple[Run, ...]  # the evidence, oldest first


def suggest_tiers(
    runs: Sequence[Run],
    policy: Policy,
    formulas: Mapping[str, Formula],
    now: datetime,
) -> list[Suggestion]:
    """Return the tier changes the history in *runs* supports, by formula name.

    Only formulas that exist at the base are judged, at their tier under
    *policy* today. A run without a time counts against lowering, never for it.
    """
    since = now - policy.suggest.window
    window = render_duration(policy.suggest.window)
    by_formula: dict[str, list[Run]] = {}
    for run in runs:
        if run.when is None or since <= run.when <= now:
            by_formula.setdefault(run.formula, []).append(run)
    found = []
    for name in sorted(by_formula):
        if name not in formulas:
            continue
        current = formula_tier_reason(name, formulas[name], policy).tier
        recent = sorted(
            by_formula[name], key=lambda r: (r.when is None, r.when, r.record)
        )
        bad = tuple(r for r in recent if r.escalates and r.when is not None)
        if bad:
            if current is not Tier.HIGH:
                found.append(
                    Suggestion(
                        name,
                        current,
                        Tier(current + 1),
                        f"{len(bad)} run(s) in the last {window} failed, timed out "
                        "or were vetoed",
                        bad,
                    )
                )
            continue
        if current is not Tier.MEDIUM:
            continue
        clean = tuple(
            r
            for r in recent
            if r.clean and r.tier == Tier.MEDIUM.label and r.when is not None
        )
        blocking = [
            r for r in recent if not r.clean and r.outcome not in NEUTRAL_OUTCOMES
        ]
        if len(clean) >= policy.suggest.runs and not blocking:
            found.append(
                Suggestion(
                    name,
                    current,
                    Tier.LOW,
                    f"{len(clean)} successful medium run(s) in the last {window} "
                    f"(at least {policy.suggest.runs}), none failed, timed out, "
                    "vetoed or rejected",
                    clean,
                )
            )
    return found


def apply_suggestions(policy_text: str, suggestions: Sequence[Suggestion]) -> str:
    """Return *policy_text* with ``[formulas]`` set as *suggestions* say; all else kept."""
    doc = tomlkit.parse(policy_text)
    if "formulas" not in doc:
        doc["formulas"] = tomlkit.table()
    table = doc["formulas"]
    assert isinstance(table, tomlkit.items.Table)
    for suggestion in suggestions:
        table[suggestion.formula] = suggestion.suggested.label
    return tomlkit.dumps(doc)


def render_evidence(suggestion: Suggestion) -> list[str]:
    """Return the Markdown table of the runs behind *suggestion*."""
    lines = [
        "| when | action | outcome | tier | PR | approver | record |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in suggestion.runs:
        when = run.when.isoformat(timespec="seconds") if run.when else "?"
        outcome = run.outcome if run.outcome != "refused" else f"refused ({run.reason})"
        pr = f"#{run.pr}" if run.pr is not None else "-"
        lines.append(
            f"| {when} | `{run.action_id}` | {outcome} | {run.tier or '-'} | {pr} "
            f"| {run.approver or '-'} | `{run.record}` |"
        )
    return lines


def render_pull_body(suggestions: Sequence[Suggestion], base: str) -> str:
    """Return the body of the policy PR proposing *suggestions* (evidence included)."""
    parts = [
        "Tier changes suggested by `vault policy suggest` from the outcomes "
        f"recorded on `{base}`. Nothing is applied until an admin merges this "
        "pull request (a policy change is always high tier).",
        "",
        "See what it would change for the actions you have:",
        "",
        "```sh",
        f"git show {base}:vault/policy.toml | vault policy diff - vault/policy.toml",
        "```",
    ]
    for s in suggestions:
        parts += [
            "",
            f"## `{s.formula}`: {s.current.label} → {s.suggested.label}",
            "",
            f"{s.why}.",
            "",
            *render_evidence(s),
        ]
    return "\n".join(parts) + "\n"
