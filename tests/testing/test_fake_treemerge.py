"""The fake's pruned merges and diffs give exactly what libgit2's full ones give.

``testing/fake_forgejo/treemerge.py`` skips equal subtrees; each case here
builds two sides of a change on a shared ancestor and compares the merged tree
(and mergeability) with ``merge_commits``, and the PR diff (statuses, renames,
line counts, patch text) with ``diff_to_tree`` of the full trees.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

import pygit2
import pytest

from testing.fake_forgejo.gitstore import GitStore
from testing.fake_forgejo.treemerge import (
    NotTrivial,
    pruned_trees,
    single_merge_base,
    trivial_merge,
)

SIG = pygit2.Signature("fake-test", "fake@example.invalid", 0, 0)

Changes = Mapping[str, str | bytes | None]

BASE: dict[str, str | bytes | None] = {
    **{
        f"vault/fired/2025/{m:02d}/old-{i}.toml": f"id {m} {i}\n"
        for m in (1, 2)
        for i in range(5)
    },
    "vault/policy.toml": "default = 'high'\n" + "rule = 1\n" * 40,
    "knowledge/a.md": "alpha\n" * 30,
    "knowledge/b.md": "beta\n",
    "dir/sub/file": "inside\n",
    "README": "readme\n",
}

# (ours, theirs): each a set of changes on the ancestor; ours is the base branch.
CASES: dict[str, tuple[Changes, Changes]] = {
    "one side adds a file": ({}, {"vault/actions/new.toml": "x = 1\n"}),
    "each side adds in one directory": (
        {"vault/fired/2025/01/new-a.toml": "a\n"},
        {"vault/fired/2025/01/new-b.toml": "b\n"},
    ),
    "deletions and edits apart": (
        {"knowledge/b.md": None, "README": "changed\n"},
        {"vault/policy.toml": "default = 'low'\n" + "rule = 1\n" * 40},
    ),
    "a rename on one side": (
        {"README": "ours\n"},
        {"knowledge/a.md": None, "knowledge/renamed.md": "alpha\n" * 30},
    ),
    "a directory becomes a file": (
        {"dir/sub/file": None, "dir/sub": "now a file\n"},
        {},
    ),
    "a file becomes a directory": ({}, {"README": None, "README/inner": "x\n"}),
    "both change one file": ({"README": "ours\n"}, {"README": "theirs\n"}),
    "both make the same change": ({"README": "same\n"}, {"README": "same\n"}),
    "both delete one file": ({"knowledge/b.md": None}, {"knowledge/b.md": None}),
    "both rename one file apart": (
        {"knowledge/a.md": None, "knowledge/one.md": "alpha\n" * 30},
        {"knowledge/a.md": None, "knowledge/two.md": "alpha\n" * 30},
    ),
    "both add one path differently": ({"new": "a\n"}, {"new": "b\n"}),
    "a conflict in one file's lines": (
        {"knowledge/a.md": "alpha\n" * 29 + "ours\n"},
        {"knowledge/a.md": "alpha\n" * 29 + "theirs\n"},
    ),
    "edits in one file that merge cleanly": (
        {"knowledge/a.md": "first\n" + "alpha\n" * 29},
        {"knowledge/a.md": "alpha\n" * 29 + "last\n"},
    ),
}

# Every path changed on one side at most: the pruned merge answers these itself.
TRIVIAL = {
    "one side adds a file",
    "each side adds in one directory",
    "deletions and edits apart",
    "a rename on one side",
    "a directory becomes a file",
    "a file becomes a directory",
}


@pytest.fixture
def store(tmp_path: Path) -> GitStore:
    return GitStore.create(
        tmp_path / "repo.git", {k: v for k, v in BASE.items() if v is not None}, SIG
    )


def oid(sha: str) -> pygit2.Oid:
    return pygit2.Oid(hex=sha)


def sides(store: GitStore, ours: Changes, theirs: Changes) -> tuple[str, str, str]:
    root = store.tip("main")
    assert root is not None
    base = store.commit("main", ours, "ours", SIG, SIG, parent=root) if ours else root
    head = store.commit("head", theirs, "theirs", SIG, SIG, parent=root)
    return root, base, head


def full_diff(
    store: GitStore, old: str, new: str
) -> tuple[list[tuple[object, ...]], str]:
    diff = store.commit_info(old).tree.diff_to_tree(store.commit_info(new).tree)
    patch = diff.patch or ""
    diff.find_similar()
    return _deltas(diff), patch


def _deltas(diff: pygit2.Diff) -> list[tuple[object, ...]]:
    return sorted(
        (
            p.delta.status,
            p.delta.old_file.path,
            p.delta.new_file.path,
            p.delta.old_file.mode,
            p.delta.new_file.mode,
            p.line_stats,
        )
        for p in diff
        if p is not None
    )


@pytest.mark.parametrize("case", list(CASES))
def test_pruned_merge_matches_libgit2(store: GitStore, case: str) -> None:
    root, base, head = sides(store, *CASES[case])
    index = store.repo.merge_commits(oid(base), oid(head))
    clean = index.conflicts is None
    assert single_merge_base(store.repo, oid(base), oid(head)) == oid(root)
    try:
        tree = trivial_merge(
            store.repo,
            store.commit_info(root).tree,
            store.commit_info(base).tree,
            store.commit_info(head).tree,
        )
    except NotTrivial:
        tree = None
    assert (tree is not None) is (case in TRIVIAL)
    if tree is not None:  # the pruned merge answers only when it is certain
        assert clean and tree == index.write_tree(store.repo)
    assert store.mergeable(base, head) is clean
    if clean:
        merged = store.merge("main", head, "merge", SIG)
        assert store.commit_info(merged).tree_id == index.write_tree(store.repo)
    else:
        with pytest.raises(ValueError, match="merge conflict"):
            store.merge("main", head, "merge", SIG)


@pytest.mark.parametrize("case", list(CASES))
def test_pruned_diff_matches_the_full_diff(store: GitStore, case: str) -> None:
    root, base, head = sides(store, *CASES[case])
    for old, new in ((root, head), (base, head), (head, base), (root, base)):
        old_tree, new_tree = pruned_trees(
            store.repo, store.commit_info(old).tree, store.commit_info(new).tree
        )
        pruned = old_tree.diff_to_tree(new_tree)
        patch = pruned.patch or ""
        pruned.find_similar()
        assert (_deltas(pruned), patch) == full_diff(store, old, new)


def test_the_file_list_names_a_rename_as_libgit2_does(store: GitStore) -> None:
    root, _base, head = sides(store, *CASES["a rename on one side"])
    [change] = store.diff(root, head)
    assert (change.filename, change.previous_filename, change.status) == (
        "knowledge/renamed.md",
        "knowledge/a.md",
        "renamed",
    )


def merge_bases(store: GitStore, a: str, b: str) -> set[str]:
    out = subprocess.run(
        ["git", "merge-base", "--all", a, b],
        cwd=store.path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


def test_a_criss_cross_history_has_no_single_merge_base(store: GitStore) -> None:
    root = store.tip("main")
    assert root is not None
    left = store.commit("left", {"l": "1\n"}, "l", SIG, SIG, parent=root)
    right = store.commit("right", {"r": "1\n"}, "r", SIG, SIG, parent=root)
    tree = store.commit_info(left).tree_id
    cross = [
        store.repo.create_commit(None, SIG, SIG, "x", tree, [oid(a), oid(b)])
        for a, b in ((left, right), (right, left))
    ]
    assert len(merge_bases(store, str(cross[0]), str(cross[1]))) == 2
    assert single_merge_base(store.repo, cross[0], cross[1]) is None


def test_a_single_merge_base_is_git_s_only_one(store: GitStore) -> None:
    root = store.tip("main")
    assert root is not None
    feature = store.commit("feature", {"f": "1\n"}, "f", SIG, SIG, parent=root)
    main = store.commit("main", {"m": "1\n"}, "m", SIG, SIG, parent=root)
    main = store.merge("main", feature, "merge feature", SIG)
    head = store.commit("head", {"h": "1\n"}, "h", SIG, SIG, parent=feature)
    head = store.commit("head", {"h2": "1\n"}, "h2", SIG, SIG, parent=head)
    found = single_merge_base(store.repo, oid(main), oid(head))
    assert found is not None and {str(found)} == merge_bases(store, main, head)
    # head already on main: no merge base to merge from
    assert single_merge_base(store.repo, oid(main), oid(feature)) is None
