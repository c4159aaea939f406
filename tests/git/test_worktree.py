"""The local-mode work tree: checkout, and the sync after the base branch moved (git/worktree.py)."""

from __future__ import annotations

from pathlib import Path

import pygit2
import pytest

from opsvault.errors import GitError
from opsvault.git.base import Identity
from opsvault.git.pygit2_repo import Pygit2OpsRepo
from tests.conftest import init_repo
from tests.git.conftest import AUTHOR, WHEN


def test_checkout_fills_the_work_tree_and_keeps_local_changes(tmp_path: Path) -> None:
    repo = Pygit2OpsRepo.init(tmp_path / "ops")
    (tmp_path / "ops" / "mine.txt").write_text("untracked")
    first = repo.commit_files(
        None, {"a/b.txt": b"1", "c.txt": b"2"}, "init", AUTHOR, when=WHEN
    )
    repo.update_ref("refs/heads/main", first, None)
    repo.checkout("main")
    raw = pygit2.Repository(str(tmp_path / "ops"))
    assert (tmp_path / "ops" / "a" / "b.txt").read_bytes() == b"1"
    assert raw.status() == {"mine.txt": pygit2.enums.FileStatus.WT_NEW}
    assert raw.head.shorthand == "main"

    second = repo.commit_files(first, {"c.txt": b"3"}, "change", AUTHOR, when=WHEN)
    repo.update_ref("refs/heads/other", second, None)
    (tmp_path / "ops" / "c.txt").write_text("local edit")
    with pytest.raises(GitError):
        repo.checkout("other")
    assert (tmp_path / "ops" / "c.txt").read_text() == "local edit"
    assert raw.head.shorthand == "main"
    with pytest.raises(GitError):
        repo.checkout("missing")


def test_checkout_in_a_bare_repo_raises(remote: Pygit2OpsRepo) -> None:
    with pytest.raises(GitError, match="bare"):
        remote.checkout("main")


def test_sync_worktree_moves_a_clean_checkout_forward(tmp_path: Path) -> None:

    init_repo(tmp_path / "w", {"a.txt": "one\n", "keep.txt": "k\n"})
    repo = Pygit2OpsRepo.open(tmp_path / "w")
    old = repo.resolve("main")
    new = repo.commit_files(
        old,
        {"a.txt": b"two\n", "b.txt": b"new\n", "keep.txt": None},
        "m",
        Identity("t", "t@x"),
        when=0,
    )
    repo.update_ref("refs/heads/main", new, old)
    assert repo.sync_worktree("main", old) is True
    assert (tmp_path / "w" / "a.txt").read_text() == "two\n"
    assert (tmp_path / "w" / "b.txt").read_text() == "new\n"
    assert not (tmp_path / "w" / "keep.txt").exists()
    assert pygit2.Repository(str(tmp_path / "w")).status() == {}


def test_sync_worktree_leaves_local_changes_alone(tmp_path: Path) -> None:

    init_repo(tmp_path / "w", {"a.txt": "one\n"})
    (tmp_path / "w" / "a.txt").write_text("mine\n")
    repo = Pygit2OpsRepo.open(tmp_path / "w")
    old = repo.resolve("main")
    new = repo.commit_files(old, {"a.txt": b"two\n"}, "m", Identity("t", "t@x"), when=0)
    repo.update_ref("refs/heads/main", new, old)
    assert repo.sync_worktree("main", old) is False
    assert (tmp_path / "w" / "a.txt").read_text() == "mine\n"
