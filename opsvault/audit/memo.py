"""One walk's memory of the repository: each commit's metadata and first-parent diff read once.

The history walk, the re-classification of a merge and its integrity check
each ask for the same commit's diff against its first parent; a history of
10,000 records answers them from here (benchmarks/audit.py).
"""

from __future__ import annotations

from typing import Any, cast

from opsvault.git.base import CommitInfo, OpsRepo
from opsvault.policy.change import ChangedFile


class MemoRepo:
    """An OpsRepo that remembers ``commit_info`` and ``changed_files`` answers (objects never change)."""

    def __init__(self, repo: OpsRepo) -> None:
        self._repo = repo
        self._infos: dict[str, CommitInfo] = {}
        self._diffs: dict[tuple[str, str], tuple[ChangedFile, ...]] = {}

    def commit_info(self, commit: str) -> CommitInfo:
        if commit not in self._infos:
            self._infos[commit] = self._repo.commit_info(commit)
        return self._infos[commit]

    def changed_files(self, base: str, head: str) -> tuple[ChangedFile, ...]:
        key = (base, head)
        if key not in self._diffs:
            self._diffs[key] = self._repo.changed_files(base, head)
        return self._diffs[key]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._repo, name)


def remembering(repo: OpsRepo) -> OpsRepo:
    """Return *repo* answering repeated ``commit_info`` and ``changed_files`` calls from memory."""
    return cast(OpsRepo, MemoRepo(repo))
