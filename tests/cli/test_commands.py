from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from opsvault._resources import data_dir
from opsvault.cli import COMMANDS, cli

SAMPLES = data_dir("examples") / "proposals"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_help_lists_every_command() -> None:
    code, out = run("--help")
    assert code == 0
    for name in (
        "validate",
        "classify",
        "request",
        "formulas",
        "policy",
        "init",
        "demo",
    ):
        assert name in out


@pytest.mark.parametrize("width", [40, 80, 120, 300])
def test_help_lists_each_command_as_click_would_from_the_command_itself(
    width: int,
) -> None:
    """`vault --help` lists COMMANDS' summaries, never importing a command; they must
    read exactly as click's own listing of the imported commands would."""
    ours, clicks = (
        click.Context(cli, terminal_width=width).make_formatter() for _ in range(2)
    )
    ctx = click.Context(cli, terminal_width=width)
    cli.format_commands(ctx, ours)
    click.Group.format_commands(cli, ctx, clicks)
    assert ours.getvalue() == clicks.getvalue()
    assert sorted(COMMANDS) == cli.list_commands(ctx)
    for name, (target, summary) in COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None, target
        assert (command.help or "").startswith(summary), name


def test_classify_samples_with_reasons(ops: Path) -> None:
    code, out = run("classify", "--ops", str(ops), "--json", str(SAMPLES))
    assert code == 1  # one sample is refused on purpose
    results = {Path(r["path"]).stem: r for r in json.loads(out)["files"]}
    assert results["noop-smoke-20261121-1"]["tier"] == "low"
    assert results["deploy-docs-20261121-1"]["tier"] == "medium"
    assert results["purge-cache-20261121-1"]["tier"] == "high"
    assert results["rotate-dns-key-20261121-1"]["tier"] == "high"
    assert results["lower-itself-20261121-1"]["tier"] == "medium"
    assert results["smuggle-secret-20261121-1"]["valid"] is False


def test_classify_explain_prints_reasons(ops: Path) -> None:
    code, out = run(
        "classify",
        "--ops",
        str(ops),
        "--explain",
        str(SAMPLES / "purge-cache-20261121-1.toml"),
    )
    assert code == 0
    assert "high: rule 'destructive-hook' matches" in out


def test_validate_reports_every_problem_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "Bad.toml"
    bad.write_text('formula = "noop"\ncolour = 1\n')
    code, out = run("validate", str(bad))
    assert code == 1
    assert "$.colour: unknown key" in out
    assert "$.context: required key is missing" in out
    assert "not a valid action id" in out


def test_validate_checks_against_ops_repo(ops: Path) -> None:
    target = ops / "vault" / "actions" / "smuggle-1.toml"
    target.write_bytes((SAMPLES / "smuggle-secret-20261121-1.toml").read_bytes())
    code, out = run("validate", "--json", str(target))
    assert code == 1
    data = json.loads(out)
    assert data["files"][0]["path"] == "vault/actions/smuggle-1.toml"
    assert {p["path"] for p in data["files"][0]["problems"]} == {
        "$.params.host",
        "$.secrets[0]",
    }


def test_policy_check_on_template_is_clean(ops: Path) -> None:
    assert run("policy", "check", "--ops", str(ops)) == (
        0,
        "0 error(s), 0 warning(s)\n",
    )


def test_policy_check_finds_dead_rules_and_missing_formulas(ops: Path) -> None:
    policy = ops / "vault" / "policy.toml"
    text = policy.read_text().replace('noop = "low"', 'noop = "low"\nghost = "low"')
    text += '\n[[rules]]\nname = "dead"\ntier = "high"\nwhen = { params = { env = "production" } }\n'
    policy.write_text(text)
    code, out = run("policy", "check", "--ops", str(ops), "--json")
    assert code == 1
    messages = [f["message"] for f in json.loads(out)["findings"]]
    assert any("no formula 'ghost' exists" in m for m in messages)
    assert any("rule 'dead' can never match" in m for m in messages)


def test_policy_check_bad_policy_exit_1_with_locations(ops: Path) -> None:
    (ops / "vault" / "policy.toml").write_text('schema = 1\ndefault_tier = "low"\n')
    code, out = run("policy", "check", "--ops", str(ops))
    assert code == 1
    assert "$.default_tier" in out and "$.tiers: required key is missing" in out


def test_policy_diff_flags_lowerings(ops: Path, tmp_path: Path) -> None:
    old = ops / "vault" / "policy.toml"
    new = tmp_path / "new.toml"
    new.write_text(
        old.read_text().replace('noop = "low"', 'noop = "low"\nhttp-hook = "low"')
    )
    code, out = run(
        "policy",
        "diff",
        str(old),
        str(new),
        "--ops",
        str(ops),
        "--actions",
        str(SAMPLES.parent / "proposals"),
        "--json",
        "--fail-on-lowering",
    )
    # smuggle-secret is refused but still parses; diff only needs the actions' form.
    data = json.loads(out)
    subjects = {c["subject"]: c for c in data["changes"]}
    assert subjects["formula:http-hook"] == {
        "subject": "formula:http-hook",
        "old": "medium",
        "new": "low",
        "lowered": True,
        "note": "",
    }
    assert subjects["action:deploy-docs-20261121-1"]["lowered"] is True
    assert "action:purge-cache-20261121-1" not in subjects  # the rule keeps it high
    assert code == 1


def test_policy_test_runs_template_cases(ops: Path) -> None:
    code, out = run("policy", "test", "--ops", str(ops))
    assert code == 0, out
    assert "4 passed, 0 failed" in out


def test_policy_test_fails_on_wrong_expectation(ops: Path) -> None:
    case = ops / "vault" / "policy-tests" / "noop-is-low.toml"
    case.write_text(case.read_text().replace('tier = "low"', 'tier = "medium"'))
    code, out = run("policy", "test", "--ops", str(ops))
    assert code == 1
    assert "tier: expected medium, got low" in out


def test_request_writes_a_valid_action_with_fresh_id(ops: Path) -> None:
    args = (
        "request",
        "http-hook",
        "--ops",
        str(ops),
        "--param",
        "url=https://deploy.example.org/x",
        "--context",
        "deploy",
        "--secret",
        "HOOK_TOKEN",
        "--json",
    )
    code, out = run(*args)
    assert code == 0, out
    first = json.loads(out)
    assert first["tier"] == "medium"
    assert (ops / first["path"]).is_file()
    code, out = run(*args)
    second = json.loads(out)
    assert second["id"] != first["id"]
    assert run("validate", str(ops / first["path"]))[0] == 0


def test_request_refuses_invalid_and_writes_nothing(ops: Path) -> None:
    before = sorted((ops / "vault" / "actions").iterdir())
    code, out = run(
        "request",
        "noop",
        "--ops",
        str(ops),
        "--param",
        "message=bad$",
        "--context",
        "x",
    )
    assert code == 1
    assert "$.params.message" in out
    assert sorted((ops / "vault" / "actions").iterdir()) == before


def test_request_unknown_formula_is_usage_error(ops: Path) -> None:
    code, out = run("request", "nope", "--ops", str(ops), "--context", "x")
    assert code == 2
    assert "unknown formula 'nope'" in out


def test_formulas_lists_builtins() -> None:
    code, out = run("formulas", "--json")
    assert code == 0
    names = {f["name"] for f in json.loads(out)["formulas"]}
    assert {"noop", "http-hook", "git-make"} <= names


def test_not_an_ops_repo_is_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["policy", "check"])
    assert result.exit_code == 78
