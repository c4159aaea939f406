"""`vault doctor`: the guard self-check on demand, a fix for each finding (ADR 0018)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from click.testing import CliRunner

from opsvault.cli import cli
from opsvault.cli.init import create_ops_repo
from tests.cli.jsondoc import assert_matches_doc
from tests.dispatcher.harness import REPO, make_harness


def _ops(tmp_path: Path) -> Path:
    ops = tmp_path / "ops"
    create_ops_repo(ops, when=0)
    return ops


def test_a_fresh_ops_repo_passes(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["doctor", "--ops", str(_ops(tmp_path))])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: the local guard holds")


def test_a_removed_hook_is_reported_with_its_fix_and_install_hook_repairs_it(
    tmp_path: Path,
) -> None:
    ops = _ops(tmp_path)
    (ops / ".git" / "hooks" / "pre-receive").unlink()
    result = CliRunner().invoke(cli, ["doctor", "--ops", str(ops)])
    assert result.exit_code == 1
    assert "DRIFT local-hook:" in result.output
    assert f"fix: run `vault doctor --install-hook --ops {ops}`" in result.output
    repaired = CliRunner().invoke(cli, ["doctor", "--ops", str(ops), "--install-hook"])
    assert repaired.exit_code == 0, repaired.output
    assert "ok: the local guard holds" in repaired.output


def test_json_is_the_envelope_with_every_finding(tmp_path: Path) -> None:
    ops = _ops(tmp_path)
    (ops / ".git" / "hooks" / "pre-receive").chmod(0o644)
    result = CliRunner().invoke(cli, ["doctor", "--ops", str(ops), "--json"])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert_matches_doc("doctor", data)
    assert data["schema"] == "opsvault.doctor/1" and data["ok"] is False
    assert data["mode"] == "local" and data["drift"] is True
    assert [f["check"] for f in data["findings"]] == ["local-hook"]
    assert "not executable" in data["findings"][0]["problem"]
    assert data["findings"][0]["fix"]


def test_not_an_ops_repo_is_a_clear_error_in_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["doctor", "--ops", str(tmp_path), "--json"])
    assert result.exit_code == 78
    data = json.loads(result.output)
    assert_matches_doc("doctor", data)
    assert data["ok"] is False and data["error"]["code"] == "config"


def test_forgejo_with_a_loosened_rule(tmp_path: Path) -> None:
    vault = make_harness(tmp_path)
    try:
        config = tmp_path / "dispatcher.toml"
        config.write_text(
            f'[forge]\nkind = "forgejo"\nurl = "{vault.forge.url}"\nrepo = "{REPO}"\n'
            '[dispatcher]\nidentity = "vault-bot"\nguard_required_approvals = 1\n'
        )
        env = {"OPSVAULT_FORGE_TOKEN": vault.tokens["vault-bot"]}
        args = ["doctor", "--config", str(config), "--json"]
        result = CliRunner().invoke(cli, args, env=env)
        data = json.loads(result.output)
        # the documented rule has no required approvals: below the configured 1
        assert [f["check"] for f in data["findings"]] == ["required-approvals"]
        httpx.patch(
            f"{vault.forge.api_url}/repos/{REPO}/branch_protections/main",
            # deploy keys are read only with enable_push and its whitelist (as Forgejo)
            json={
                "enable_push": True,
                "enable_push_whitelist": True,
                "push_whitelist_deploy_keys": True,
                "required_approvals": 1,
            },
            headers={"Authorization": f"token {vault.tokens['alice']}"},
        ).raise_for_status()
        result = CliRunner().invoke(cli, args, env=env)
        data = json.loads(result.output)
        assert_matches_doc("doctor", data)
        assert result.exit_code == 1 and data["mode"] == "forgejo"
        assert [f["check"] for f in data["findings"]] == ["push-whitelist"]
        assert "deploy keys" in data["findings"][0]["problem"]
    finally:
        vault.close()
