"""Merges and diffs of the fake's commits that skip the subtrees neither side changed.

libgit2's ``merge_commits`` and ``Tree.diff_to_tree`` read every entry of both
trees (the merge builds an index of the whole repository and writes every tree
again), so a merge or a PR's file list cost grows with the repository, not
with the change: ~70 ms per merge at 20,000 files. Forgejo itself merges with
git in a temporary clone of the base (services/pull/merge.go
``doMergeAndPush`` over ``createTemporaryRepoForMerge``), and git's diff and
merge machinery skip equal subtrees. The fake does the same where the answer
is certain and asks libgit2 otherwise. This module adds no behaviour: what a
merge, a mergeability check or a PR's file list answers is still what
merging.py (services/pull/merge.go) and routes_pulls.py (services/pull/check.go)
say it is, and tests/testing/test_fake_treemerge.py checks every answer here
against libgit2's full merge and diff:

- ``trivial_merge``: a three-way merge in which every path changed on at most
  one side (then that side wins; equal subtrees are taken whole). Any path both
  sides changed -- even identically, which rename detection might pair up
  differently -- raises ``NotTrivial`` and the caller merges with libgit2.
- ``single_merge_base``: the merge base, when it is certainly the only one (the
  commits one side has and the other lacks are a chain of single-parent
  commits); with several bases libgit2 merges them into a virtual one first.
- ``pruned_trees``: two small trees holding only the entries that differ, whose
  diff lists the same deltas (renames, line counts, patch text) as the diff of
  the full trees: an unchanged file is in neither, and rename detection only
  pairs deleted and added files.
"""

from __future__ import annotations

import pygit2
from pygit2.enums import FileMode

_TREE = int(FileMode.TREE)

Item = tuple[pygit2.Oid, int]  # (id, mode) of one tree entry


class NotTrivial(Exception):
    """Both sides changed one path: only a real merge can say what it becomes."""


def _items(tree: pygit2.Tree) -> dict[str, Item]:
    return {e.name or "": (e.id, int(e.filemode)) for e in tree}


def _tree(repo: pygit2.Repository, oid: pygit2.Oid) -> pygit2.Tree:
    tree = repo.get(oid)
    assert isinstance(tree, pygit2.Tree)
    return tree


def single_merge_base(
    repo: pygit2.Repository, a: pygit2.Oid, b: pygit2.Oid
) -> pygit2.Oid | None:
    """Return the merge base of *a* and *b* if it is certainly unique, else None.

    If every commit reachable from one tip but not from the other has one
    parent, those commits are a chain, and the parent of its last commit is
    the one best common ancestor. None also when one tip contains the other.
    """
    for tip, other in ((b, a), (a, b)):
        walker = repo.walk(tip)
        walker.hide(other)
        own: set[pygit2.Oid] = set()
        parents: list[pygit2.Oid] = []
        for commit in walker:
            if len(commit.parent_ids) != 1:
                break
            own.add(commit.id)
            parents.append(commit.parent_ids[0])
        else:
            outside = {p for p in parents if p not in own}
            if len(outside) == 1:
                return outside.pop()
    return None


def trivial_merge(
    repo: pygit2.Repository,
    ancestor: pygit2.Tree,
    ours: pygit2.Tree,
    theirs: pygit2.Tree,
) -> pygit2.Oid:
    """Return the merged tree's id if no path changed on both sides; raise NotTrivial otherwise."""
    if ours.id == ancestor.id:
        return theirs.id
    if theirs.id == ancestor.id:
        return ours.id
    base, mine, other = _items(ancestor), _items(ours), _items(theirs)
    builder = repo.TreeBuilder()
    for name in sorted(base.keys() | mine.keys() | other.keys()):
        a, o, t = base.get(name), mine.get(name), other.get(name)
        if o == a:
            chosen = t
        elif t == a:
            chosen = o
        elif a and o and t and a[1] == o[1] == t[1] == _TREE:
            oid = trivial_merge(
                repo, _tree(repo, a[0]), _tree(repo, o[0]), _tree(repo, t[0])
            )
            chosen = (oid, _TREE)
        else:
            raise NotTrivial(name)
        if chosen is not None:
            builder.insert(name, chosen[0], chosen[1])
    return builder.write()


def _leaves(
    repo: pygit2.Repository, item: Item, path: str, out: dict[str, Item]
) -> None:
    if item[1] != _TREE:
        out[path] = item
        return
    for name, child in _items(_tree(repo, item[0])).items():
        _leaves(repo, child, f"{path}/{name}", out)


def _differing(
    repo: pygit2.Repository,
    old: pygit2.Tree,
    new: pygit2.Tree,
    prefix: str,
    out_old: dict[str, Item],
    out_new: dict[str, Item],
) -> None:
    before, after = _items(old), _items(new)
    for name in before.keys() | after.keys():
        a, b = before.get(name), after.get(name)
        if a == b:
            continue
        path = f"{prefix}{name}"
        if a and b and a[1] == b[1] == _TREE:
            _differing(
                repo, _tree(repo, a[0]), _tree(repo, b[0]), path + "/", out_old, out_new
            )
            continue
        if a:
            _leaves(repo, a, path, out_old)
        if b:
            _leaves(repo, b, path, out_new)


def _write(repo: pygit2.Repository, items: dict[str, Item]) -> pygit2.Tree:
    index = pygit2.Index()
    for path, (oid, mode) in items.items():
        index.add(pygit2.IndexEntry(path, oid, FileMode(mode)))
    return _tree(repo, index.write_tree(repo))


def pruned_trees(
    repo: pygit2.Repository, old: pygit2.Tree, new: pygit2.Tree
) -> tuple[pygit2.Tree, pygit2.Tree]:
    """Return trees holding only the files that differ between *old* and *new*, for diffing."""
    if old.id == new.id:
        empty = _write(repo, {})
        return empty, empty
    out_old: dict[str, Item] = {}
    out_new: dict[str, Item] = {}
    _differing(repo, old, new, "", out_old, out_new)
    return _write(repo, out_old), _write(repo, out_new)
