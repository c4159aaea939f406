"""Read paths out of git trees, keeping parsed trees by id.

libgit2 does not cache trees over 4 KiB, and a path lookup through
``tree["a/b/c"]`` re-reads and re-parses every directory on the way. Objects
are immutable, so parsed trees are kept by id (bounded).
"""

from __future__ import annotations

import pygit2
from pygit2.enums import FileMode

TREE_CACHE_SIZE = 1024
FILE_MODES = (FileMode.BLOB, FileMode.BLOB_EXECUTABLE, FileMode.LINK)


class TreeReader:
    """Look up entries below a root tree of one repository."""

    def __init__(self, repo: pygit2.Repository) -> None:
        self._repo = repo
        self._trees: dict[pygit2.Oid, pygit2.Tree] = {}

    def tree(self, oid: pygit2.Oid) -> pygit2.Tree:
        """Return the tree *oid*, parsed once."""
        tree = self._trees.get(oid)
        if tree is None:
            if len(self._trees) >= TREE_CACHE_SIZE:
                self._trees.clear()
            tree = self._repo[oid].peel(pygit2.Tree)
            self._trees[oid] = tree
        return tree

    def find(self, root: pygit2.Oid, parts: list[str]) -> pygit2.Object | None:
        """Return the entry at path *parts* below the tree *root* (the root if empty)."""
        node: pygit2.Object = self.tree(root)
        for part in parts:
            if not isinstance(node, pygit2.Tree):
                return None
            try:
                entry = node[part]
            except KeyError:
                return None
            node = self.tree(entry.id) if entry.filemode == FileMode.TREE else entry
        return node

    def file_entry(self, root: pygit2.Oid, parts: list[str]) -> pygit2.Object | None:
        """Return the file (blob or symlink) entry at *parts*, or None (a tree, a submodule)."""
        entry = self.find(root, parts)
        if entry is None or entry.filemode not in FILE_MODES:
            return None
        return entry

    def files(self, tree: pygit2.Tree, prefix: str) -> list[str]:
        """Return the paths of every file below *tree*, each starting with *prefix*."""
        found: list[str] = []
        self._walk(tree, prefix, found)
        return found

    def _walk(self, tree: pygit2.Tree, prefix: str, found: list[str]) -> None:
        for entry in tree:
            name = f"{prefix}{entry.name}"
            if entry.filemode == FileMode.TREE:
                self._walk(self.tree(entry.id), f"{name}/", found)
            elif entry.filemode in FILE_MODES:  # not submodules
                found.append(name)
