"""The TOML examples in docs/formulas.md are loaded, so the page cannot drift."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.steps.support import load_formula

DOC = Path(__file__).resolve().parents[2] / "docs" / "formulas.md"
BLOCKS = re.findall(r"```toml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
ACTIONS = [
    tomllib.loads(block) for block in BLOCKS if block.startswith("# vault/actions/")
]


def test_doc_has_the_format_example_and_one_action_per_built_in() -> None:
    formula = tomllib.loads(BLOCKS[0])
    assert formula["name"] == "publish-site"
    assert {a["formula"] for a in ACTIONS} == {"noop", "http-hook", "git-make"}


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: str(a["formula"]))
def test_doc_action_fits_its_formula(action: dict[str, Any]) -> None:
    formula = load_formula(action["formula"])
    declared = formula.get("params", {})
    assert action["context"]
    assert set(action.get("secrets", [])) == set(
        formula.get("secrets", {}).get("required", [])
    )
    for name, value in action.get("params", {}).items():
        assert re.fullmatch(declared[name]["pattern"], value), name
    for name, spec in declared.items():
        assert name in action.get("params", {}) or not spec.get("required", False)
