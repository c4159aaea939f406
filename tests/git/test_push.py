"""Pygit2OpsRepo refs and remotes: local and remote compare-and-swap, fetch, branches.

Real git against bare repositories in tmp_path; never mocked (ADR 0002)."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from opsvault.errors import GitError, PushRejected
from opsvault.git.pygit2_repo import Pygit2OpsRepo
from tests.conftest import init_repo
from tests.git.conftest import AUTHOR, WHEN

CloneOf = Callable[[str], Pygit2OpsRepo]


def _main(repo: Pygit2OpsRepo) -> str:
    return repo.resolve("refs/heads/main")


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


def test_push_expecting_a_branch_that_does_not_exist_is_rejected(
    remote: Pygit2OpsRepo, clone_of: CloneOf
) -> None:
    local = clone_of("local")
    seed = local.resolve("origin/main")
    child = local.commit_files(seed, {"x": b"x"}, "x", AUTHOR, when=WHEN)
    with pytest.raises(PushRejected):
        local.push("vault/never-created", child, seed)
    assert remote.branches("vault/") == {}


def test_fetch_from_an_unreachable_remote_is_a_git_error(
    clone_of: CloneOf, tmp_path: Path
) -> None:
    local = clone_of("local")
    subprocess.run(
        [
            "git",
            f"--git-dir={local.path}",
            "remote",
            "add",
            "gone",
            str(tmp_path / "gone"),
        ],
        check=True,
    )
    with pytest.raises(GitError) as info:
        local.fetch("gone")
    assert info.value.where == "gone"


def test_transport_env_reaches_git_subprocesses(tmp_path: Path) -> None:
    # Credentials travel as GIT_CONFIG_* in the environment; prove the variables
    # reach git by setting a configuration that makes a file:// fetch fail.
    init_repo(tmp_path / "remote", {"a.txt": "x"})
    url = (tmp_path / "remote").as_uri()
    plain = Pygit2OpsRepo.clone(url, tmp_path / "plain.git", bare=True)
    plain.fetch()
    deny = {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "protocol.file.allow",
        "GIT_CONFIG_VALUE_0": "never",
    }
    with pytest.raises(GitError):
        Pygit2OpsRepo.clone(url, tmp_path / "denied.git", bare=True, transport_env=deny)
    reopened = Pygit2OpsRepo.open(tmp_path / "plain.git", transport_env=deny)
    with pytest.raises(GitError):
        reopened.fetch()
    assert "GIT_CONFIG" not in repr(reopened)
