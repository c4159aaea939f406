from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from opsvault.cli import cli
from opsvault.cli.init import create_ops_repo
from opsvault.dispatcher.reasons import ReasonCode
from opsvault.dispatcher.records import (
    Outcome,
    ResultRecord,
    archive_paths,
    render_record,
)
from opsvault.git.base import Identity
from opsvault.git.pygit2_repo import Pygit2OpsRepo
from opsvault.layout import claim_path, running_path

WHO = Identity("t", "t@example.invalid")
NOOP = b'formula = "noop"\ncontext = "smoke test"\n'
HOOK = (
    b'formula = "http-hook"\ncontext = "deploy"\nsecrets = ["HOOK_TOKEN"]\n'
    b'[params]\nurl = "https://deploy.example/hook"\n'
)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def commit_on(repo: Pygit2OpsRepo, branch: str, files: dict[str, bytes]) -> str:
    """Commit *files* on *branch* (created off main when missing); return the commit."""
    ref = f"refs/heads/{branch}"
    old = repo.branches().get(branch)
    parent = old or repo.resolve("main")
    commit = repo.commit_files(parent, files, f"update {branch}", WHO, when=0)
    repo.update_ref(ref, commit, old)
    return commit


@pytest.fixture
def ops(tmp_path: Path) -> Path:
    root = tmp_path / "ops"
    create_ops_repo(root)
    repo = Pygit2OpsRepo.open(root)
    when = datetime(2026, 3, 1, tzinfo=UTC)
    action, result = archive_paths(Outcome.SUCCEEDED, "done-1", when)
    record = ResultRecord(
        "done-1",
        Outcome.SUCCEEDED,
        ReasonCode.OK,
        tier="low",
        approver="opsvault",
        ended_at=when.isoformat(),
    )
    claim = {
        "dispatcher": "host-a",
        "claimed_at": "2026-03-10T11:00:00Z",
        "deadline": "2000-01-01T00:00:00Z",
    }
    commit_on(
        repo,
        "main",
        {
            "vault/actions/noop-20260310-1.toml": NOOP,
            running_path("run-1"): NOOP,
            claim_path("run-1"): json.dumps(claim).encode(),
            action: NOOP,
            result: render_record(record),
        },
    )
    commit_on(repo, "vault/hook-1", {"vault/actions/hook-1.toml": HOOK})
    merged = commit_on(repo, "vault/merged-1", {"knowledge/x.md": b"x\n"})
    repo.update_ref(
        "refs/heads/main",
        repo.merge(repo.resolve("main"), merged, "merge", WHO, when=0),
        repo.resolve("main"),
    )
    return root


def test_status_reads_main_and_lists_proposals_as_json(ops: Path) -> None:
    (ops / "vault" / "HALT").write_text("worktree only\n")
    code, out = run("status", "--ops", str(ops), "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["halted"] is False  # HALT is only in the working tree, not on main
    assert [(w["id"], w["tier"], w["refused"]) for w in data["waiting"]] == [
        ("noop-20260310-1", "low", False)
    ]
    (running,) = data["running"]
    assert (running["id"], running["dispatcher"], running["stale"]) == (
        "run-1",
        "host-a",
        True,
    )
    assert [(r["id"], r["outcome"], r["approver"]) for r in data["recent"]] == [
        ("done-1", "succeeded", "opsvault")
    ]
    assert [(p["branch"], p["tier"], p["action_ids"]) for p in data["proposals"]] == [
        ("vault/hook-1", "medium", ["hook-1"])
    ]


def test_worktree_flag_reads_the_files_on_disk(ops: Path) -> None:
    (ops / "vault" / "HALT").write_text("incident 7\n")
    code, out = run("status", "--ops", str(ops), "--worktree")
    assert code == 0, out
    assert "HALTED (vault/HALT exists): incident 7" in out
    assert "pending proposals" not in out


def test_text_output_names_every_section(ops: Path) -> None:
    code, out = run("status", "--ops", str(ops))
    assert code == 0, out
    assert "running normally" in out
    assert "noop-20260310-1  low  noop  'smoke test'" in out
    assert "run-1  by host-a" in out and "STALE" in out
    assert "done-1  succeeded (ok)  tier low  approver opsvault" in out
    assert "vault/hook-1  medium  actions: hook-1" in out
    assert "merged-1" not in out


def test_ref_reads_another_commit(ops: Path) -> None:
    code, out = run("status", "--ops", str(ops), "--ref", "main~1", "--json")
    assert code == 0, out
    assert json.loads(out)["waiting"][0]["id"] == "noop-20260310-1"
    code, out = run("status", "--ops", str(ops), "--ref", "nope", "--json")
    assert code == 1
    assert "nope" in out


def test_ref_and_worktree_are_exclusive(ops: Path) -> None:
    code, out = run("status", "--ops", str(ops), "--ref", "main", "--worktree")
    assert code == 2
    assert "--ref or --worktree" in out


def test_plain_directory_is_read_as_is(tmp_path: Path) -> None:
    from opsvault.cli.init import template_files

    root = tmp_path / "plain"
    for path, content in template_files().items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(content)
    code, out = run("status", "--ops", str(root), "--json")
    assert code == 0, out
    assert json.loads(out)["proposals"] == []
    code, out = run("status", "--ops", str(root), "--ref", "main")
    assert code == 2
