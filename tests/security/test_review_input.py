"""Review of I4 (links) and I5 (bounded parsing), 2026-12: findings R-1..R-10, all fixed.

Each test builds the attack for real (raw git objects written to the object
database, real dispatcher ticks in local mode or against the fake Forgejo) and
asserts the *safe* behaviour. They were strict xfails while the findings were
open, and each failed on the code before its fix; see
docs/security-review-2026-12-input.md.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pygit2
import pytest

from opsvault.app import build_app
from opsvault.changes import classify_ref_change
from opsvault.cli.init import create_ops_repo
from opsvault.config import load_settings
from opsvault.dispatcher.tick import tick
from opsvault.git import worktree
from opsvault.git.base import Identity
from opsvault.git.pygit2_repo import Pygit2OpsRepo
from opsvault.vault.tier import Tier
from tests.dispatcher.harness import REPO, Harness
from tests.security.test_links import FILE, propose

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
TREE_MODE = 0o040000


# -- raw git objects: what a proposer can push, without libgit2's checks ----------------


def _sort_key(entry: tuple[int, bytes, bytes]) -> bytes:
    mode, name, _oid = entry
    # git orders tree entries by name, a directory as if it ended in '/'.
    return name + b"/" if mode & 0o170000 == TREE_MODE else name


def write_raw_tree(
    repo: pygit2.Repository, entries: list[tuple[int, bytes, bytes]]
) -> pygit2.Oid:
    """Write a tree object from (mode, name, raw 20-byte id) entries, modes written as given."""
    body = b"".join(
        b"%o %s\0%s" % (mode, name, oid)
        for mode, name, oid in sorted(entries, key=_sort_key)
    )
    return repo.odb.write(pygit2.enums.ObjectType.TREE, body)


def tree_entries(
    repo: pygit2.Repository, tree: pygit2.Tree
) -> list[tuple[int, bytes, bytes]]:
    return [(int(e.filemode), (e.name or "").encode(), e.id.raw) for e in tree]


def with_entry(
    repo: pygit2.Repository,
    tree: pygit2.Tree,
    path: str,
    mode: int,
    oid: pygit2.Oid,
) -> pygit2.Oid:
    """Return a copy of *tree* with the entry at *path* set to (*mode*, *oid*), written raw."""
    head, _, rest = path.partition("/")
    entries = [e for e in tree_entries(repo, tree) if e[1] != head.encode()]
    if rest:
        sub = tree[head] if head in tree else None  # noqa: SIM401 (pygit2.Tree has no .get)
        subtree = repo[sub.id].peel(pygit2.Tree) if sub is not None else None
        if subtree is None:
            empty = write_raw_tree(repo, [])
            subtree = repo[empty].peel(pygit2.Tree)
        entries.append(
            (TREE_MODE, head.encode(), with_entry(repo, subtree, rest, mode, oid).raw)
        )
    else:
        entries.append((mode, head.encode(), oid.raw))
    return write_raw_tree(repo, entries)


def commit_tree(
    repo: pygit2.Repository, parent: str, tree: pygit2.Oid, author: str = "dev-agent"
) -> str:
    sig = pygit2.Signature(author, f"{author}@example.invalid", 0, 0)
    return str(
        repo.create_commit(
            None, sig, sig, "proposer commit", tree, [pygit2.Oid(hex=parent)]
        )
    )


def raw_proposal(
    repo: pygit2.Repository, parent: str, path: str, mode: int, content: bytes
) -> str:
    """A commit on *parent* whose tree has *content* at *path* with git mode *mode*, verbatim."""
    base = repo[pygit2.Oid(hex=parent)].peel(pygit2.Commit).tree
    tree = with_entry(repo, base, path, mode, repo.create_blob(content))
    return commit_tree(repo, parent, tree)


# -- local mode ------------------------------------------------------------------------------


@pytest.fixture
def ops(tmp_path: Path) -> Path:
    create_ops_repo(tmp_path / "ops", when=0)
    return tmp_path / "ops"


def main_id(ops: Path) -> str:
    return str(pygit2.Repository(str(ops)).references["refs/heads/main"].target)


def push_branch(ops: Path, branch: str, commit: str) -> None:
    pygit2.Repository(str(ops)).references.create(
        f"refs/heads/vault/{branch}", pygit2.Oid(hex=commit), force=True
    )


def local_tick(ops: Path, tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir(exist_ok=True)
    environ = {
        "OPSVAULT_FORGE_PATH": str(ops),
        "OPSVAULT_FORGE_OPERATOR": "alice",
        "OPSVAULT_SECRETS_DIR": str(secrets),
        "OPSVAULT_STATE_DIR": str(tmp_path / "state"),
    }
    tick(build_app(load_settings(environ, None), environ), NOW)


# -- a symlink written with a non-canonical mode is a symlink to git, a file to the floor --


# git reads any mode whose type bits are 120000 as a symlink (canon_mode in git's
# cache.h; libgit2's checkout tests S_ISLNK). libgit2's tree entry normalises
# 120755 to 100755 and its diff reports the raw 0o120755: neither is SYMLINK_MODE.
ODD_LINK_MODES = [0o120755, 0o120644, 0o120777]


@pytest.mark.parametrize("mode", ODD_LINK_MODES, ids=oct)
def test_r1_a_symlink_with_a_non_canonical_mode_hits_the_floor(
    ops: Path, mode: int
) -> None:
    repo = pygit2.Repository(str(ops))
    push_branch(
        ops,
        "link",
        raw_proposal(repo, main_id(ops), "knowledge/d", mode, b"../.git/hooks"),
    )
    verdict = classify_ref_change(Pygit2OpsRepo.open(ops), "main", "vault/link").verdict
    assert verdict.tier is Tier.HIGH and verdict.protected


def test_r1_the_local_dispatcher_merges_a_non_canonical_symlink_into_the_work_tree(
    ops: Path, tmp_path: Path
) -> None:
    repo = pygit2.Repository(str(ops))
    push_branch(
        ops,
        "link",
        raw_proposal(repo, main_id(ops), "knowledge/d", 0o120755, b"../.git/hooks"),
    )
    local_tick(ops, tmp_path)
    # Today: classified low, merged, and checked out as a real symlink into .git/hooks.
    knowledge = pygit2.Repository(str(ops)).revparse_single("main:knowledge")
    assert "d" not in knowledge.peel(pygit2.Tree)
    assert not (ops / "knowledge" / "d").is_symlink()


def test_r1_the_dispatcher_merges_a_non_canonical_symlink_on_forgejo(
    vault: Harness,
) -> None:
    store = vault.forge.repo(REPO).git
    main = store.tip("main")
    assert main is not None
    with store.lock:
        head = raw_proposal(store.repo, main, "knowledge/d", 0o120755, b"../.git/hooks")
        store.set_ref("refs/heads/link", head)
    vault.forge.open_pull(REPO, head="link", title="link", author="dev-bot")
    vault.tick()
    tree = store.repo.revparse_single("refs/heads/main:knowledge").peel(pygit2.Tree)
    assert "d" not in tree, f"merged: mode {tree['d'].filemode:o} (git sees a symlink)"


# -- a few KiB of shared subtrees make a proposal of any number of files ------------


def tree_bomb(repo: pygit2.Repository, width: int, levels: int) -> pygit2.Oid:
    """A tree holding width**levels files, written as *levels* trees of *width* entries each."""
    node_mode, node = 0o100644, repo.create_blob(b"x\n")
    for _ in range(levels):
        node = write_raw_tree(
            repo, [(node_mode, b"%04d" % i, node.raw) for i in range(width)]
        )
        node_mode = TREE_MODE
    return node


def test_r2_a_tree_bomb_is_refused_before_every_path_is_materialised(ops: Path) -> None:
    # Two trees of 320 entries (~20 KiB of objects) are 102,400 changed files; three
    # trees of 1,000 entries (~80 KiB) would be 10**9 (measured: 10**6 files took
    # 21 s and 750 MB in classify_ref_change alone; the tick and local-mode checkout
    # then write every one of them). Nothing bounds the number of changed paths.
    repo = pygit2.Repository(str(ops))
    parent = main_id(ops)
    base = repo[pygit2.Oid(hex=parent)].peel(pygit2.Commit).tree
    bomb = tree_bomb(repo, 320, 2)
    push_branch(
        ops,
        "bomb",
        commit_tree(
            repo, parent, with_entry(repo, base, "knowledge/bomb", TREE_MODE, bomb)
        ),
    )
    verdict = classify_ref_change(Pygit2OpsRepo.open(ops), "main", "vault/bomb").verdict
    assert verdict.refused, (
        f"classified {len(verdict.files)} files as {verdict.tier.label}"
    )


# -- a path the file system cannot hold, in a low proposal (local mode) -------


def git_out(ops: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ops), *args], capture_output=True, text=True, check=True
    ).stdout


LONG_NAME = "knowledge/" + "n" * 300  # one component over NAME_MAX (255 bytes)


def test_r3_a_file_name_over_name_max_never_makes_the_tick_raise(
    ops: Path, tmp_path: Path
) -> None:
    # unsafe_write calls Path.is_symlink(), which raises ENAMETOOLONG (not swallowed
    # like ENOENT); the OSError escaped LocalForge.merge and tick() after main moved,
    # so the rest of the PR phase and the whole fire phase of that tick never ran.
    # Fixed by per-PR isolation (I5, sec-merge): an `error` decision, the tick goes on.
    propose(ops, "long", {LONG_NAME: (b"x\n", FILE)})
    local_tick(ops, tmp_path)


def _deep_path_proposal(ops: Path) -> None:
    """Propose knowledge/deep/<250 x 'd'>/... 17 levels deep: past PATH_MAX (4096) on checkout.

    Few, long components rather than thousands of short ones, so that whatever a
    partial checkout leaves behind is still removable by shutil.rmtree.
    """
    repo = pygit2.Repository(str(ops))
    node = write_raw_tree(repo, [(0o100644, b"f", repo.create_blob(b"x\n").raw)])
    for _ in range(17):
        node = write_raw_tree(repo, [(TREE_MODE, b"d" * 250, node.raw)])
    parent = main_id(ops)
    base = repo[pygit2.Oid(hex=parent)].peel(pygit2.Commit).tree
    push_branch(
        ops,
        "deep",
        commit_tree(
            repo, parent, with_entry(repo, base, "knowledge/deep", TREE_MODE, node)
        ),
    )


def test_r4_a_low_proposal_cannot_desync_the_operators_work_tree(
    ops: Path, tmp_path: Path
) -> None:
    # A 4 KiB+ path is "low" (knowledge/**); the dispatcher merges it, libgit2's checkout
    # fails with ENAMETOOLONG and the work tree is left behind: HEAD (main) moved, the
    # index did not. From then on every sync refuses (index != old main) and `git
    # status` shows every later merge as a staged deletion, which the operator's next
    # plain `git commit` reverts on main (records, fired results, admin merges).
    _deep_path_proposal(ops)
    local_tick(ops, tmp_path)
    propose(ops, "later", {"knowledge/later.md": (b"merged after\n", FILE)})
    local_tick(ops, tmp_path)
    assert "knowledge/later.md" in git_out(ops, "ls-tree", "-r", "--name-only", "main")
    status = git_out(ops, "status", "--porcelain")
    assert status == "", status[:300]


# -- commit objects are read whole, and LocalForge keeps the message forever ------------


def test_r5_a_huge_commit_message_is_never_kept_whole(
    ops: Path, tmp_path: Path
) -> None:
    # Blob sizes are checked from the object header (I5); commits are not. LocalForge
    # copies the proposal's whole message into the PR body in .git/opsvault/forge.json,
    # which every later tick reads and rewrites. Measured: a 64 MiB message (~270 KiB of
    # objects) made one tick take 14 s and +200 MB RSS and left a 64 MiB forge.json.
    repo = pygit2.Repository(str(ops))
    parent = main_id(ops)
    base = repo[pygit2.Oid(hex=parent)].peel(pygit2.Commit).tree
    tree = with_entry(repo, base, "knowledge/a.md", 0o100644, repo.create_blob(b"a\n"))
    sig = pygit2.Signature("dev-agent", "dev-agent@example.invalid", 0, 0)
    message = "a note\n\n" + "b" * (8 << 20)
    head = repo.create_commit(None, sig, sig, message, tree, [pygit2.Oid(hex=parent)])
    push_branch(ops, "msg", str(head))
    local_tick(ops, tmp_path)
    state = ops / ".git" / "opsvault" / "forge.json"
    assert state.stat().st_size < 1 << 20, f"forge.json is {state.stat().st_size} bytes"


# -- a param pattern with nested quantifiers on main lets a proposer hang every tick -----

SLOW_FORMULA = b"""name = "tagger"
description = "tag a release"
blast_radius = "low"
[params.tag]
type = "string"
pattern = "^([a-z0-9]+)+$"
required = true
[[steps]]
name = "tag"
run = ["{python}", "-c", "print(1)", "{params.tag}"]
"""

CLASSIFY_IN_A_CHILD = """
import sys
from opsvault.changes import classify_ref_change
from opsvault.git.pygit2_repo import Pygit2OpsRepo
verdict = classify_ref_change(Pygit2OpsRepo.open(sys.argv[1]), "main", "vault/tag-1").verdict
print(verdict.tier.label, verdict.refused)
"""


def test_r6_a_proposer_cannot_hang_classification_with_a_backtracking_param(
    ops: Path,
) -> None:
    # The pattern is the admin's (formulas are floor-protected), the value the
    # proposer's. Python's re backtracks 2**n times on n characters then a mismatch:
    # measured 0.7 s at 24, 5.7 s at 26; 40 characters never finish. No timeout, no
    # length cap (only the 64 KiB file) and no check of the pattern's shape exist,
    # and the same assessment runs in every tick, in `vault validate` and `vault classify`.
    opsrepo = Pygit2OpsRepo.open(ops)
    admin = Identity("alice", "alice@example.invalid")
    main = opsrepo.commit_files(
        opsrepo.resolve("main"),
        {"vault/formulas/tagger.toml": SLOW_FORMULA},
        "formula",
        admin,
    )
    opsrepo.update_ref("refs/heads/main", main, opsrepo.resolve("main"))
    action = 'formula = "tagger"\ncontext = "release"\nparams = { tag = "%s!" }\n' % (
        "a" * 40
    )
    propose(ops, "tag-1", {"vault/actions/tag-1.toml": (action.encode(), FILE)})
    try:
        done = subprocess.run(
            [sys.executable, "-c", CLASSIFY_IN_A_CHILD, str(ops)],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("classification of a 45-byte param did not finish in 10 s")
    assert done.returncode == 0, done.stderr


# -- the work-tree sync checks the disk, then libgit2 writes later (TOCTOU) ---------------


def test_r7_a_directory_swapped_for_a_symlink_after_the_check_is_not_written_through(
    ops: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another local process (anything that can write the operator's checkout) swaps
    # knowledge/sub for a symlink between unsafe_write's lstat walk and libgit2's
    # checkout_tree(FORCE), which follows the link. The window is made
    # deterministic here by doing the swap right after the check returns.
    outside = tmp_path / "outside"
    outside.mkdir()
    propose(ops, "one", {"knowledge/sub/a.md": (b"a\n", FILE)})
    local_tick(ops, tmp_path)
    assert (ops / "knowledge" / "sub" / "a.md").is_file()
    checked = worktree.unsafe_write

    def check_then_swap(repo: pygit2.Repository, paths: set[str]) -> str:
        verdict = checked(repo, paths)
        sub = ops / "knowledge" / "sub"
        if sub.is_dir() and not sub.is_symlink():
            (sub / "a.md").rename(outside / "a.md")
            sub.rmdir()
            sub.symlink_to(outside)
        return verdict

    monkeypatch.setattr(worktree, "unsafe_write", check_then_swap)
    propose(ops, "two", {"knowledge/sub/b.md": (b"written through the link\n", FILE)})
    local_tick(ops, tmp_path)
    assert not (outside / "b.md").exists()


# -- no size bound on the other files of a proposal (local-mode checkout writes them) ---


def test_r8_a_low_proposal_cannot_write_a_blob_bomb_into_the_work_tree(
    ops: Path, tmp_path: Path
) -> None:
    # Only action files are size-checked (64 KiB, from the header). A 64 MiB file of
    # zeros (~64 KiB compressed) under knowledge/ is low, merged, and checked out whole
    # into the operator's work tree; 4 GiB costs the proposer a 4 MiB push.
    repo = pygit2.Repository(str(ops))
    parent = main_id(ops)
    base = repo[pygit2.Oid(hex=parent)].peel(pygit2.Commit).tree
    blob = repo.create_blob(bytes(64 << 20))
    push_branch(
        ops,
        "zeros",
        commit_tree(
            repo, parent, with_entry(repo, base, "knowledge/zeros.bin", 0o100644, blob)
        ),
    )
    local_tick(ops, tmp_path)
    written = ops / "knowledge" / "zeros.bin"
    assert not written.exists(), f"{written.stat().st_size} bytes checked out"


# -- the classifier grades paths that git itself refuses as ordinary files ------------


@pytest.mark.parametrize(
    "path",
    [
        "knowledge/.git/hooks/pre-commit",
        "knowledge/.GIT/config",
        "knowledge/../vault/policy.toml",
    ],
)
def test_r9_a_path_git_refuses_to_check_out_is_refused_by_the_classifier(
    ops: Path, path: str
) -> None:
    # check_repo_path refuses '.git' and '..' components for reads, but tree entries a
    # proposer writes are classified by their path string: these are "low"
    # (knowledge/**). Local mode is saved only because libgit2's merge refuses the
    # path; a merge engine that does not (or a fast-forward) lands them on main.
    repo = pygit2.Repository(str(ops))
    parent = main_id(ops)
    base = repo[pygit2.Oid(hex=parent)].peel(pygit2.Commit).tree
    if ".." in path:  # one entry of knowledge/ whose name holds the '..' and '/'
        knowledge = base["knowledge"].peel(pygit2.Tree)
        entries = tree_entries(repo, knowledge)
        name = path.removeprefix("knowledge/").encode()
        entries.append((0o100644, name, repo.create_blob(b"x").raw))
        tree = with_entry(
            repo, base, "knowledge", TREE_MODE, write_raw_tree(repo, entries)
        )
    else:
        tree = with_entry(repo, base, path, 0o100755, repo.create_blob(b"#!/bin/sh\n"))
    push_branch(ops, "odd", commit_tree(repo, parent, tree))
    verdict = classify_ref_change(Pygit2OpsRepo.open(ops), "main", "vault/odd").verdict
    assert verdict.refused or verdict.protected, verdict.tier.label


# -- `vault plan` reads the work tree's prerequisites.md whole, through links ----------

PLAN_IN_A_CHILD = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))  # fail fast, not the host
from opsvault.cli import cli
sys.argv = ["vault", "plan", "--ops", sys.argv[1], "--today", "2026-11-21"]
cli()
"""


