"""Every `--json` output of classify, validate, policy, formulas and plan matches docs/json.md.

Each case runs the CLI as the console script does (``opsvault.cli.main``) on a
success or failure path, then checks the one JSON object it printed against
the command's schema in docs/json.md (tests/cli/jsondoc.py), that ``schema``
names the command, and that ``ok`` is true exactly when the exit status is 0.
"""

from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from opsvault._resources import data_dir
from opsvault.cli import main
from opsvault.cli.envelope import _CODES, schema_name
from tests.cli.conftest import branch_with
from tests.cli.jsondoc import ENVELOPE, assert_matches_doc, schemas

SAMPLES = data_dir("examples") / "proposals"
NOOP = (SAMPLES / "noop-smoke-20261121-1.toml").read_bytes()
SMUGGLE = (SAMPLES / "smuggle-secret-20261121-1.toml").read_bytes()
TREE = "## Objective: A\n- [ ] a blocked-on-vault: nowhere-1\nStatus: BLOCKED\n"

MINE = (
    "classify",
    "validate",
    "policy check",
    "policy diff",
    "policy test",
    "formulas",
    "plan",
)


@dataclass(frozen=True)
class Case:
    command: str
    args: tuple[str, ...]
    code: int
    error: str | None = None  # the failure envelope's code, if it is one
    stdin: bytes | None = None


CASES = {
    # classify
    "classify-ok": Case("classify", ("{ops}/vault/actions/noop-smoke-1.toml",), 0),
    "classify-refused": Case("classify", ("{ops}/vault/actions/smuggle-1.toml",), 1),
    "classify-not-an-action": Case("classify", ("{ops}/vault/policy.toml",), 1),
    "classify-stdin": Case("classify", ("--ops", "{ops}", "-"), 0, stdin=NOOP + b'id = "pipe-1"\n'),
    "classify-change": Case("classify", ("--ops", "{ops}", "--base", "main", "--head", "vault/noop-2"), 0),
    "classify-unknown-ref": Case("classify", ("--ops", "{ops}", "--base", "main", "--head", "nope"), 1, "git"),
    "classify-empty-dir": Case("classify", ("{empty}",), 1, "invalid-file"),
    "classify-no-ops-repo": Case("classify", ("{outside}/noop-3.toml",), 78, "config"),
    "classify-usage": Case("classify", ("--base", "main"), 2, "usage"),
    # validate
    "validate-ok": Case("validate", ("{ops}/vault/policy.toml", "{ops}/vault/policy-tests", "{ops}/vault/actions/noop-smoke-1.toml"), 0),
    "validate-invalid": Case("validate", ("{outside}/Bad.toml",), 1),
    "validate-stdin-policy": Case("validate", ("-",), 0, stdin=b"@policy"),
    "validate-empty-dir": Case("validate", ("{empty}",), 1, "invalid-file"),
    "validate-missing-path": Case("validate", ("{outside}/none.toml",), 2, "usage"),
    # policy check
    "policy-check-ok": Case("policy check", ("--ops", "{ops}"), 0),
    "policy-check-errors": Case("policy check", ("--ops", "{broken}"), 1),
    "policy-check-not-ops": Case("policy check", ("--ops", "{empty}"), 78, "config"),
    # policy diff
    "policy-diff-ok": Case("policy diff", ("{ops}/vault/policy.toml", "{outside}/lower.toml", "--ops", "{ops}", "--actions", "{ops}/vault/actions"), 0),
    "policy-diff-invalid-action": Case("policy diff", ("{ops}/vault/policy.toml", "{outside}/lower.toml", "--ops", "{ops}", "--actions", "{outside}"), 1),
    "policy-diff-no-lowering-gate": Case("policy diff", ("{ops}/vault/policy.toml", "{outside}/lower.toml", "--ops", "{ops}", "--fail-on-lowering"), 1),
    "policy-diff-stdin": Case("policy diff", ("-", "{ops}/vault/policy.toml", "--no-history"), 0, stdin=b"@policy"),
    "policy-diff-two-stdin": Case("policy diff", ("-", "-"), 2, "usage"),
    "policy-diff-clean": Case("policy diff", ("{ops}/vault/policy.toml", "{ops}/vault/policy.toml", "--ops", "{ops}"), 0),
    "policy-diff-bad-policy": Case("policy diff", ("{ops}/vault/policy.toml", "{broken}/vault/policy.toml", "--ops", "{ops}"), 78, "invalid-policy"),
    "policy-diff-bad-since": Case("policy diff", ("{ops}/vault/policy.toml", "{ops}/vault/policy.toml", "--since", "soon"), 2, "usage"),
    # policy test
    "policy-test-ok": Case("policy test", ("--ops", "{ops}"), 0),
    "policy-test-none": Case("policy test", ("--ops", "{ops}", "{empty}"), 1),
    "policy-test-malformed": Case("policy test", ("--ops", "{ops}", "{ops}/vault/policy.toml", "{ops}/vault/policy-tests"), 1),
    "policy-test-format-json": Case("policy test", ("--ops", "{ops}", "--format", "json"), 0),
    # formulas
    "formulas-ok": Case("formulas", ("--ops", "{ops}"), 0),
    "formulas-broken": Case("formulas", ("--ops", "{broken}"), 1),
    "formulas-outside": Case("formulas", (), 0),
    "formulas-not-ops": Case("formulas", ("--ops", "{empty}"), 78, "config"),
    # plan
    "plan-ok": Case("plan", ("--ops", "{ops}", "--dry-run", "--today", "2026-05-02"), 0),
    "plan-errors": Case("plan", ("--ops", "{planning}", "--check"), 1),
    "plan-no-file": Case("plan", ("--ops", "{empty}"), 78, "config"),
}  # fmt: skip


