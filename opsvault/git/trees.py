"""Write a git tree from a base tree and a set of file changes, or from a merge, touching no index.

Only the directories on a changed path are rewritten; every other subtree is
reused by id, so the cost follows the size of the change, not of the repo.
pygit2 errors propagate to the caller (git/pygit2_repo.py translates them).
"""

from __future__ import annotations

from collections.abc import Mapping

import pygit2
from pygit2.enums import FileMode

from opsvault.errors import GitError

_DIRECTORY_MODES = (FileMode.TREE, FileMode.COMMIT)


def apply_changes(
    repo: pygit2.Repository,
    base: pygit2.Tree | None,
    changes: Mapping[str, bytes | None],
) -> pygit2.Oid:
    """Return the id of *base* with *changes* applied (bytes: write, None: delete).

    Paths must already be checked (``check_repo_path``). Directories left empty
    disappear; the root may end up empty. Raise GitError when a path is changed
    both as a file and as a directory, when bytes would replace a directory,
    when None names a directory, or when a file would go below an existing file.
    A deletion of an absent path is ignored.
    """
    written = _write(repo, base, dict(changes), "")
    return written if written is not None else repo.TreeBuilder().write()


def _write(
    repo: pygit2.Repository,
    tree: pygit2.Tree | None,
    changes: dict[str, bytes | None],
    prefix: str,
) -> pygit2.Oid | None:
    """Write *tree* with *changes* (paths relative to it) applied; None if it ends empty."""
    builder = repo.TreeBuilder(tree) if tree is not None else repo.TreeBuilder()
    files: dict[str, bytes | None] = {}
    subdirs: dict[str, dict[str, bytes | None]] = {}
    for path, content in changes.items():
        head, slash, rest = path.partition("/")
        if slash:
            subdirs.setdefault(head, {})[rest] = content
        else:
            files[head] = content

    for name, content in sorted(files.items()):
        where = f"{prefix}{name}"
        if name in subdirs:
            raise GitError(where, "changed both as a file and as a directory")
        existing = tree[name] if tree is not None and name in tree else None
        if existing is not None and existing.filemode in _DIRECTORY_MODES:
            raise GitError(where, "is a directory, not a file")
        if content is None:
            if existing is not None:
                builder.remove(name)
            continue
        mode = FileMode.BLOB
        if existing is not None and existing.filemode == FileMode.BLOB_EXECUTABLE:
            mode = FileMode.BLOB_EXECUTABLE
        builder.insert(name, repo.create_blob(content), mode)

    for name, subchanges in sorted(subdirs.items()):
        where = f"{prefix}{name}"
        existing = tree[name] if tree is not None and name in tree else None
        subtree: pygit2.Tree | None = None
        if existing is not None:
            if existing.filemode != FileMode.TREE:
                if all(content is None for content in subchanges.values()):
                    continue  # deleting below a file: there is nothing to delete
                raise GitError(where, "is a file, cannot hold other files")
            subtree = repo[existing.id].peel(pygit2.Tree)
        written = _write(repo, subtree, subchanges, f"{where}/")
        if written is not None:
            builder.insert(name, written, FileMode.TREE)
        elif existing is not None:
            builder.remove(name)

    return builder.write() if len(builder) else None


def merge_trees(
    repo: pygit2.Repository, ours: pygit2.Commit, theirs: pygit2.Commit, where: str
) -> pygit2.Oid:
    """Return the tree of merging *theirs* into *ours* (in memory); raise GitError on conflicts."""
    index = repo.merge_commits(ours, theirs)
    if index.conflicts is not None:
        paths = sorted(
            {entry.path for triple in index.conflicts for entry in triple if entry}
        )
        raise GitError(where, f"merge conflicts in {paths!r}")
    return index.write_tree(repo)
