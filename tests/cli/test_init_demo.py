from __future__ import annotations

import json
from pathlib import Path

import pygit2
from click.testing import CliRunner

from opsvault.cli import cli


def test_init_creates_clean_git_repo_from_template(tmp_path: Path) -> None:
    target = tmp_path / "ops"
    result = CliRunner().invoke(cli, ["init", str(target), "--json"])
    assert result.exit_code == 0, result.output
    repo = pygit2.Repository(str(target))
    assert repo.head.shorthand == "main"
    assert repo.status() == {}  # index and work tree match the commit
    assert (target / "vault" / "policy.toml").is_file()
    assert (target / "vault" / "actions" / ".gitkeep").is_file()
    assert (
        CliRunner().invoke(cli, ["policy", "check", "--ops", str(target)]).exit_code
        == 0
    )


def test_init_refuses_non_empty_dir_without_force(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["init", str(tmp_path)])
    assert result.exit_code == 78
    assert "is not empty" in result.output


def test_init_force_keeps_existing_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["init", str(tmp_path), "--force"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_init_force_refuses_to_overwrite(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("mine")
    result = CliRunner().invoke(cli, ["init", str(tmp_path), "--force"])
    assert result.exit_code == 78
    assert "would overwrite 'README.md'" in result.output
    assert (tmp_path / "README.md").read_text() == "mine"
    assert not (tmp_path / ".git").exists()


def test_demo_shows_all_three_tiers_with_reasons(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["demo", "--dir", str(tmp_path / "demo"), "--once", "--json"]
    )
    assert result.exit_code == 0, result.output
    proposals = {p["proposal"]: p for p in json.loads(result.output)["proposals"]}
    tiers = {p["tier"] for p in proposals.values() if not p["refused"]}
    assert tiers == {"low", "medium", "high"}
    assert proposals["smuggle-secret-20261121-1"]["refused"] is True
    assert all(f["reasons"] for p in proposals.values() for f in p["files"])
    repo = pygit2.Repository(str(tmp_path / "demo" / "ops"))
    pending = {
        name for name, p in proposals.items() if p["tier"] != "low" or p["refused"]
    }
    assert set(repo.branches.local) >= {f"vault/{name}" for name in pending}
    # the demo ran the real dispatcher: the low-tier proposal was merged and fired
    (tick,) = json.loads(result.output)["ticks"]
    events = {(d["subject"], d["event"]) for d in tick["decisions"]}
    assert ("action:noop-smoke-20261121-1", "succeeded") in events
    assert tick["commits"] == 2


def test_demo_text_output(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["demo", "--dir", str(tmp_path / "demo"), "--once"]
    )
    assert result.exit_code == 0
    assert "proposal vault/noop-smoke-20261121-1: LOW" in result.output
    assert "REFUSED" in result.output
    assert "vault approve rotate-dns-key-20261121-1" in result.output
    # a second run reuses the demo repo and its proposals
    again = CliRunner().invoke(cli, ["demo", "--dir", str(tmp_path / "demo"), "--once"])
    assert again.exit_code == 0
    assert "(reused;" in again.output
