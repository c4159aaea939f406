"""Fixtures for the git adapter: a bare remote with one commit on main, and clones of it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from opsvault.git.base import Identity
from opsvault.git.pygit2_repo import Pygit2OpsRepo

WHEN = 1_700_000_000
AUTHOR = Identity("opsvault-test", "test@example.invalid")

CloneOf = Callable[[str], Pygit2OpsRepo]

SEED_FILES: dict[str, bytes | None] = {
    "vault/policy.toml": b"schema = 1\n",
    "vault/actions/a.toml": b'formula = "noop"\n',
    "vault/actions/nested/b.toml": b'formula = "noop"\n',
    "README.md": b"ops\n",
}


@pytest.fixture
def remote(tmp_path: Path) -> Pygit2OpsRepo:
    """A bare repository whose main holds SEED_FILES in one commit."""
    repo = Pygit2OpsRepo.init(tmp_path / "remote.git", bare=True)
    seed = repo.commit_files(None, SEED_FILES, "seed", AUTHOR, when=WHEN)
    repo.update_ref("refs/heads/main", seed, None)
    return repo


@pytest.fixture
def clone_of(tmp_path: Path, remote: Pygit2OpsRepo) -> Callable[[str], Pygit2OpsRepo]:
    """Return a function making a fresh bare clone of *remote* named *name*."""

    def make(name: str) -> Pygit2OpsRepo:
        return Pygit2OpsRepo.clone(remote.path, tmp_path / name, bare=True)

    return make


def main_of(repo: Pygit2OpsRepo) -> str:
    """Return the commit the local branch main of *repo* is at."""
    return repo.resolve("refs/heads/main")
