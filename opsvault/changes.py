"""Classify a git change of the ops repo the way the dispatcher classifies a pull request.

Shared by `vault classify --base/--head`, `vault demo` and `vault approve`: the
change is what *head* brings relative to its merge base with *base*; policy,
formulas and used ids come from *base* only; new action files are read at *head*.
"""

from __future__ import annotations

from dataclasses import dataclass

from opsvault.errors import FileTooLargeError, InvalidFileError
from opsvault.git.base import Identity, OpsRepo
from opsvault.policy.change import ChangeKind
from opsvault.policy.classify import (
    BaseState,
    ChangeVerdict,
    classify_change,
    is_action_path,
)
from opsvault.snapshot import CommitSnapshot, load_base_state
from opsvault.vault.schema import MAX_FILE_BYTES


@dataclass(frozen=True, slots=True)
class ClassifiedChange:
    """A verdict and the exact commits it was computed at."""

    base_commit: str
    head_commit: str
    verdict: ChangeVerdict


def classify_ref_change(repo: OpsRepo, base: str, head: str) -> ClassifiedChange:
    """Return the verdict for what *head* changes relative to *base*, with both commits.

    Raise GitError if a ref is unknown or the histories are unrelated, and
    PolicyError (or another InvalidFileError) if the base's policy is invalid.
    """
    base_commit, head_commit = repo.resolve(base), repo.resolve(head)
    state = load_base_state(CommitSnapshot(repo, base_commit))
    return ClassifiedChange(
        base_commit,
        head_commit,
        classify_commits(repo, base_commit, head_commit, state),
    )


MERGE_PROBE = Identity("opsvault", "opsvault@localhost")


def merged_result(repo: OpsRepo, base_commit: str, head_commit: str) -> str:
    """Return a commit whose tree is what merging *head_commit* into *base_commit* yields.

    The merge is computed (recursively over every merge base, as the forge
    merges), written as an unreferenced commit object and never published.
    When the base already contains the head, the base itself is the result.
    Raise GitError on conflicts: such a change cannot be merged as it is.
    """
    if repo.is_ancestor(head_commit, base_commit):
        return base_commit
    if repo.is_ancestor(base_commit, head_commit):
        return head_commit  # the usual case: the head is based on the current base; its tree is the result
    return repo.merge(
        base_commit,
        head_commit,
        "opsvault: what this merge would do",
        MERGE_PROBE,
        when=0,
    )


def classify_commits(
    repo: OpsRepo, base_commit: str, head_commit: str, state: BaseState
) -> ChangeVerdict:
    """Return the verdict on what merging *head_commit* into *base_commit* would change.

    The change is the difference between *base_commit* and the merge result,
    not a diff from one merge base: with several merge bases (criss-cross
    history) a single-base diff can hide files the real merge restores or
    deletes (security review SR-1). *state* must be the trusted inputs read at
    *base_commit*; the proposed action files are read from the merge result.
    """
    result = merged_result(repo, base_commit, head_commit)
    return classify_landed(repo, base_commit, result, state)


def classify_landed(
    repo: OpsRepo, parent: str, commit: str, state: BaseState
) -> ChangeVerdict:
    """Return the verdict on exactly what *commit* changes relative to *parent* (one of its parents)."""
    changes = repo.changed_files(parent, commit)
    head_files: dict[str, bytes | InvalidFileError] = {}
    for c in changes:
        if not is_action_path(c.path) or c.kind is ChangeKind.DELETED:
            continue
        try:
            # Bounded from the blob's header: an oversized proposal is never read (I5).
            content = repo.read_file(commit, c.path, max_bytes=MAX_FILE_BYTES)
        except FileTooLargeError as exc:
            head_files[c.path] = exc
            continue
        if content is not None:
            head_files[c.path] = content
    return classify_change(changes, head_files, state)
