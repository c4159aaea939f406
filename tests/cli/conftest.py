from __future__ import annotations

from pathlib import Path

import pygit2
import pytest

from opsvault._resources import data_dir
from tests.conftest import SIGNATURE, init_repo


def template_files() -> dict[str, str | bytes]:
    root = data_dir("ops-template")
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file()
    }


@pytest.fixture
def ops(tmp_path: Path) -> Path:
    """A git ops repo made from the template, on main."""
    init_repo(tmp_path / "ops", template_files())
    return tmp_path / "ops"


def branch_with(repo_path: Path, branch: str, files: dict[str, bytes | None]) -> str:
    """Commit *files* (None deletes) on a new branch off main; return the commit id."""
    repo = pygit2.Repository(str(repo_path))
    main = repo.branches["main"].peel(pygit2.Commit)
    index = pygit2.Index()
    index.read_tree(main.tree)
    for path, content in files.items():
        if content is None:
            index.remove(path)
        else:
            blob = repo.create_blob(content)
            index.add(pygit2.IndexEntry(path, blob, pygit2.enums.FileMode.BLOB))
    tree = index.write_tree(repo)
    commit = repo.create_commit(
        f"refs/heads/{branch}", SIGNATURE, SIGNATURE, branch, tree, [main.id]
    )
    return str(commit)
