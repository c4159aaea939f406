"""Build ExecutionRequests straight from the built-in formula files (tomllib only).

The formula parser owns validation; these tests only need the steps, the
declared secrets and the params with their defaults applied.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from opsvault._resources import data_dir
from opsvault.messages import ExecutionRequest, StepSpec

FormulaRequest = Callable[[str, Mapping[str, str]], ExecutionRequest]


def load_formula(name: str) -> dict[str, Any]:
    path = Path(data_dir("formulas")) / f"{name}.toml"
    return tomllib.loads(path.read_text(encoding="utf-8"))


def formula_request_for(name: str, params: Mapping[str, str]) -> ExecutionRequest:
    data = load_formula(name)
    declared = data.get("params", {})
    values = {k: str(v["default"]) for k, v in declared.items() if "default" in v}
    values |= params
    assert set(values) <= set(declared), "undeclared params"
    return ExecutionRequest(
        action_id=f"{name}-test-1",
        formula=name,
        steps=tuple(StepSpec(s["name"], tuple(s["run"])) for s in data["steps"]),
        params=tuple(sorted(values.items())),
        list_params=(),
        secrets=tuple(data.get("secrets", {}).get("required", [])),
        timeout_seconds=20.0,
    )
