"""Security invariant I4: no write follows a link or leaves the repo.

Each test builds the attack for real: git objects with mode 120000 (symlink)
or 160000 (gitlink) pushed as a proposal, a real dispatcher tick (local mode,
and the fake Forgejo where the mode applies), `vault approve` by an admin, and
a temporary "home" outside the repo whose dotfiles must stay untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import pygit2
import pytest
from click.testing import CliRunner

from opsvault.app import build_app
from opsvault.changes import classify_ref_change
from opsvault.cli import cli
from opsvault.cli.init import create_ops_repo
from opsvault.config import load_settings
from opsvault.dispatcher.tick import tick
from opsvault.git.pygit2_repo import Pygit2OpsRepo
from opsvault.policy.change import ChangeKind
from opsvault.vault.tier import Tier
from tests.dispatcher.harness import REPO, Harness

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
FILE, EXEC = 0o100644, 0o100755
SYMLINK_MODE, GITLINK_MODE = 0o120000, 0o160000  # git's modes, spelled out
HOOK = b"#!/bin/sh\necho pwned > pwned.txt\n"

Entry = tuple[bytes | None, int]


def raw_commit(
    raw: pygit2.Repository, parent: str, edits: Mapping[str, Entry], author: str
) -> str:
    """Commit *edits* (path -> (content, git mode), None removes) on *parent*: what a proposer pushes."""
    index = pygit2.Index()
    commit = raw.get(parent)
    assert isinstance(commit, pygit2.Commit)
    index.read_tree(commit.tree)
    for path, (content, mode) in edits.items():
        if content is None:
            index.remove(path)
        elif mode == GITLINK_MODE:  # a submodule entry names a commit, not a blob
            index.add(pygit2.IndexEntry(path, pygit2.Oid(hex=parent), mode))
        else:
            index.add(pygit2.IndexEntry(path, raw.create_blob(content), mode))
    sig = pygit2.Signature(author, f"{author}@example.invalid", 0, 0)
    oid = raw.create_commit(
        None, sig, sig, "proposer commit", index.write_tree(raw), [commit.id]
    )
    return str(oid)


# -- local mode ----------------------------------------------------------------------


@pytest.fixture
def ops(tmp_path: Path) -> Path:
    create_ops_repo(tmp_path / "ops", when=0)
    return tmp_path / "ops"


def propose(ops: Path, branch: str, edits: dict[str, Entry]) -> str:
    """Push branch vault/<branch> off main with *edits*, as a local-mode proposer does."""
    raw = pygit2.Repository(str(ops))
    head = raw_commit(
        raw, str(raw.references["refs/heads/main"].target), edits, "dev-agent"
    )
    raw.references.create(f"refs/heads/vault/{branch}", pygit2.Oid(hex=head))
    return head


def local_tick(ops: Path, tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir(exist_ok=True)
    environ = {
        "OPSVAULT_FORGE_PATH": str(ops),
        "OPSVAULT_FORGE_OPERATOR": "alice",
        "OPSVAULT_SECRETS_DIR": str(secrets),
        "OPSVAULT_STATE_DIR": str(tmp_path / "state"),
    }
    tick(build_app(load_settings(environ, None), environ), NOW)


def approve(ops: Path, branch: str) -> None:
    result = CliRunner().invoke(
        cli, ["approve", branch, "--as", "alice", "--ops", str(ops)]
    )
    assert result.exit_code == 0, result.output


def main_has(ops: Path, path: str) -> bool:
    repo = Pygit2OpsRepo.open(ops)
    return path in repo.list_files(repo.resolve("main"), "")


def test_a_symlink_in_a_proposal_hits_the_high_floor(ops: Path) -> None:
    propose(ops, "link", {"knowledge/d": (b"../.git/hooks", SYMLINK_MODE)})
    verdict = classify_ref_change(Pygit2OpsRepo.open(ops), "main", "vault/link").verdict
    (file,) = verdict.files
    assert (file.path, file.kind) == ("knowledge/d", ChangeKind.ADDED)
    assert verdict.tier is Tier.HIGH and verdict.protected
    assert "symlink" in file.classification.reasons[0].detail


def test_a_gitlink_in_a_proposal_hits_the_high_floor(ops: Path) -> None:
    propose(ops, "sub", {"knowledge/sub": (b"", GITLINK_MODE)})
    verdict = classify_ref_change(Pygit2OpsRepo.open(ops), "main", "vault/sub").verdict
    assert [f.path for f in verdict.files] == ["knowledge/sub"]
    assert verdict.tier is Tier.HIGH and verdict.protected


def test_a_symlink_hidden_as_an_action_file_hits_the_floor(ops: Path) -> None:
    propose(
        ops,
        "act",
        {"vault/actions/abc-1.toml": (b"../../vault/policy.toml", SYMLINK_MODE)},
    )
    verdict = classify_ref_change(Pygit2OpsRepo.open(ops), "main", "vault/act").verdict
    assert verdict.tier is Tier.HIGH and verdict.protected


def test_the_dispatcher_never_merges_a_symlink_or_a_gitlink(
    ops: Path, tmp_path: Path
) -> None:
    propose(ops, "link", {"knowledge/d": (b"../.git/hooks", SYMLINK_MODE)})
    propose(ops, "sub", {"knowledge/sub": (b"", GITLINK_MODE)})
    propose(ops, "note", {"knowledge/note.md": (b"a note\n", FILE)})
    local_tick(ops, tmp_path)
    assert main_has(ops, "knowledge/note.md")  # the tick ran and merged the low PR
    assert not main_has(ops, "knowledge/d")
    assert not main_has(ops, "knowledge/sub")


def test_two_proposals_cannot_plant_a_git_hook_through_a_symlink(
    ops: Path, tmp_path: Path
) -> None:
    # PR 1: knowledge/d -> ../.git/hooks. PR 2 (on top of it): knowledge/d/pre-commit.
    first = propose(ops, "d", {"knowledge/d": (b"../.git/hooks", SYMLINK_MODE)})
    local_tick(ops, tmp_path)
    raw = pygit2.Repository(str(ops))
    second = raw_commit(
        raw,
        first,
        {"knowledge/d": (None, 0), "knowledge/d/pre-commit": (HOOK, EXEC)},
        "dev-agent",
    )
    raw.references.create("refs/heads/vault/d2", pygit2.Oid(hex=second))
    local_tick(ops, tmp_path)
    assert not (ops / ".git" / "hooks" / "pre-commit").exists()
    assert not main_has(ops, "knowledge/d")


def test_work_tree_sync_never_writes_through_a_symlink_already_on_main(
    ops: Path, tmp_path: Path
) -> None:
    # An admin approves the link (high); then a low PR writes below it.
    propose(ops, "d", {"knowledge/d": (b"../.git/hooks", SYMLINK_MODE)})
    local_tick(ops, tmp_path)
    assert not main_has(ops, "knowledge/d")  # high: waits for an admin
    approve(ops, "d")
    assert (ops / "knowledge" / "d").is_symlink()  # the admin's merge was checked out
    propose(
        ops,
        "d2",
        {"knowledge/d": (None, 0), "knowledge/d/pre-commit": (HOOK, EXEC)},
    )
    local_tick(ops, tmp_path)
    assert main_has(ops, "knowledge/d/pre-commit")  # merged in git ...
    # ... never written there.
    assert not (ops / ".git" / "hooks" / "pre-commit").exists()
    assert (ops / "knowledge" / "d").is_symlink()  # the work tree was left as it was


def test_work_tree_sync_never_writes_outside_the_repo(
    ops: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("safe\n")
    propose(
        ops,
        "links",
        {
            "knowledge/e": (str(home / ".bashrc").encode(), SYMLINK_MODE),
            "knowledge/f": (b"../../home", SYMLINK_MODE),
        },
    )
    approve(ops, "links")
    assert (ops / "knowledge" / "f").resolve() == home.resolve()
    propose(
        ops,
        "over",
        {
            "knowledge/e": (b"export EVIL=1\n", FILE),
            "knowledge/f": (None, 0),
            "knowledge/f/.profile": (b"export EVIL=1\n", FILE),
        },
    )
    local_tick(ops, tmp_path)
    assert main_has(ops, "knowledge/f/.profile")  # the low PR merged
    assert (home / ".bashrc").read_text() == "safe\n"
    assert sorted(p.name for p in home.iterdir()) == [".bashrc"]


# -- Forgejo mode (the fake Forgejo): the floor, with the same git objects ----------


def test_the_dispatcher_never_merges_a_link_on_forgejo(vault: Harness) -> None:
    store = vault.forge.repo(REPO).git
    main = store.tip("main")
    assert main is not None
    for branch, edits in (
        ("link", {"knowledge/d": (b"../.git/hooks", SYMLINK_MODE)}),
        ("sub", {"knowledge/sub": (b"", GITLINK_MODE)}),
        ("note", {"knowledge/note.md": (b"a note\n", FILE)}),
    ):
        with store.lock:
            head = raw_commit(store.repo, main, edits, "dev-bot")
            store.set_ref(f"refs/heads/{branch}", head)
        vault.forge.open_pull(REPO, head=branch, title=branch, author="dev-bot")
    vault.tick()
    assert "knowledge/note.md" in vault.main_files("knowledge")
    assert "knowledge/d" not in vault.main_files("knowledge")
    assert vault.main_file("knowledge/d") is None
    assert not any(p.startswith("knowledge/sub") for p in vault.main_files(""))


# -- ids become paths only once validated ------------------------------------------


def test_request_refuses_an_id_that_is_a_path(ops: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["request", "noop", "--context", "x", "--id", "../../x", "--ops", str(ops)],
    )
    assert result.exit_code == 2, result.output
    assert "not a valid action id" in result.output
    assert not (tmp_path / "x.toml").exists()
    assert not list(tmp_path.glob("**/x.toml"))


def test_request_never_writes_through_a_symlinked_actions_dir(
    ops: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    actions = ops / "vault" / "actions"
    for leftover in actions.iterdir():
        leftover.unlink()
    actions.rmdir()
    actions.symlink_to(outside)
    result = CliRunner().invoke(
        cli,
        ["request", "noop", "--context", "x", "--id", "smoke-1", "--ops", str(ops)],
    )
    assert result.exit_code == 1, result.output
    assert "is a symlink; refusing to write through it" in result.output
    assert list(outside.iterdir()) == []


def test_plan_never_writes_through_a_symlinked_prerequisites_file(
    tmp_path: Path,
) -> None:
    from datetime import date

    from opsvault.cli.plan import run_plan
    from opsvault.errors import InvalidFileError

    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text(
        "# Prerequisite Tree\n## Objective: x\n- [ ] a\nStatus: DONE\n"
    )
    ops = tmp_path / "plain"  # a plain directory: the plan is written in place
    (ops / "vault").mkdir(parents=True)
    (ops / "prerequisites.md").symlink_to(home / ".bashrc")
    with pytest.raises(InvalidFileError, match="is a symlink"):
        run_plan(ops, date(2026, 11, 21))
    assert "Status: DONE" in (home / ".bashrc").read_text()


@pytest.mark.parametrize("command", [["approve"], ["reject", "--reason", "no"]])
@pytest.mark.parametrize("proposal", ["../../x", "vault/../main", "vault/-x", "a//b"])
def test_approve_and_reject_take_only_proposal_names(
    ops: Path, command: list[str], proposal: str
) -> None:
    result = CliRunner().invoke(
        cli, [command[0], proposal, *command[1:], "--as", "alice", "--ops", str(ops)]
    )
    assert result.exit_code == 2, result.output
    assert "is not a proposal id or branch" in result.output
