"""Pygit2OpsRepo against real repositories in tmp_path (git is never mocked)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pygit2
import pytest

from opsvault.errors import GitError
from opsvault.git.base import Identity, OpsRepo
from opsvault.git.pygit2_repo import Pygit2OpsRepo
from opsvault.policy.change import ChangedFile, ChangeKind
from tests.conftest import SIGNATURE, init_repo
from tests.git.conftest import AUTHOR, SEED_FILES, WHEN, main_of


def _git_blob_id(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


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
        assert repo.resolve("origin/main") == main_of(remote)
    assert (tmp_path / "work" / "README.md").read_bytes() == b"ops\n"


def test_clone_of_missing_remote_raises(tmp_path: Path) -> None:
    with pytest.raises(GitError):
        Pygit2OpsRepo.clone(tmp_path / "nowhere.git", tmp_path / "c")


# -- resolve and reading --------------------------------------------------------


def test_read_file_returns_content_or_none(remote: Pygit2OpsRepo) -> None:
    head = main_of(remote)
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
    head = main_of(remote)
    with pytest.raises(GitError):
        remote.read_file(head, path)
    with pytest.raises(GitError):
        remote.blob_id(head, path)
    with pytest.raises(GitError):
        remote.commit_files(head, {path: b"x"}, "evil", AUTHOR, when=WHEN)
    with pytest.raises(GitError):
        remote.commit_files(head, {path: None}, "evil", AUTHOR, when=WHEN)


def test_list_files_is_recursive_and_sorted(remote: Pygit2OpsRepo) -> None:
    head = main_of(remote)
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
    seed = main_of(remote)
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
    seed = main_of(remote)
    one = remote.commit_files(seed, {"one": b"1"}, "one", AUTHOR, when=WHEN)
    side = remote.commit_files(seed, {"side": b"s"}, "side", AUTHOR, when=WHEN)
    merged = remote.merge(one, side, "merge side", AUTHOR, when=WHEN)
    assert remote.log_first_parent(merged, 10) == (merged, one, seed)
    assert remote.log_first_parent(merged, 2) == (merged, one)
    assert remote.log_first_parent(merged, 0) == ()


def test_commit_info_reports_metadata(remote: Pygit2OpsRepo) -> None:
    seed = main_of(remote)
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
    seed = main_of(remote)
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
    seed = main_of(remote)
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
    seed = main_of(remote)
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
        remote.changed_files(main_of(remote), lonely)


def test_large_directories_read_correctly_across_commits(remote: Pygit2OpsRepo) -> None:
    files: dict[str, bytes | None] = {
        f"knowledge/{i:03}.md": b"%d\n" % i for i in range(300)
    }
    big = remote.commit_files(main_of(remote), files, "big", AUTHOR, when=WHEN)
    head = remote.commit_files(
        big, {"knowledge/150.md": b"x"}, "one", AUTHOR, when=WHEN
    )
    assert remote.changed_files(big, head) == (
        ChangedFile("knowledge/150.md", ChangeKind.MODIFIED),
    )
    assert remote.list_files(head, "knowledge") == tuple(sorted(files))
    # parsed trees are cached by id; each commit still sees its own content
    assert remote.read_file(big, "knowledge/150.md") == b"150\n"
    assert remote.read_file(head, "knowledge/150.md") == b"x"
    assert remote.read_file(head, "knowledge/299.md") == b"299\n"


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
    seed = main_of(remote)
    first = remote.commit_files(seed, {"x": b"x"}, "m", AUTHOR, when=WHEN)
    again = remote.commit_files(seed, {"x": b"x"}, "m", AUTHOR, when=WHEN)
    later = remote.commit_files(seed, {"x": b"x"}, "m", AUTHOR, when=WHEN + 1)
    assert first == again != later


def test_commit_files_creates_and_prunes_intermediate_directories(
    remote: Pygit2OpsRepo,
) -> None:
    seed = main_of(remote)
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
        remote.commit_files(main_of(remote), changes, "clash", AUTHOR, when=WHEN)


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
            main_of(remote), {"x": b"x"}, "m", Identity("a\nb", "<x>"), when=WHEN
        )


# -- merge -----------------------------------------------------------------------


def test_merge_never_fast_forwards(remote: Pygit2OpsRepo) -> None:
    seed = main_of(remote)
    proposal = remote.commit_files(
        seed, {"vault/actions/n.toml": b"n"}, "p", AUTHOR, when=WHEN
    )
    merged = remote.merge(seed, proposal, "Merge vault/n", AUTHOR, when=WHEN)
    info = remote.commit_info(merged)
    assert info.parents == (seed, proposal)
    assert info.message == "Merge vault/n"
    assert remote.read_file(merged, "vault/actions/n.toml") == b"n"
    assert main_of(remote) == seed


def test_merge_combines_diverged_histories(remote: Pygit2OpsRepo) -> None:
    seed = main_of(remote)
    base = remote.commit_files(seed, {"README.md": b"ops v2\n"}, "b", AUTHOR, when=WHEN)
    head = remote.commit_files(
        seed, {"vault/actions/n.toml": b"n"}, "h", AUTHOR, when=WHEN
    )
    merged = remote.merge(base, head, "merge", AUTHOR, when=WHEN)
    assert remote.read_file(merged, "README.md") == b"ops v2\n"
    assert remote.read_file(merged, "vault/actions/n.toml") == b"n"


def test_merge_conflict_raises_naming_the_paths(remote: Pygit2OpsRepo) -> None:
    seed = main_of(remote)
    base = remote.commit_files(seed, {"README.md": b"ours\n"}, "b", AUTHOR, when=WHEN)
    head = remote.commit_files(seed, {"README.md": b"theirs\n"}, "h", AUTHOR, when=WHEN)
    with pytest.raises(GitError, match=r"README\.md"):
        remote.merge(base, head, "merge", AUTHOR, when=WHEN)


def test_merge_of_an_already_merged_head_raises(remote: Pygit2OpsRepo) -> None:
    seed = main_of(remote)
    later = remote.commit_files(seed, {"x": b"x"}, "later", AUTHOR, when=WHEN)
    with pytest.raises(GitError, match="already contains"):
        remote.merge(later, seed, "merge", AUTHOR, when=WHEN)


def test_merge_of_unrelated_histories_raises(remote: Pygit2OpsRepo) -> None:
    lonely = remote.commit_files(None, {"x": b"x"}, "unrelated", AUTHOR, when=WHEN)
    with pytest.raises(GitError, match="unrelated"):
        remote.merge(main_of(remote), lonely, "merge", AUTHOR, when=WHEN)
