from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from opsvault.cli import cli
from tests.cli.conftest import branch_with

HOOK = b'formula = "http-hook"\ncontext = "deploy"\nsecrets = ["HOOK_TOKEN"]\n[params]\nurl = "https://deploy.example.org/x"\n'


def classify(ops: Path, head: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(
        cli, ["classify", "--ops", str(ops), "--base", "main", "--head", head, "--json"]
    )
    return result.exit_code, json.loads(result.output)


def test_action_with_policy_edit_is_high_and_judged_by_base_policy(ops: Path) -> None:
    lowered = (
        (ops / "vault" / "policy.toml")
        .read_text()
        .replace("[formulas]\n", '[formulas]\nhttp-hook = "low"\n')
    )
    branch_with(
        ops,
        "vault/sneaky-1",
        {"vault/policy.toml": lowered.encode(), "vault/actions/sneaky-1.toml": HOOK},
    )
    code, data = classify(ops, "vault/sneaky-1")
    assert code == 0
    assert data["tier"] == "high"
    assert data["protected"] is True
    action = next(
        f for f in data["files"] if f["path"] == "vault/actions/sneaky-1.toml"
    )
    # The head's policy says low; the base's says nothing, so the formula's own medium applies.
    assert action["tier"] == "medium"
    assert (
        action["reasons"][0]["detail"] == "formula 'http-hook' has blast_radius medium"
    )


def test_new_action_alone_is_classified_by_content(ops: Path) -> None:
    branch_with(ops, "vault/deploy-1", {"vault/actions/deploy-1.toml": HOOK})
    code, data = classify(ops, "vault/deploy-1")
    assert (code, data["tier"], data["refused"], data["protected"]) == (
        0,
        "medium",
        False,
        False,
    )


def test_modifying_or_deleting_an_existing_action_is_high(ops: Path) -> None:
    branch_with(ops, "base-action", {"vault/actions/deploy-1.toml": HOOK})
    # put the action on main first
    import pygit2

    repo = pygit2.Repository(str(ops))
    repo.references["refs/heads/main"].set_target(repo.branches["base-action"].target)
    branch_with(
        ops,
        "edit",
        {"vault/actions/deploy-1.toml": HOOK.replace(b'deploy"', b'changed"')},
    )
    branch_with(ops, "delete", {"vault/actions/deploy-1.toml": None})
    for head in ("edit", "delete"):
        _code, data = classify(ops, head)
        assert data["tier"] == "high", head
        assert data["protected"] is True


def test_invalid_action_in_change_exits_1_with_problems(ops: Path) -> None:
    branch_with(ops, "bad", {"vault/actions/Bad.toml": HOOK})
    code, data = classify(ops, "bad")
    assert code == 1
    assert data["refused"] is True
    assert "not a valid action id" in data["files"][0]["problems"][0]["message"]


def test_base_and_head_go_together(ops: Path) -> None:
    result = CliRunner().invoke(cli, ["classify", "--ops", str(ops), "--base", "main"])
    assert result.exit_code == 2


def test_paths_with_control_characters_are_refused_and_escaped(ops: Path) -> None:
    branch_with(ops, "odd", {"notes/a\x1b[2Jb.md": b"x\n"})
    result = CliRunner().invoke(
        cli, ["classify", "--ops", str(ops), "--base", "main", "--head", "odd"]
    )
    assert result.exit_code == 1
    assert "\x1b" not in result.output
    assert "control characters" in result.output
