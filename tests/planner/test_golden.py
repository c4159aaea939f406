"""Golden trees: ``<case>.md`` + facts ``<case>.toml`` give ``<case>.expected.md``.

``<case>.report.txt`` holds the changes and the ``--check`` findings. Refresh with
``pytest tests/planner --update-golden`` and review the diff.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from opsvault.planner.check import check_plan
from opsvault.planner.render import parse_plan, render_plan
from opsvault.planner.update import update_plan

from .support import load_facts, render_report

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(path.stem for path in GOLDEN.glob("*.toml"))


def _compare(path: Path, actual: str, update_golden: bool) -> None:
    if update_golden:
        path.write_bytes(actual.encode("utf-8"))
    assert path.exists(), f"{path} is missing; run pytest --update-golden"
    assert actual == path.read_bytes().decode("utf-8")


@pytest.mark.parametrize("case", CASES)
def test_golden_tree(case: str, update_golden: bool) -> None:
    text = (GOLDEN / f"{case}.md").read_bytes().decode("utf-8")
    facts = load_facts(GOLDEN / f"{case}.toml")
    plan = parse_plan(text)
    assert render_plan(plan) == text

    updated, changes = update_plan(plan, facts.issues, facts.vault, facts.today)
    findings = check_plan(plan, facts.issues, facts.vault, path=f"{case}.md")
    _compare(GOLDEN / f"{case}.expected.md", render_plan(updated), update_golden)
    _compare(
        GOLDEN / f"{case}.report.txt", render_report(changes, findings), update_golden
    )

    assert parse_plan(render_plan(updated)) == updated
    again, more = update_plan(updated, facts.issues, facts.vault, facts.today)
    assert (again, more) == (updated, ())
    assert not [
        f
        for f in check_plan(updated, facts.issues, facts.vault)
        if "out of date" in f.message
    ]


def test_consistent_tree_is_left_alone() -> None:
    text = (GOLDEN / "consistent.md").read_text(encoding="utf-8")
    facts = load_facts(GOLDEN / "consistent.toml")
    updated, changes = update_plan(
        parse_plan(text), facts.issues, facts.vault, facts.today
    )
    assert changes == ()
    assert render_plan(updated) == text