def test_r10_vault_plan_never_reads_a_linked_prerequisites_file_whole(
    ops: Path, tmp_path: Path
) -> None:
    # Before R-1 was fixed, a low proposal turned prerequisites.md into a symlink (mode
    # 120755) to /dev/zero and the dispatcher merged and checked it out. The floor now
    # stops that, but a link can still reach the work tree (an admin merge, any local
    # process): the operator's next `vault plan` compared the work tree's file with main
    # using Path.read_bytes(), unbounded and following the link, reading /dev/zero until
    # memory ran out.
    repo = pygit2.Repository(str(ops))
    head = raw_proposal(repo, main_id(ops), "prerequisites.md", 0o120755, b"/dev/zero")
    push_branch(ops, "plan", head)
    local_tick(ops, tmp_path)
    # not merged by the dispatcher.
    assert not (ops / "prerequisites.md").is_symlink()
    (ops / "prerequisites.md").unlink()
    (ops / "prerequisites.md").symlink_to("/dev/zero")
    git_out(ops, "add", "prerequisites.md")
    git_out(
        ops, "-c", "user.name=alice", "-c", "user.email=a@x", "commit", "-qm", "link"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", PLAN_IN_A_CHILD, str(ops)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("vault plan did not finish in 60 s")
    assert done.returncode in (0, 1), (done.returncode, done.stderr[-400:])
    assert "Traceback" not in done.stderr and "MemoryError" not in done.stderr
