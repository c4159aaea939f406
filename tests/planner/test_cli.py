from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from opsvault.cli import cli
from opsvault.cli.plan import plan

TREE = (
    "# Prerequisite Tree\r\n"
    "<!-- Last updated: 2026-04-15 -->\r\n"
    "\r\n"
    "## Objective: Publish\r\n"
    "- [x] site builds (#1 — closed)\r\n"
    "- [ ] deploy key (#2) blocked-on-vault (vault/actions/deploy-key.toml)\r\n"
    "- [ ] first publish (#3) blocked-on-vault: publish-1\r\n"
    "- [ ] dns (#4)\r\n"
    "Status: BLOCKED — waits on the vault\r\n"
)


def make_ops(tmp_path: Path, tree: str = TREE) -> Path:
    ops = tmp_path / "ops"
    for name in (
        "vault/fired/2026/04/deploy-key.toml",
        "vault/fired/2026/04/deploy-key.result.json",
        "vault/actions/publish-1.toml",
    ):
        (ops / name).parent.mkdir(parents=True, exist_ok=True)
        (ops / name).write_text("", encoding="utf-8")
    (ops / "prerequisites.md").write_bytes(tree.encode("utf-8"))
    return ops


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(plan, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_plan_updates_the_file_from_the_vault(tmp_path: Path) -> None:
    ops = make_ops(tmp_path)
    code, out = invoke("--ops", str(ops), "--today", "2026-05-02")
    assert code == 0
    assert "note: issue states not checked: no forge configured" in out
    assert (
        "-- [ ] deploy key (#2) blocked-on-vault (vault/actions/deploy-key.toml)\n"
        in out
    )
    assert "+- [ ] deploy key (#2)\n" in out  # CliRunner reads \r\n back as \n
    assert (
        f"{ops}/prerequisites.md:6: cleared blocked-on-vault: vault action 'deploy-key' fired"
        in out
    )
    assert f"wrote {ops}/prerequisites.md (2 change(s))" in out
    text = (ops / "prerequisites.md").read_bytes().decode("utf-8")
    assert text == TREE.replace(
        " blocked-on-vault (vault/actions/deploy-key.toml)", ""
    ).replace("2026-04-15", "2026-05-02")
    code, out = invoke("--ops", str(ops), "--today", "2026-05-03")
    assert (code, out.splitlines()[-1]) == (0, f"{ops}/prerequisites.md is up to date")
    assert (ops / "prerequisites.md").read_bytes().decode("utf-8") == text


def test_dry_run_does_not_write(tmp_path: Path) -> None:
    ops = make_ops(tmp_path)
    code, out = invoke("--ops", str(ops), "--dry-run", "--today", "2026-05-02")
    assert code == 0
    assert "dry run:" in out
    assert (ops / "prerequisites.md").read_bytes().decode("utf-8") == TREE


def test_json_report(tmp_path: Path) -> None:
    ops = make_ops(tmp_path)
    code, out = invoke(
        "--ops", str(ops), "--json", "--dry-run", "--today", "2026-05-02"
    )
    report = json.loads(out)
    assert code == 0
    assert report["issues_checked"] is False
    assert report["written"] is False
    assert [(c["line"], c["kind"]) for c in report["changes"]] == [
        (2, "date"),
        (6, "marker"),
    ]
    assert report["diff"].startswith("--- a/prerequisites.md\n+++ b/prerequisites.md\n")


def test_check_reports_findings_and_fails_on_errors(tmp_path: Path) -> None:
    ops = make_ops(tmp_path, TREE.replace("BLOCKED — waits on the vault", "WIP"))
    code, out = invoke("--ops", str(ops), "--check")
    assert code == 1
    assert f"{ops}/prerequisites.md:9: error: unknown status 'WIP'" in out
    assert (
        f"{ops}/prerequisites.md:6: warning: out of date: cleared blocked-on-vault"
        in out
    )
    assert (ops / "prerequisites.md").read_bytes().decode("utf-8") != TREE


def test_check_passes_with_only_warnings(tmp_path: Path) -> None:
    ops = make_ops(tmp_path)
    code, out = invoke("--ops", str(ops), "--check")
    assert code == 0
    assert out.splitlines()[-1] == "0 error(s), 1 warning(s)"


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(plan, ["--ops", str(tmp_path)])
    assert result.exit_code != 0
    assert "prerequisites.md: no such file; pass --ops DIR" in str(result.exception)


def test_file_without_final_newline_diffs_cleanly(tmp_path: Path) -> None:
    ops = make_ops(tmp_path, "## Objective: A\n- [ ] a blocked-on-vault (deploy-key)")
    code, out = invoke("--ops", str(ops))
    assert code == 0
    assert "+- [ ] a\n\\ No newline at end of file\n" in out
    assert (ops / "prerequisites.md").read_text(
        encoding="utf-8"
    ) == "## Objective: A\n- [ ] a"


def test_plan_finds_the_ops_repo_upward_like_every_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ops = make_ops(tmp_path)
    (ops / "vault" / "policy.toml").write_text("")
    (ops / "knowledge").mkdir()
    monkeypatch.chdir(ops / "knowledge")
    code, out = invoke("--dry-run", "--today", "2026-05-02")
    assert code == 0, out
    assert "dry run: ../prerequisites.md not written (2 change(s))" in out


def test_plan_outside_an_ops_repo_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["plan"])
    assert result.exit_code == 78
    assert "not inside an ops repo" in result.output


def test_plain_plan_shows_findings_and_fails_like_check(tmp_path: Path) -> None:
    ops = make_ops(tmp_path, TREE.replace("BLOCKED — waits on the vault", "WIP"))
    code, out = invoke("--ops", str(ops), "--today", "2026-05-02")
    assert code == 1
    assert f"{ops}/prerequisites.md:9: error: unknown status 'WIP'" in out
    assert "out of date" not in out  # what the update fixes is the diff
    assert out.splitlines()[-1] == "1 error(s) above need a person"
    code, out = invoke("--ops", str(ops), "--today", "2026-05-02")
    assert (code, out.splitlines()[-1]) == (
        1,
        f"{ops}/prerequisites.md: nothing to update, but 1 error(s) above need a person",
    )
    code, out = invoke("--ops", str(ops), "--json")
    report = json.loads(out)
    assert (code, report["ok"], report["errors"]) == (1, False, 1)
