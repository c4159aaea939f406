"""The adapters of the mainline port (``opsvault.ports.Mainline``): the base branch
read, and moved by compare-and-swap.

Two adapters: ``RemoteMainline`` (a clone of the forge's repo: fetch, then a
non-force push) and ``LocalMainline`` (local mode: the ops repo itself; the
branch ref is swapped in place). Either way ``publish`` raises PushRejected
when main moved since it was read: someone else won, re-read and re-plan.
"""

from __future__ import annotations

from opsvault.errors import GitError
from opsvault.git.base import OpsRepo
from opsvault.git.pygit2_repo import Pygit2OpsRepo
from opsvault.layout import DEFAULT_BRANCH


class RemoteMainline:
    def __init__(
        self, repo: OpsRepo, branch: str = DEFAULT_BRANCH, remote: str = "origin"
    ) -> None:
        self.repo = repo
        self._branch = branch
        self.remote = remote

    @property
    def branch(self) -> str:
        return self._branch

    def refresh(self) -> str:
        self.repo.fetch(self.remote)
        return self.repo.resolve(f"{self.remote}/{self._branch}")

    def publish(self, new: str, expected_old: str) -> None:
        self.repo.push(self._branch, new, expected_old, self.remote)

    def fetch_pull_head(self, number: int, sha: str) -> bool:
        if self._has(sha):
            return True
        self.repo.fetch_refspec(
            self.remote,
            f"+refs/pull/{number}/head:refs/remotes/{self.remote}/pull/{number}",
        )
        return self._has(sha)

    def _has(self, sha: str) -> bool:
        try:
            self.repo.commit_info(sha)
        except GitError:  # not fetched (yet)
            return False
        return True


class LocalMainline:
    """Local mode: main is a branch of the ops repo itself; proposals are branches in it."""

    def __init__(self, repo: Pygit2OpsRepo, branch: str = DEFAULT_BRANCH) -> None:
        self.repo = repo
        self._branch = branch

    @property
    def branch(self) -> str:
        return self._branch

    def refresh(self) -> str:
        return self.repo.resolve(f"refs/heads/{self._branch}")

    def publish(self, new: str, expected_old: str) -> None:
        self.repo.update_ref(f"refs/heads/{self._branch}", new, expected_old)
        # An operator may have main checked out: move a clean work tree along.
        self.repo.sync_worktree(self._branch, expected_old)

    def fetch_pull_head(self, number: int, sha: str) -> bool:
        return True  # every proposal is already a local branch
