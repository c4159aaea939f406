"""Which commit a name means (git/revisions.py): ids, then remote-tracking refs, then branches; never a tag guessed."""

from __future__ import annotations

from pathlib import Path

import pygit2
import pytest

from opsvault.errors import GitError
from opsvault.git.pygit2_repo import Pygit2OpsRepo
from tests.conftest import SIGNATURE
from tests.git.conftest import AUTHOR, WHEN, CloneOf, main_of


def test_resolve_accepts_branches_refs_shas_and_head(remote: Pygit2OpsRepo) -> None:
    head = main_of(remote)
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
    seed = main_of(remote)
    child = remote.commit_files(seed, {"x": b"x"}, "x", AUTHOR, when=WHEN)
    remote.update_ref("refs/heads/main", child, seed)
    local = clone_of("local")
    assert remote.resolve("main~1") == remote.resolve("main^") == seed
    assert local.resolve("origin/main^1") == seed
    assert local.resolve(f"{child[:12]}~1") == seed


def test_resolve_cannot_be_shadowed_by_branches_or_tags(
    remote: Pygit2OpsRepo, tmp_path: Path
) -> None:
    seed = main_of(remote)
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


def test_resolve_peels_annotated_tags_named_in_full(remote: Pygit2OpsRepo) -> None:
    seed = main_of(remote)
    raw = pygit2.Repository(str(remote.path))
    raw.create_tag(
        "v1", pygit2.Oid(hex=seed), pygit2.enums.ObjectType.COMMIT, SIGNATURE, "v1"
    )
    assert remote.resolve("refs/tags/v1") == seed
    with pytest.raises(GitError):
        remote.resolve("v1")  # tags are never guessed from a bare name
