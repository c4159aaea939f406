"""The rules of `vault policy suggest`, where they live (opsvault/policy/suggest.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from opsvault.policy.parse import parse_policy
from opsvault.policy.suggest import (
    Run,
    apply_suggestions,
    render_pull_body,
    suggest_tiers,
)
from opsvault.snapshot import load_builtin_formulas
from opsvault.vault.tier import Tier

NOW = datetime(2026, 12, 1, tzinfo=UTC)
TEMPLATE = (
    Path(__file__).parents[2] / "ops-template" / "vault" / "policy.toml"
).read_text()
POLICY = parse_policy(
    TEMPLATE.replace('noop = "low"', 'noop = "medium"')
    + '\n[suggest]\nruns = 3\nwindow = "10d"\n'
)
FORMULAS = load_builtin_formulas()


def run(
    n: int,
    outcome: str = "succeeded",
    *,
    formula: str = "noop",
    reason: str = "ok",
    tier: str | None = "medium",
    age: timedelta | None = timedelta(days=1),
) -> Run:
    return Run(
        action_id=f"{formula}-{n}",
        formula=formula,
        outcome=outcome,
        reason=reason,
        tier=tier,
        when=None if age is None else NOW - age,
        record=f"vault/fired/2026/11/{formula}-{n}.result.json",
        pr=n,
        approver="bob",
    )


def tiers(runs: list[Run]) -> dict[str, tuple[Tier, Tier, int]]:
    return {
        s.formula: (s.current, s.suggested, len(s.runs))
        for s in suggest_tiers(runs, POLICY, FORMULAS, NOW)
    }


CLEAN = [run(1), run(2), run(3)]


@pytest.mark.parametrize(
    ("runs", "expected"),
    [
        (CLEAN[:2], {}),  # fewer than [suggest] runs
        (CLEAN, {"noop": (Tier.MEDIUM, Tier.LOW, 3)}),
        (
            [*CLEAN, run(4, "expired", reason="deadline-passed")],
            {"noop": (Tier.MEDIUM, Tier.LOW, 3)},
        ),
        ([*CLEAN, run(4, "rejected", reason="closed-unmerged")], {}),
        ([*CLEAN, run(4, "interrupted", reason="claim-expired")], {}),
        ([*CLEAN, run(4, "refused", reason="merger-not-eligible")], {}),
        ([*CLEAN, run(4, "succeeded", age=None)], {"noop": (Tier.MEDIUM, Tier.LOW, 3)}),
        ([*CLEAN, run(4, "failed", age=None)], {}),  # undated: against, never for
        (
            [*CLEAN, run(4, "refused", reason="vetoed")],
            {"noop": (Tier.MEDIUM, Tier.HIGH, 1)},
        ),
        (
            [*CLEAN, run(4, "timeout", reason="timeout")],
            {"noop": (Tier.MEDIUM, Tier.HIGH, 1)},
        ),
        (
            [*CLEAN, run(4, "refused", reason="held-at-merge")],
            {"noop": (Tier.MEDIUM, Tier.HIGH, 1)},
        ),
        (
            [run(1, "failed", age=timedelta(days=11)), *CLEAN],
            {"noop": (Tier.MEDIUM, Tier.LOW, 3)},
        ),
        ([run(1, tier="low"), run(2, tier="low"), run(3)], {}),  # runs at medium only
        ([run(1, "failed", formula="git-make")], {}),  # already high
        ([run(1, "failed", formula="no-such-formula")], {}),
    ],
)
def test_suggestions(
    runs: list[Run], expected: dict[str, tuple[Tier, Tier, int]]
) -> None:
    assert tiers(runs) == expected


def test_a_low_formula_that_failed_is_suggested_medium() -> None:
    policy = parse_policy(TEMPLATE)  # noop is low there
    [found] = suggest_tiers([run(1, "failed", tier="low")], policy, FORMULAS, NOW)
    assert (found.current, found.suggested) == (Tier.LOW, Tier.MEDIUM)


def test_apply_keeps_the_file_and_adds_a_formulas_table_when_missing() -> None:
    found = suggest_tiers(CLEAN, POLICY, FORMULAS, NOW)
    text = apply_suggestions(TEMPLATE, found)
    assert "# Formula -> tier." in text and 'noop = "low"' in text
    bare = "\n".join(
        line
        for line in TEMPLATE.splitlines()
        if line not in ("[formulas]", 'noop = "low"')
    )
    assert dict(parse_policy(apply_suggestions(bare, found)).formulas) == {
        "noop": Tier.LOW
    }


def test_the_pull_body_lists_every_run_and_points_to_policy_diff() -> None:
    body = render_pull_body(suggest_tiers(CLEAN, POLICY, FORMULAS, NOW), "main")
    assert "vault policy diff" in body and "## `noop`: medium → low" in body
    for n in (1, 2, 3):
        assert f"`noop-{n}`" in body and f"#{n}" in body


def test_the_suggest_example_in_operating_md_parses_to_the_defaults() -> None:
    doc = Path(__file__).parents[2] / "docs" / "operating.md"
    block = doc.read_text().split("```toml\n[suggest]\n")[1].split("```")[0]
    settings = parse_policy(TEMPLATE + "\n[suggest]\n" + block).suggest
    assert settings == parse_policy(TEMPLATE).suggest
