"""Pygit2OpsRepo against real repositories in tmp_path (git is never mocked)."""

from __future__ import annotations

import hashlib
import subprocess
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pygit2
import pytest
from conftest import SIGNATURE, init_repo

from opsvault.errors import GitError, PushRejected
from opsvault.git.base import ChangedFile, ChangeKind, Identity, OpsRepo
from opsvault.git.local import Pygit2OpsRepo

from .conftest import AUTHOR, SEED_FILES, WHEN

CloneOf = Callable[[str], Pygit2OpsRepo]


def _git_blob_id(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _main(repo: Pygit2OpsRepo) -> str:
    return repo.resolve("refs/heads/main")


def test_adapter_satisfies_the_port(remote: Pygit2OpsRepo) -> None:
    port: OpsRepo = remote
    assert port.path == remote.path


# -- open, init, clone ----------------------------------------------------------


def test_init_creates_repo_with_initial_branch(tmp_path: Path) -> None:
    repo = Pygit2OpsRepo.init(tmp_path / "ops", initial_branch="trunk")
    assert repo.path == tmp_path / "ops"
    assert pygit2.Repository(str(tmp_path / "ops")).head_is_unborn
    assert (
        tmp_path / "ops" / ".git" / "HEAD"
    ).read_text().strip() == "ref: refs/heads/trunk"


def test_open_does_not_search_parent_directories(tmp_path: Path) -> None:
    init_repo(tmp_path / "ops", {"a.txt": "a"})
    (tmp_path / "ops" / "sub").mkdir()
    assert Pygit2OpsRepo.open(tmp_path / "ops").path == tmp_path / "ops"
    with pytest.raises(GitError):
        Pygit2OpsRepo.open(tmp_path / "ops" / "sub")


def test_clone_has_remote_tracking_branches(
    remote: Pygit2OpsRepo, tmp_path: Path
) -> None:
    worktree = Pygit2OpsRepo.clone(remote.path, tmp_path / "work")
    bare = Pygit2OpsRepo.clone(remote.path, tmp_path / "bare.git", bare=True)
    for repo in (worktree, bare):
        assert repo.resolve("origin/main") == _main(remote)
    assert (tmp_path / "work" / "README.md").read_bytes() == b"ops\n"


def test_clone_of_missing_remote_raises(tmp_path: Path) -> None:
    with pytest.raises(GitError):
        Pygit2OpsRepo.clone(tmp_path / "nowhere.git", tmp_path / "c")


# -- resolve and reading --------------------------------------------------------


def test_resolve_accepts_branches_refs_shas_and_head(remote: Pygit2OpsRepo) -> None:
    head = _main(remote)
    assert len(head) == 40
    for ref in (
        "main",
        "refs/heads/main",
        "HEAD",
        head,
        head[:10],
        head.upper()[:12].lower(),
    ):
        assert remote.resolve(ref) == head


@pytest.mark.parametrize("ref", ["nope", "origin/nope", "0" * 40, "", "main~5"])
def test_resolve_unknown_ref_raises_naming_it(remote: Pygit2OpsRepo, ref: str) -> None:
    with pytest.raises(GitError) as info:
        remote.resolve(ref)
    assert info.value.where in (ref, repr(ref))


def test_resolve_refuses_objects_that_are_not_commits(remote: Pygit2OpsRepo) -> None:
    blob = remote.blob_id("main", "README.md")
    assert blob is not None
    with pytest.raises(GitError, match="not a commit") as info:
        remote.resolve(blob)
    assert info.value.where == blob
    for ref in ("main:README.md", "main^{tree}", "main@{0}", "main..main"):
        with pytest.raises(GitError):
            remote.resolve(ref)


def test_resolve_follows_ancestry_suffixes(
    remote: Pygit2OpsRepo, clone_of: CloneOf
) -> None:
    seed = _main(remote)
    child = remote.commit_files(seed, {"x": b"x"}, "x", AUTHOR, when=WHEN)
    remote.update_ref("refs/heads/main", child, seed)
    local = clone_of("local")
    assert remote.resolve("main~1") == remote.resolve("main^") == seed
    assert local.resolve("origin/main^1") == seed
    assert local.resolve(f"{child[:12]}~1") == seed


def test_resolve_cannot_be_shadowed_by_branches_or_tags(
    remote: Pygit2OpsRepo, tmp_path: Path
) -> None:
    seed = _main(remote)
    evil = remote.commit_files(
        seed, {"vault/policy.toml": b"evil"}, "e", AUTHOR, when=WHEN
    )
    remote.update_ref("refs/heads/origin/main", evil, None)
    remote.update_ref("refs/tags/origin/main", evil, None)
    remote.update_ref("refs/tags/main", evil, None)
    for bare in (False, True):
        local = Pygit2OpsRepo.clone(remote.path, tmp_path / f"clone-{bare}", bare=bare)
        local.update_ref(
            "refs/heads/origin/main", evil, local.branches().get("origin/main")
        )
        local.update_ref("refs/tags/origin/main", evil, None)
        assert local.resolve("origin/main") == seed
        assert local.resolve("refs/remotes/origin/main") == seed
        assert local.resolve("refs/heads/origin/main") == evil
    assert remote.resolve("main") == seed


def test_read_file_returns_content_or_none(remote: Pygit2OpsRepo) -> None:
    head = _main(remote)
    assert (
        remote.read_file(head, "vault/actions/nested/b.toml") == b'formula = "noop"\n'
    )
    assert remote.read_file(head, "vault/actions/missing.toml") is None
    assert remote.read_file(head, "vault/actions") is None
    assert remote.read_file(head, "README.md/below") is None


def test_blob_id_is_the_git_blob_hash(remote: Pygit2OpsRepo) -> None:
    assert remote.blob_id("main", "README.md") == _git_blob_id(b"ops\n")
    assert remote.blob_id("main", "vault") is None
    assert remote.blob_id("main", "nope") is None


UNSAFE_PATHS = [
    "",
    "/etc/passwd",
    "../secrets",
    "vault/../../x",
    "vault/./policy.toml",
    "vault\\policy.toml",
    "vault//policy.toml",
    "vault/",
    ".git/config",
    "a/.GIT/hooks",
    "nul\0byte",
]


@pytest.mark.parametrize("path", UNSAFE_PATHS)
def test_unsafe_paths_are_refused(remote: Pygit2OpsRepo, path: str) -> None:
    head = _main(remote)
    with pytest.raises(GitError):
        remote.read_file(head, path)
    with pytest.raises(GitError):
        remote.blob_id(head, path)
    with pytest.raises(GitError):
        remote.commit_files(head, {path: b"x"}, "evil", AUTHOR, when=WHEN)
    with pytest.raises(GitError):
        remote.commit_files(head, {path: None}, "evil", AUTHOR, when=WHEN)


def test_list_files_is_recursive_and_sorted(remote: Pygit2OpsRepo) -> None:
    head = _main(remote)
    expected = ("vault/actions/a.toml", "vault/actions/nested/b.toml")
    assert remote.list_files(head, "vault/actions") == expected
    assert remote.list_files(head, "vault/actions/") == expected
    assert remote.list_files(head, "") == tuple(sorted(SEED_FILES))
    assert remote.list_files(head, "vault/running") == ()
    assert remote.list_files(head, "README.md") == ()
    with pytest.raises(GitError):
        remote.list_files(head, "../vault")


def test_list_files_sorts_by_path_not_tree_order(remote: Pygit2OpsRepo) -> None:
    # git orders tree entries as if directories ended in "/": "a-b" < "a/" but "a.b" > "a/"
    files: dict[str, bytes | None] = {
        "d/a/x": b"1",
        "d/a-b": b"2",
        "d/a.b": b"3",
        "d/a0": b"4",
    }
    commit = remote.commit_files(None, files, "order", AUTHOR, when=WHEN)
    assert remote.list_files(commit, "d") == tuple(sorted(files))


# -- history ---------------------------------------------------------------------


def test_merge_base_and_is_ancestor(remote: Pygit2OpsRepo) -> None:
    seed = _main(remote)
    left = remote.commit_files(seed, {"l": b"l"}, "left", AUTHOR, when=WHEN)
    right = remote.commit_files(seed, {"r": b"r"}, "right", AUTHOR, when=WHEN)
    lonely = remote.commit_files(None, {"x": b"x"}, "unrelated", AUTHOR, when=WHEN)
    assert remote.merge_base(left, right) == seed
    assert remote.merge_base(left, lonely) is None
    assert remote.is_ancestor(seed, left)
    assert remote.is_ancestor(seed, seed)
    assert not remote.is_ancestor(left, seed)
    assert not remote.is_ancestor(left, right)
    assert not remote.is_ancestor(lonely, left)


def test_log_first_parent_follows_first_parents_newest_first(
    remote: Pygit2OpsRepo,
) -> None:
    seed = _main(remote)
    one = remote.commit_files(seed, {"one": b"1"}, "one", AUTHOR, when=WHEN)
    side = remote.commit_files(seed, {"side": b"s"}, "side", AUTHOR, when=WHEN)
    merged = remote.merge(one, side, "merge side", AUTHOR, when=WHEN)
    assert remote.log_first_parent(merged, 10) == (merged, one, seed)
    assert remote.log_first_parent(merged, 2) == (merged, one)
    assert remote.log_first_parent(merged, 0) == ()


def test_commit_info_reports_metadata(remote: Pygit2OpsRepo) -> None:
    seed = _main(remote)
    bot = Identity("dispatcher-1", "d1@example.invalid")
    commit = remote.commit_files(
        seed, {"x": b"x"}, "claim x\n", AUTHOR, committer=bot, when=WHEN + 5
    )
    info = remote.commit_info(commit)
    assert info.id == commit
    assert info.parents == (seed,)
    assert info.author == AUTHOR
    assert info.committer == bot
    assert info.message == "claim x\n"
    assert info.time == WHEN + 5


# -- changed_files -----------------------------------------------------------------


def test_changed_files_is_the_change_head_brings_since_the_merge_base(
    remote: Pygit2OpsRepo,
) -> None:
    seed = _main(remote)
    head = remote.commit_files(
        seed,
        {
            "vault/actions/new.toml": b"new\n",
            "README.md": b"ops!\n",
            "vault/actions/a.toml": None,
        },
        "proposal",
        AUTHOR,
        when=WHEN,
    )
    # main moves on after the branch point; none of that belongs to the proposal
    base = remote.commit_files(
        seed, {"prerequisites.md": b"# tree\n"}, "later", AUTHOR, when=WHEN
    )
    assert remote.changed_files(base, head) == (
        ChangedFile("README.md", ChangeKind.MODIFIED),
        ChangedFile("vault/actions/a.toml", ChangeKind.DELETED),
        ChangedFile("vault/actions/new.toml", ChangeKind.ADDED),
    )
    assert remote.changed_files(base, base) == ()


def test_changed_files_detects_exact_renames_only(remote: Pygit2OpsRepo) -> None:
    seed = _main(remote)
    action = SEED_FILES["vault/actions/a.toml"]
    renamed = remote.commit_files(
        seed,
        {"vault/actions/a.toml": None, "vault/running/a.toml": action},
        "claim",
        AUTHOR,
        when=WHEN,
    )
    assert remote.changed_files(seed, renamed) == (
        ChangedFile(
            "vault/running/a.toml", ChangeKind.RENAMED, old_path="vault/actions/a.toml"
        ),
    )
    moved_and_edited = remote.commit_files(
        seed,
        {"vault/actions/a.toml": None, "vault/actions/c.toml": b'formula = "noop!"\n'},
        "sneaky",
        AUTHOR,
        when=WHEN,
    )
    assert remote.changed_files(seed, moved_and_edited) == (
        ChangedFile("vault/actions/a.toml", ChangeKind.DELETED),
        ChangedFile("vault/actions/c.toml", ChangeKind.ADDED),
    )


def test_changed_files_lists_every_file_of_a_deleted_directory(
    remote: Pygit2OpsRepo,
) -> None:
    seed = _main(remote)
    head = remote.commit_files(
        seed,
        {"vault/actions/a.toml": None, "vault/actions/nested/b.toml": None},
        "drop",
        AUTHOR,
        when=WHEN,
    )
    assert remote.changed_files(seed, head) == (
        ChangedFile("vault/actions/a.toml", ChangeKind.DELETED),
        ChangedFile("vault/actions/nested/b.toml", ChangeKind.DELETED),
    )


def test_changed_files_of_unrelated_histories_raises(remote: Pygit2OpsRepo) -> None:
    lonely = remote.commit_files(None, {"x": b"x"}, "unrelated", AUTHOR, when=WHEN)
    with pytest.raises(GitError, match="unrelated"):
        remote.changed_files(_main(remote), lonely)


def test_changed_files_cost_follows_the_change_not_the_tree(
    remote: Pygit2OpsRepo,
) -> None:
    files: dict[str, bytes | None] = {
        f"knowledge/{i:04}.md": b"%d\n" % i for i in range(1000)
    }
    big = remote.commit_files(_main(remote), files, "big", AUTHOR, when=WHEN)
    head = remote.commit_files(
        big, {"knowledge/0500.md": b"x"}, "one", AUTHOR, when=WHEN
    )
    assert remote.changed_files(big, head) == (
        ChangedFile("knowledge/0500.md", ChangeKind.MODIFIED),
    )
    assert len(remote.list_files(head, "knowledge")) == 1000


# -- commit_files ------------------------------------------------------------------


def test_commit_files_moves_no_ref_and_leaves_the_work_tree_alone(
    tmp_path: Path,
) -> None:
    raw = init_repo(tmp_path / "ops", {"vault/actions/a.toml": "a", "notes.md": "n"})
    (tmp_path / "ops" / "notes.md").write_text("local edit")
    repo = Pygit2OpsRepo.open(tmp_path / "ops")
    head = repo.resolve("HEAD")
    status_before = raw.status()
    index_before = (tmp_path / "ops" / ".git" / "index").read_bytes()
    commit = repo.commit_files(
        head,
        {"vault/actions/a.toml": None, "vault/running/a.toml": b"a"},
        "claim",
        AUTHOR,
        when=WHEN,
    )
    assert repo.resolve("HEAD") == head
    assert repo.branches() == {"main": head}
    assert pygit2.Repository(str(tmp_path / "ops")).status() == status_before
    assert (tmp_path / "ops" / ".git" / "index").read_bytes() == index_before
    assert (tmp_path / "ops" / "vault" / "actions" / "a.toml").read_text() == "a"
    assert repo.list_files(commit, "vault") == ("vault/running/a.toml",)


def test_commit_files_is_deterministic_with_fixed_time(remote: Pygit2OpsRepo) -> None:
    seed = _main(remote)
    first = remote.commit_files(seed, {"x": b"x"}, "m", AUTHOR, when=WHEN)
    again = remote.commit_files(seed, {"x": b"x"}, "m", AUTHOR, when=WHEN)
    later = remote.commit_files(seed, {"x": b"x"}, "m", AUTHOR, when=WHEN + 1)
    assert first == again != later


def test_commit_files_creates_and_prunes_intermediate_directories(
    remote: Pygit2OpsRepo,
) -> None:
    seed = _main(remote)
    deep = remote.commit_files(
        seed,
        {
            "vault/fired/2026/11/x.toml": b"x",
            "vault/fired/2026/11/x.result.json": b"{}",
        },
        "fire",
        AUTHOR,
        when=WHEN,
    )
    assert remote.list_files(deep, "vault/fired") == (
        "vault/fired/2026/11/x.result.json",
        "vault/fired/2026/11/x.toml",
    )
    emptied = remote.commit_files(
        deep,
        {
            "vault/fired/2026/11/x.toml": None,
            "vault/fired/2026/11/x.result.json": None,
            "vault/actions/nested/b.toml": None,
            "not/there.toml": None,
        },
        "drop",
        AUTHOR,
        when=WHEN,
    )
    raw = pygit2.Repository(str(remote.path))
    vault = raw.revparse_single(f"{emptied}:vault").peel(pygit2.Tree)
    assert sorted(str(entry.name) for entry in vault) == ["actions", "policy.toml"]
    assert remote.list_files(emptied, "vault/actions") == ("vault/actions/a.toml",)


def test_commit_files_can_empty_the_whole_tree_and_start_from_nothing(
    remote: Pygit2OpsRepo,
) -> None:
    root = remote.commit_files(None, {"only.txt": b"1"}, "root", AUTHOR, when=WHEN)
    assert remote.commit_info(root).parents == ()
    empty = remote.commit_files(root, {"only.txt": None}, "empty", AUTHOR, when=WHEN)
    assert remote.list_files(empty, "") == ()


@pytest.mark.parametrize(
    "changes",
    [
        {"vault/actions": b"a file where a directory is"},
        {"vault/actions": None},
        {"README.md/inner": b"below a file"},
        {"x": b"1", "x/y": b"2"},
    ],
)
def test_commit_files_refuses_file_directory_clashes(
    remote: Pygit2OpsRepo, changes: dict[str, bytes | None]
) -> None:
    with pytest.raises(GitError):
        remote.commit_files(_main(remote), changes, "clash", AUTHOR, when=WHEN)


def test_commit_files_keeps_the_executable_bit(tmp_path: Path) -> None:
    raw = init_repo(tmp_path / "ops", {"run.sh": "#!/bin/sh\n"})
    tree = raw.head.peel(pygit2.Tree)
    builder = raw.TreeBuilder(tree)
    builder.insert("run.sh", tree["run.sh"].id, pygit2.enums.FileMode.BLOB_EXECUTABLE)
    exe = raw.create_commit(
        None, SIGNATURE, SIGNATURE, "chmod", builder.write(), [raw.head.target]
    )
    repo = Pygit2OpsRepo.open(tmp_path / "ops")
    commit = repo.commit_files(
        str(exe), {"run.sh": b"#!/bin/sh\necho\n"}, "e", AUTHOR, when=WHEN
    )
    entry = raw.revparse_single(commit).peel(pygit2.Tree)["run.sh"]
    assert entry.filemode == pygit2.enums.FileMode.BLOB_EXECUTABLE


def test_commit_files_refuses_bad_identity(remote: Pygit2OpsRepo) -> None:
    with pytest.raises(GitError):
        remote.commit_files(
            _main(remote), {"x": b"x"}, "m", Identity("a\nb", "<x>"), when=WHEN
        )


# -- merge -----------------------------------------------------------------------


def test_merge_never_fast_forwards(remote: Pygit2OpsRepo) -> None:
    seed = _main(remote)
    proposal = remote.commit_files(
        seed, {"vault/actions/n.toml": b"n"}, "p", AUTHOR, when=WHEN
    )
    merged = remote.merge(seed, proposal, "Merge vault/n", AUTHOR, when=WHEN)
    info = remote.commit_info(merged)
    assert info.parents == (seed, proposal)
    assert info.message == "Merge vault/n"
    assert remote.read_file(merged, "vault/actions/n.toml") == b"n"
    assert _main(remote) == seed


def test_merge_combines_diverged_histories(remote: Pygit2OpsRepo) -> None:
    seed = _main(remote)
    base = remote.commit_files(seed, {"README.md": b"ops v2\n"}, "b", AUTHOR, when=WHEN)
    head = remote.commit_files(
        seed, {"vault/actions/n.toml": b"n"}, "h", AUTHOR, when=WHEN
    )
    merged = remote.merge(base, head, "merge", AUTHOR, when=WHEN)
    assert remote.read_file(merged, "README.md") == b"ops v2\n"
    assert remote.read_file(merged, "vault/actions/n.toml") == b"n"


def test_merge_conflict_raises_naming_the_paths(remote: Pygit2OpsRepo) -> None:
    seed = _main(remote)
    base = remote.commit_files(seed, {"README.md": b"ours\n"}, "b", AUTHOR, when=WHEN)
    head = remote.commit_files(seed, {"README.md": b"theirs\n"}, "h", AUTHOR, when=WHEN)
    with pytest.raises(GitError, match=r"README\.md"):
        remote.merge(base, head, "merge", AUTHOR, when=WHEN)


def test_merge_of_an_already_merged_head_raises(remote: Pygit2OpsRepo) -> None:
    seed = _main(remote)
    later = remote.commit_files(seed, {"x": b"x"}, "later", AUTHOR, when=WHEN)
    with pytest.raises(GitError, match="already contains"):
        remote.merge(later, seed, "merge", AUTHOR, when=WHEN)


# -- local refs --------------------------------------------------------------------


def test_update_ref_is_a_compare_and_swap(remote: Pygit2OpsRepo) -> None:
    seed = _main(remote)
    one = remote.commit_files(seed, {"one": b"1"}, "one", AUTHOR, when=WHEN)
    two = remote.commit_files(seed, {"two": b"2"}, "two", AUTHOR, when=WHEN)
    remote.update_ref("refs/heads/vault/x", one, None)
    with pytest.raises(PushRejected):
        remote.update_ref("refs/heads/vault/x", two, None)
    with pytest.raises(PushRejected):
        remote.update_ref("refs/heads/vault/x", two, seed)
    remote.update_ref("refs/heads/vault/x", two, one)
    assert remote.resolve("vault/x") == two
    # any commit may replace the expected one: this is a CAS, not a push
    remote.update_ref("refs/heads/vault/x", seed, two)
    assert remote.resolve("vault/x") == seed


def test_update_ref_refuses_bad_input(remote: Pygit2OpsRepo) -> None:
    seed = _main(remote)
    for ref in ("main", "refs/heads/a..b", "refs/heads/x.lock"):
        with pytest.raises(GitError):
            remote.update_ref(ref, seed, None)
    with pytest.raises(GitError):
        remote.update_ref("refs/heads/main", "no-such-commit", seed)
    with pytest.raises(GitError):
        remote.update_ref("refs/heads/main", seed, "main")


def test_update_ref_races_have_one_winner(remote: Pygit2OpsRepo) -> None:
    seed = _main(remote)
    candidates = [
        remote.commit_files(seed, {f"c{i}": b"c"}, f"c{i}", AUTHOR, when=WHEN)
        for i in range(8)
    ]
    outcomes = _race([partial(_update_main, remote.path, c, seed) for c in candidates])
    winners = [
        c for c, outcome in zip(candidates, outcomes, strict=True) if outcome is None
    ]
    assert len(winners) == 1
    assert all(isinstance(o, PushRejected) for o in outcomes if o is not None)
    assert _main(remote) == winners[0]


def test_branches_lists_local_branches_by_prefix(remote: Pygit2OpsRepo) -> None:
    seed = _main(remote)
    other = remote.commit_files(seed, {"x": b"x"}, "x", AUTHOR, when=WHEN)
    remote.update_ref("refs/heads/vault/a", other, None)
    remote.update_ref("refs/heads/vault/b", seed, None)
    remote.update_ref("refs/heads/vaulted", seed, None)
    remote.update_ref("refs/tags/vault/t", seed, None)
    assert remote.branches("vault/") == {"vault/a": other, "vault/b": seed}
    assert remote.branches() == {
        "main": seed,
        "vault/a": other,
        "vault/b": seed,
        "vaulted": seed,
    }


def test_delete_branch(remote: Pygit2OpsRepo, tmp_path: Path) -> None:
    remote.update_ref("refs/heads/vault/a", _main(remote), None)
    remote.delete_branch("vault/a")
    assert remote.branches("vault/") == {}
    with pytest.raises(GitError):
        remote.delete_branch("vault/a")
    with pytest.raises(GitError):
        remote.delete_branch("-f")
    worktree = Pygit2OpsRepo.clone(remote.path, tmp_path / "work")
    with pytest.raises(GitError):
        worktree.delete_branch("main")  # checked out


# -- remotes -------------------------------------------------------------------------


def test_fetch_mirrors_branches_and_prunes(
    remote: Pygit2OpsRepo, clone_of: CloneOf
) -> None:
    seed = _main(remote)
    local = clone_of("local")
    newer = remote.commit_files(seed, {"x": b"x"}, "x", AUTHOR, when=WHEN)
    remote.update_ref("refs/heads/main", newer, seed)
    remote.update_ref("refs/heads/vault/p", seed, None)
    local.fetch()
    assert local.resolve("origin/main") == newer
    assert local.resolve("origin/vault/p") == seed
    remote.delete_branch("vault/p")
    local.fetch("origin")
    with pytest.raises(GitError):
        local.resolve("origin/vault/p")
    with pytest.raises(GitError, match="no such remote"):
        local.fetch("upstream")


def test_push_creates_and_advances_a_branch(
    remote: Pygit2OpsRepo, clone_of: CloneOf
) -> None:
    local = clone_of("local")
    seed = local.resolve("origin/main")
    proposal = local.commit_files(
        seed, {"vault/actions/n.toml": b"n"}, "p", AUTHOR, when=WHEN
    )
    local.push("vault/n", proposal, None)
    assert remote.resolve("vault/n") == proposal
    local.push("main", proposal, seed)
    assert _main(remote) == proposal
    local.push("main", proposal, proposal)  # already there, as expected: a no-op


def test_push_rejects_when_the_branch_exists_but_none_was_expected(
    remote: Pygit2OpsRepo, clone_of: CloneOf
) -> None:
    local = clone_of("local")
    seed = local.resolve("origin/main")
    proposal = local.commit_files(seed, {"n": b"n"}, "p", AUTHOR, when=WHEN)
    with pytest.raises(PushRejected):
        local.push("main", proposal, None)
    assert _main(remote) == seed


def test_push_is_rejected_after_a_competitor_fast_forwarded(
    remote: Pygit2OpsRepo, clone_of: CloneOf
) -> None:
    ours, theirs = clone_of("ours"), clone_of("theirs")
    seed = ours.resolve("origin/main")
    # the competitor's commit is an ancestor of ours, so a plain non-force push
    # (fast-forward check only) would succeed; the CAS must not
    step = ours.commit_files(seed, {"step": b"1"}, "step", AUTHOR, when=WHEN)
    claim = ours.commit_files(step, {"claim": b"1"}, "claim", AUTHOR, when=WHEN)
    ours.push("scratch", step, None)
    theirs.fetch()
    theirs.push("main", theirs.resolve("origin/scratch"), seed)
    with pytest.raises(PushRejected) as info:
        ours.push("main", claim, seed)
    assert info.value.where == "origin/main"
    assert _main(remote) == step


def test_push_of_a_commit_the_remote_already_holds_is_rejected(
    remote: Pygit2OpsRepo, clone_of: CloneOf
) -> None:
    one, two = clone_of("one"), clone_of("two")
    seed = one.resolve("origin/main")
    # two replicas that build byte-identical commits must not both "win"
    claim = one.commit_files(seed, {"claim": b"1"}, "claim", AUTHOR, when=WHEN)
    same = two.commit_files(seed, {"claim": b"1"}, "claim", AUTHOR, when=WHEN)
    assert claim == same
    one.push("main", claim, seed)
    with pytest.raises(PushRejected):
        two.push("main", same, seed)


def test_push_never_rewrites_history(remote: Pygit2OpsRepo, clone_of: CloneOf) -> None:
    local = clone_of("local")
    seed = local.resolve("origin/main")
    ahead = local.commit_files(seed, {"a": b"a"}, "a", AUTHOR, when=WHEN)
    local.push("main", ahead, seed)
    unrelated = local.commit_files(None, {"b": b"b"}, "b", AUTHOR, when=WHEN)
    with pytest.raises(GitError, match="does not descend") as info:
        local.push("main", unrelated, ahead)
    assert not isinstance(info.value, PushRejected)
    assert _main(remote) == ahead


def test_push_races_have_exactly_one_winner(
    remote: Pygit2OpsRepo, clone_of: CloneOf
) -> None:
    replicas = [clone_of(f"replica-{i}") for i in range(8)]
    seed = _main(remote)
    claims = [
        r.commit_files(
            seed, {f"vault/running/{i}.toml": b"x"}, f"claim {i}", AUTHOR, when=WHEN
        )
        for i, r in enumerate(replicas)
    ]
    outcomes = _race(
        [
            partial(r.push, "main", c, seed)
            for r, c in zip(replicas, claims, strict=True)
        ]
    )
    winners = [
        c for c, outcome in zip(claims, outcomes, strict=True) if outcome is None
    ]
    assert len(winners) == 1, outcomes
    assert all(isinstance(o, PushRejected) for o in outcomes if o is not None), outcomes
    assert _main(remote) == winners[0]


def test_push_refused_by_the_remote_is_not_a_lost_race(
    remote: Pygit2OpsRepo, clone_of: CloneOf
) -> None:
    hook = remote.path / "hooks" / "pre-receive"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text("#!/bin/sh\necho protected branch >&2\nexit 1\n")
    hook.chmod(0o755)
    local = clone_of("local")
    seed = local.resolve("origin/main")
    commit = local.commit_files(seed, {"x": b"x"}, "x", AUTHOR, when=WHEN)
    with pytest.raises(GitError) as info:
        local.push("main", commit, seed)
    assert not isinstance(info.value, PushRejected)


def test_push_to_an_unreachable_remote_is_a_git_error(
    remote: Pygit2OpsRepo, clone_of: CloneOf, tmp_path: Path
) -> None:
    local = clone_of("local")
    seed = local.resolve("origin/main")
    subprocess.run(
        [
            "git",
            f"--git-dir={local.path}",
            "remote",
            "add",
            "gone",
            str(tmp_path / "gone.git"),
        ],
        check=True,
    )
    with pytest.raises(GitError) as info:
        local.push("main", seed, seed, remote="gone")
    assert not isinstance(info.value, PushRejected)
    with pytest.raises(GitError):
        local.push("main", seed, seed, remote="--upload-pack=evil")
    with pytest.raises(GitError):
        local.push("-main", seed, seed)


def _update_main(path: Path, new: str, expected_old: str) -> None:
    Pygit2OpsRepo.open(path).update_ref("refs/heads/main", new, expected_old)


def _race(jobs: list[Callable[[], None]]) -> list[BaseException | None]:
    """Run *jobs* in threads released together; return each one's exception or None."""
    barrier = threading.Barrier(len(jobs))
    outcomes: list[BaseException | None] = [None] * len(jobs)

    def run(index: int) -> None:
        barrier.wait()
        try:
            jobs[index]()
        except BaseException as exc:  # collected and asserted on by the caller
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_update_ref_while_another_writer_holds_the_lock_is_rejected(
    remote: Pygit2OpsRepo,
) -> None:
    seed = _main(remote)
    other = remote.commit_files(seed, {"x": b"x"}, "x", AUTHOR, when=WHEN)
    lock = remote.path / "refs" / "heads" / "main.lock"
    lock.write_text(other + "\n")
    with pytest.raises(PushRejected):
        remote.update_ref("refs/heads/main", other, seed)
    lock.unlink()
    remote.update_ref("refs/heads/main", other, seed)
    assert _main(remote) == other


def test_update_ref_in_a_work_tree_repo_without_configured_identity(
    tmp_path: Path,
) -> None:
    init_repo(tmp_path / "ops", {"a": "a"})
    repo = Pygit2OpsRepo.open(tmp_path / "ops")
    head = repo.resolve("HEAD")
    child = repo.commit_files(head, {"b": b"b"}, "b", AUTHOR, when=WHEN)
    repo.update_ref("refs/heads/main", child, head)
    assert repo.resolve("HEAD") == child
