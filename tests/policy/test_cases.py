"""Golden classifier cases: one TOML per case under cases/<policy>/, run by one test.

``cases/template/*`` use the policy shipped in ops-template; ``cases/<name>/*``
use ``policies/<name>.toml``. Formulas are the built-in ones.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from opsvault._resources import data_dir
from opsvault.policy.cases import parse_case, run_case
from opsvault.policy.classify import BaseState
from opsvault.policy.parse import parse_policy
from opsvault.snapshot import load_builtin_formulas

HERE = Path(__file__).parent
CASES = sorted((HERE / "cases").glob("*/*.toml"))


def _policy_text(name: str) -> bytes:
    if name == "template":
        return (data_dir("ops-template") / "vault" / "policy.toml").read_bytes()
    return (HERE / "policies" / f"{name}.toml").read_bytes()


@pytest.mark.parametrize(
    "path", CASES, ids=[f"{p.parent.name}/{p.stem}" for p in CASES]
)
def test_golden_case(path: Path) -> None:
    policy = parse_policy(_policy_text(path.parent.name))
    base = BaseState(policy, load_builtin_formulas(), frozenset({"noop-smoke-1"}))
    result = run_case(parse_case(path.read_bytes(), path.name), base)
    assert result.passed, result.failures


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 15