@pytest.fixture
def world(ops: Path, tmp_path: Path) -> dict[str, Path]:
    """An ops repo (with actions and a proposal branch), a broken one, and plain dirs."""
    (ops / "vault" / "actions" / "noop-smoke-1.toml").write_bytes(NOOP)
    (ops / "vault" / "actions" / "smuggle-1.toml").write_bytes(SMUGGLE)
    branch_with(ops, "vault/noop-2", {"vault/actions/noop-2.toml": NOOP})
    broken = tmp_path / "broken"
    (broken / "vault" / "formulas").mkdir(parents=True)
    policy = (ops / "vault" / "policy.toml").read_text()
    (broken / "vault" / "policy.toml").write_text(
        policy.replace("schema = 1", "schema = 2")
    )
    (broken / "vault" / "formulas" / "half.toml").write_text('name = "half"\n')
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "noop-3.toml").write_bytes(NOOP)
    (outside / "Bad.toml").write_text('formula = "noop"\ncolour = 1\n')
    (outside / "lower.toml").write_text(
        policy.replace('noop = "low"', 'noop = "low"\nhttp-hook = "low"')
    )
    planning = tmp_path / "planning"
    planning.mkdir()
    (planning / "prerequisites.md").write_text(TREE)
    (tmp_path / "empty").mkdir()
    return {
        "ops": ops,
        "broken": broken,
        "outside": outside,
        "planning": planning,
        "empty": tmp_path / "empty",
    }


@pytest.mark.parametrize("name", sorted(CASES))
def test_json_output_matches_the_documented_schema(
    name: str,
    world: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case = CASES[name]
    monkeypatch.chdir(world["outside"])
    if case.stdin is not None:
        content = case.stdin
        if content == b"@policy":
            content = (world["ops"] / "vault" / "policy.toml").read_bytes()
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(content)))
    args = [a.format(**world) for a in case.args]
    try:
        code = main([*case.command.split(), *args, "--json"]) or 0
    except SystemExit as stopped:
        code = stopped.code
    out = capsys.readouterr().out
    data: Any = json.loads(out)  # exactly one JSON document, nothing else
    assert code == case.code, out
    assert data["schema"] == schema_name(case.command)
    assert data["ok"] is (code == 0)
    if case.error is None:
        assert "error" not in data
    else:
        assert data["error"]["code"] == case.error
        assert data["error"]["exit_code"] == code
    assert_matches_doc(case.command, data)


def test_every_command_of_this_file_has_a_section_and_every_path_a_case() -> None:
    documented = set(schemas())
    assert {f"vault {c}" for c in MINE} <= documented
    for command in MINE:
        cases = [c for c in CASES.values() if c.command == command]
        assert any(c.error is None for c in cases), command
        assert any(c.code != 0 for c in cases), command


def test_the_documented_schemas_are_schemas() -> None:
    for heading, schema in schemas().items():
        Draft202012Validator.check_schema(schema)
        assert schema["$id"].startswith("https://opsvault.invalid/json/"), heading


def test_the_documented_error_codes_are_the_envelope_codes() -> None:
    error = schemas()[ENVELOPE]["$defs"]["failure"]["properties"]["error"]
    assert set(error["properties"]["code"]["enum"]) == {*_CODES.values(), "internal"}


def test_a_drifted_output_is_caught() -> None:
    from tests.cli.jsondoc import problems_against_doc

    good = {"schema": "opsvault.validate/1", "ok": True, "files": []}
    assert problems_against_doc("validate", good)  # minItems: 1
    drifted = {
        "schema": "opsvault.validate/1",
        "ok": True,
        "files": [{"path": "a", "kind": "action", "passed": True}],
    }
    assert problems_against_doc("validate", drifted)
