"""Merge integrity's checks (dispatcher/integrity.py), tested where they live: on a local git repo.

``check_merge`` and ``find_mismatches`` read commits only, so the flow tests
in tests/security/test_merge_integrity.py need the forge just for what the
forge does (merging onto a main that moved); each way a merge can differ
from its mark is tried here, on merge commits built by hand, in milliseconds.
"""

from __future__ import annotations

from pathlib import Path

import pygit2
import pytest

from opsvault.changes import change_manifest
from opsvault.dispatcher.integrity import (
    check_merge,
    find_mismatches,
    merge_message,
)
from opsvault.git.base import Identity
from opsvault.git.pygit2_repo import Pygit2OpsRepo

WHO = Identity("opsvault-test", "test@example.invalid")
WHEN = 1_700_000_000


class Ops:
    """A bare repo with a main and a proposal branch, and merges of it made to order."""

    def __init__(self, path: Path) -> None:
        self.repo = Pygit2OpsRepo.init(path, bare=True)
        self.raw = pygit2.Repository(str(path))
        self.main = self.repo.commit_files(
            None,
            {"vault/policy.toml": b"schema = 1\n", "README.md": b"ops\n"},
            "seed",
            WHO,
            when=WHEN,
        )
        self.head = self.repo.commit_files(
            self.main,
            {"vault/actions/a-1.toml": b'formula = "noop"\n', "README.md": None},
            "propose a-1",
            WHO,
            when=WHEN,
        )
        self.classified = change_manifest(self.repo, self.main, self.head)

    def mark(self, pr: int = 7) -> str:
        return merge_message(pr, "low", self.main, self.classified)

    def merge(
        self,
        *,
        message: str | None = None,
        extra: dict[str, bytes | None] | None = None,
        parents: tuple[str, ...] | None = None,
        first: str | None = None,
    ) -> str:
        """Return a merge of the head into *first* (main), its tree changed by *extra*."""
        base = first or self.main
        tree_of = self.repo.commit_files(self.head, extra or {}, "tree", WHO, when=WHEN)
        tree = self.raw[tree_of].peel(pygit2.Tree).id
        signature = pygit2.Signature(WHO.name, WHO.email, WHEN, 0)
        oid = self.raw.create_commit(
            None,
            signature,
            signature,
            self.mark() if message is None else message,
            tree,
            [pygit2.Oid(hex=p) for p in (parents or (base, self.head))],
        )
        return str(oid)


@pytest.fixture
def ops(tmp_path: Path) -> Ops:
    return Ops(tmp_path / "ops.git")


def test_a_merge_that_landed_as_marked_passes(ops: Ops) -> None:
    merge = ops.merge()
    assert check_merge(ops.repo, merge, ops.head, 7) is None
    assert check_merge(ops.repo, merge, ops.head, 7, ops.classified) is None
    assert find_mismatches(ops.repo, merge, ops.main) == []


@pytest.mark.parametrize(
    "extra, problem",
    [
        (
            {"vault/policy.toml": b"schema = 1\n[formulas]\nnoop = 'low'\n"},
            "'vault/policy.toml': changed by the merge but never classified",
        ),
        (
            {"vault/actions/a-1.toml": b'formula = "shell"\n'},
            "'vault/actions/a-1.toml': landed as mode 100644 blob",
        ),
        (
            {"README.md": b"ops\n"},  # the deletion did not land
            "'README.md': classified but not changed by the merge",
        ),
    ],
    ids=["smuggled path", "other blob", "change dropped"],
)
def test_every_difference_from_the_classified_change_is_named(
    ops: Ops, extra: dict[str, bytes | None], problem: str
) -> None:
    merge = ops.merge(extra=extra)
    by_mark = check_merge(ops.repo, merge, ops.head, 7)
    by_manifest = check_merge(ops.repo, merge, ops.head, 7, ops.classified)
    for mismatch in (by_mark, by_manifest):
        assert mismatch is not None and mismatch.pr == 7
        assert any(p.startswith(problem) for p in mismatch.problems), mismatch
    assert find_mismatches(ops.repo, merge, ops.main) == [by_mark]


def test_a_merge_of_another_head_or_with_one_parent_is_a_mismatch(ops: Ops) -> None:
    other = ops.repo.commit_files(
        ops.main, {"vault/actions/a-1.toml": b"x\n"}, "other", WHO, when=WHEN
    )
    for parents in ((ops.main, other), (ops.main,), (ops.main, ops.head, other)):
        mismatch = check_merge(ops.repo, ops.merge(parents=parents), ops.head, 7)
        assert mismatch is not None
        assert mismatch.problems[0].startswith("its parents are"), mismatch


def test_without_a_mark_nothing_proves_what_was_classified(ops: Ops) -> None:
    unmarked = ops.merge(message="Merge pull request 'x' (#7)\n")
    mismatch = check_merge(ops.repo, unmarked, ops.head, 7)
    assert mismatch is not None
    assert mismatch.problems == ("its message has no valid Vault-Classified line",)
    # A human merge has no mark: the walk leaves it to the fire-time check (SR-1).
    assert find_mismatches(ops.repo, unmarked, ops.main) == []


def test_a_mark_whose_base_cannot_be_recomputed_says_so(ops: Ops) -> None:
    forged = ops.merge(
        message=merge_message(7, "low", "f" * 40, ops.classified),
        extra={"vault/policy.toml": b"x\n"},
    )
    mismatch = check_merge(ops.repo, forged, ops.head, 7)
    assert mismatch is not None
    assert mismatch.problems[0].startswith("the classified change cannot be")


def test_the_walk_reports_bad_merges_oldest_first_and_stops_at_since(
    ops: Ops,
) -> None:
    bad1 = ops.merge(extra={"x.md": b"1\n"})
    # One parent: not a merge, whatever its message says; the walk passes it by.
    plain = ops.repo.commit_files(bad1, {"z.md": b"z\n"}, ops.mark(), WHO, when=WHEN)
    bad2 = ops.merge(first=plain, extra={"y.md": b"2\n"})
    found = find_mismatches(ops.repo, bad2, ops.main)
    assert [m.merge_commit for m in found] == [bad1, bad2]
    assert find_mismatches(ops.repo, bad2, plain) == found[1:]  # since is excluded
    assert find_mismatches(ops.repo, bad2, bad1) == found[1:]
    assert find_mismatches(ops.repo, bad2, bad2) == []
    assert find_mismatches(ops.repo, bad2, ops.main, limit=1) == found[1:]
