"""The fake's git storage looks like a Forgejo repository's after a push."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pygit2

from testing.fake_forgejo.gitstore import UNPACK_LIMIT, GitStore

SIG = pygit2.Signature("fake-test", "fake@example.invalid", 0, 0)


def loose_objects(path: Path) -> int:
    out = subprocess.run(
        ["git", "count-objects", "-v"],
        cwd=path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(dict(line.split(": ") for line in out.splitlines())["count"])


def test_a_bulk_commit_is_kept_as_a_pack_as_a_big_push_is(tmp_path: Path) -> None:
    store = GitStore.create(tmp_path / "repo.git", {"README": "x\n"}, SIG)
    main = store.tip("main")
    files = {f"f/{i}.txt": f"{i}\n" for i in range(UNPACK_LIMIT + 1)}
    head = store.commit("main", files, "bulk", SIG, SIG, parent=main)
    # A later `git gc --auto` has nothing to repack in the background.
    assert loose_objects(store.path) == 0
    assert store.entry(head, "f/7.txt") is not None
    small = store.commit("main", {"one": "one\n"}, "one", SIG, SIG, parent=head)
    assert loose_objects(store.path) == 3  # blob, tree, commit: left loose
    assert store.tip("main") == small


def test_branch_tips_are_what_tip_reads_packed_or_loose(tmp_path: Path) -> None:
    store = GitStore.create(tmp_path / "repo.git", {"README": "x\n"}, SIG)
    main = store.tip("main")
    assert main is not None
    store.set_refs_packed({f"refs/heads/bulk/{i}": main for i in range(3)})
    other = store.commit("loose", {"a": "a\n"}, "a", SIG, SIG, parent=main)
    store.set_ref("refs/pull/1/head", other)  # not a branch
    tips = store.branch_tips()
    assert tips == {b: store.tip(b) for b in store.branches()}
    assert tips["loose"] == other and tips["bulk/2"] == main
    assert "refs/pull/1/head" not in tips and len(tips) == 5
