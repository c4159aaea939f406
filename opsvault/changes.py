"""Classify a git change of the ops repo the way the dispatcher classifies a pull request.

Shared by `vault classify --base/--head`, `vault demo` and `vault approve`: the
change is what *head* brings relative to its merge base with *base*; policy,
formulas and used ids come from *base* only; new action files are read at *head*.
"""

from __future__ import annotations

from dataclasses import dataclass

from opsvault.git.base import OpsRepo
from opsvault.policy.classify import (
    BaseState,
    ChangeVerdict,
    classify_change,
    is_action_path,
)
from opsvault.snapshot import CommitSnapshot, load_base_state


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


def classify_commits(
    repo: OpsRepo, base_commit: str, head_commit: str, state: BaseState
) -> ChangeVerdict:
    """Return the verdict on what *head_commit* changes relative to its merge base with *base_commit*.

    *state* must be the trusted inputs read at *base_commit* (or the branch the
    change would merge into); only the proposed action files are read at the head.
    """
    changes = repo.changed_files(base_commit, head_commit)
    head_files = {
        c.path: content
        for c in changes
        if is_action_path(c.path)
        and (content := repo.read_file(head_commit, c.path)) is not None
    }
    return classify_change(changes, head_files, state)
