"""`vault formulas`: broken formulas are errors, tiers are effective, params shown (issue 12)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from opsvault.cli import cli


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_a_formula_that_does_not_parse_is_an_error(ops: Path) -> None:
    (ops / "vault" / "formulas" / "broken.toml").write_text('name = "broken"\n')
    code, out = run("formulas", "--ops", str(ops))
    assert code == 1
    assert "error: vault/formulas/broken.toml: $.steps: required key is missing" in out
    code, out = run("formulas", "--ops", str(ops), "--json")
    data = json.loads(out)
    assert (code, data["ok"]) == (1, False)
    broken = next(f for f in data["formulas"] if f["name"] == "broken")
    assert broken["valid"] is False and broken["tier"] is None
    assert {p["path"] for p in broken["problems"]} == {"$.description", "$.steps"}


def test_the_tier_shown_is_the_effective_one_under_the_policy(ops: Path) -> None:
    policy = ops / "vault" / "policy.toml"
    policy.write_text(policy.read_text().replace('noop = "low"', 'noop = "medium"'))
    code, out = run("formulas", "--ops", str(ops), "--json")
    assert code == 0
    noop = next(f for f in json.loads(out)["formulas"] if f["name"] == "noop")
    assert (noop["tier"], noop["blast_radius"]) == ("medium", "low")
    assert noop["tier_reason"] == "policy [formulas] sets 'noop' to medium"
    code, out = run("formulas", "--ops", str(ops))
    assert "noop: medium (built-in; own blast_radius low): " in out


def test_params_are_shown_in_text_too(ops: Path) -> None:
    code, out = run("formulas", "--ops", str(ops))
    assert code == 0
    assert "  param url (string, required, pattern " in out
    assert "  param method (string, optional, default 'POST', pattern " in out
    assert "  secrets: HOOK_TOKEN" in out


def test_an_invalid_policy_leaves_tiers_unknown_and_fails(ops: Path) -> None:
    policy = ops / "vault" / "policy.toml"
    policy.write_text(policy.read_text().replace("schema = 1", "schema = 3"))
    code, out = run("formulas", "--ops", str(ops), "--json")
    data = json.loads(out)
    assert (code, data["ok"], data["policy"]["valid"]) == (1, False, False)
    assert {f["tier"] for f in data["formulas"]} == {None}


def test_outside_an_ops_repo_only_built_ins_without_tiers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out = run("formulas")
    assert code == 0
    assert out.splitlines()[0].startswith("no ops repo here")
