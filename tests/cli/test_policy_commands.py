"""`vault policy check` and `vault policy diff` tell the whole truth (issue 12)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pygit2
from click.testing import CliRunner

from opsvault._resources import data_dir
from opsvault.cli import cli
from tests.cli.conftest import template_files
from tests.conftest import init_repo

SAMPLES = data_dir("examples") / "proposals"
HOOK = (SAMPLES / "deploy-docs-20261121-1.toml").read_bytes()
DELETE_HOOK = (SAMPLES / "purge-cache-20261121-1.toml").read_bytes()


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def run_json(*args: str) -> tuple[int, dict[str, Any]]:
    code, out = run(*args, "--json")
    data = json.loads(out)
    assert isinstance(data, dict)
    return code, data


def test_policy_check_reports_every_problem_in_one_run(ops: Path) -> None:
    policy = ops / "vault" / "policy.toml"
    policy.write_text(
        policy.read_text()
        .replace('default_tier = "high"', 'default_tier = "low"')
        .replace('merge = "reviewer"', 'merge = "auto"')
        .replace('noop = "low"', 'noop = "low"\nghost = "low"')
        + '\n[[rules]]\nname = "dead"\ntier = "high"\n'
        'when = { params = { env = "production" } }\n'
    )
    (ops / "vault" / "formulas" / "broken.toml").write_text('name = "broken"\n')
    code, data = run_json("policy", "check", "--ops", str(ops))
    assert (code, data["ok"]) == (1, False)
    found = {(f["file"], f["path"]) for f in data["findings"]}
    assert found == {
        ("vault/policy.toml", "$.default_tier"),  # schema
        ("vault/policy.toml", "$.tiers.medium.merge"),  # beyond the schema
        ("vault/policy.toml", "$.formulas['ghost']"),  # lint
        ("vault/policy.toml", "$.rules[1]"),  # lint: can never match
        ("vault/formulas/broken.toml", "$.description"),
        ("vault/formulas/broken.toml", "$.steps"),
    }
    assert data["errors"] == 6 and data["warnings"] == 0


def test_policy_check_text_ends_with_the_counts(ops: Path) -> None:
    policy = ops / "vault" / "policy.toml"
    policy.write_text(policy.read_text().replace("schema = 1", "schema = 2"))
    code, out = run("policy", "check", "--ops", str(ops))
    assert code == 1
    assert out.splitlines() == [
        "error: vault/policy.toml: $.schema: 1 was expected",
        "1 error(s), 0 warning(s)",
    ]


def _history_repo(tmp_path: Path) -> Path:
    month = f"{datetime.now(UTC):%Y/%m}"
    files: dict[str, str | bytes] = {
        **template_files(),
        f"vault/fired/{month}/deploy-recent-1.toml": HOOK,
        f"vault/fired/{month}/deploy-recent-1.result.json": b"{}",
        f"vault/rejected/{month}/purge-recent-1.toml": DELETE_HOOK,
        f"vault/rejected/{month}/pr-7/Not-An-Id.toml": b"junk = 1\n",
        "vault/fired/2020/01/deploy-ancient-1.toml": HOOK,
    }
    init_repo(tmp_path / "ops", files)
    return tmp_path / "ops"


def _lowering_policy(ops: Path, tmp_path: Path) -> Path:
    new = tmp_path / "new-policy.toml"
    text = (ops / "vault" / "policy.toml").read_text()
    new.write_text(
        text.replace('noop = "low"', 'noop = "low"\nhttp-hook = "low"').replace(
            'name = "destructive-hook"', 'name = "destructive-call"'
        )
    )
    return new


def test_policy_diff_replays_recent_history_on_the_base_branch(tmp_path: Path) -> None:
    ops = _history_repo(tmp_path)
    # In the work tree only: history is read from main, so this is not replayed.
    month = f"{datetime.now(UTC):%Y/%m}"
    (ops / "vault" / "fired" / month / "deploy-uncommitted-1.toml").write_bytes(HOOK)
    new = _lowering_policy(ops, tmp_path)
    code, data = run_json(
        "policy",
        "diff",
        str(ops / "vault" / "policy.toml"),
        str(new),
        "--ops",
        str(ops),
    )
    assert (code, data["ok"]) == (0, True)
    subjects = {c["subject"]: c for c in data["changes"]}
    assert subjects["action:deploy-recent-1"]["lowered"] is True
    assert "action:purge-recent-1" not in subjects  # the renamed rule keeps it high
    assert "action:deploy-ancient-1" not in subjects  # older than --since
    assert "action:deploy-uncommitted-1" not in subjects
    fired, rejected = data["replayed"]
    assert (fired["actions"], fired["skipped"]) == (1, 0)
    assert (rejected["actions"], rejected["skipped"]) == (1, 1)
    assert fired["base"] == rejected["base"] and len(fired["base"]) == 40


def test_policy_diff_shows_rule_changes_without_any_action(tmp_path: Path) -> None:
    ops = _history_repo(tmp_path)
    new = _lowering_policy(ops, tmp_path)
    code, out = run(
        "policy",
        "diff",
        str(ops / "vault" / "policy.toml"),
        str(new),
        "--ops",
        str(ops),
        "--no-history",
        "--fail-on-lowering",
    )
    assert code == 1
    assert "rule:destructive-hook: high -> - (removed)  LOWERED" in out
    assert "rule:destructive-call: - -> high (added)" in out
    assert "replayed" not in out


def test_a_narrowed_rule_counts_as_a_lowering(ops: Path, tmp_path: Path) -> None:
    old = ops / "vault" / "policy.toml"
    new = tmp_path / "new.toml"
    new.write_text(old.read_text().replace('method = "DELETE"', 'method = "PURGE"'))
    code, data = run_json("policy", "diff", str(old), str(new), "--ops", str(ops))
    assert code == 0  # reported; failing on it is --fail-on-lowering's job
    (change,) = data["changes"]
    assert change == {
        "subject": "rule:destructive-hook",
        "old": "high",
        "new": "high",
        "lowered": True,
        "note": "condition changed",
    }


def test_policy_diff_actions_dir_names_each_bad_file_and_goes_on(
    ops: Path, tmp_path: Path
) -> None:
    proposals = tmp_path / "proposals"
    (proposals / "deeper").mkdir(parents=True)
    (proposals / "deeper" / "deploy-deep-1.toml").write_bytes(HOOK)
    (proposals / "bad-one-1.toml").write_text('formula = "noop"\ncolour = 1\n')
    (proposals / "bad-two-1.toml").write_text("not toml [")
    new = _lowering_policy(ops, tmp_path)
    code, data = run_json(
        "policy",
        "diff",
        str(ops / "vault" / "policy.toml"),
        str(new),
        "--ops",
        str(ops),
        "--actions",
        str(proposals),
    )
    assert (code, data["ok"]) == (1, False)
    assert [i["path"] for i in data["invalid"]] == [
        f"{proposals}/bad-one-1.toml",
        f"{proposals}/bad-two-1.toml",
    ]
    # The subdirectory's action is replayed, after the bad files.
    assert "action:deploy-deep-1" in {c["subject"] for c in data["changes"]}
    code, out = run(
        "policy", "diff", str(ops / "vault" / "policy.toml"), str(new),
        "--ops", str(ops), "--actions", str(proposals), "--no-history",
    )  # fmt: skip
    assert f"error: {proposals}/bad-one-1.toml: $.colour: unknown key" in out


def test_history_without_the_base_branch_says_how_to_go_on(tmp_path: Path) -> None:
    ops = _history_repo(tmp_path)
    repo = pygit2.Repository(str(ops))
    repo.branches["main"].rename("trunk")
    repo.set_head("refs/heads/trunk")
    policy = str(ops / "vault" / "policy.toml")
    code, data = run_json("policy", "diff", policy, policy, "--ops", str(ops))
    assert (code, data["error"]["code"]) == (1, "git")
    assert "git config opsvault.branch" in data["error"]["message"]
    code, _ = run_json(
        "policy", "diff", policy, policy, "--ops", str(ops), "--no-history"
    )
    assert code == 0
    repo.config["opsvault.branch"] = "trunk"
    code, data = run_json("policy", "diff", policy, policy, "--ops", str(ops))
    assert code == 0
    assert "vault/fired/ on trunk since " in data["replayed"][0]["from"]
