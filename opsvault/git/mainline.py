"""The adapters of the mainline port (``opsvault.ports.Mainline``): the base branch
read, and moved by compare-and-swap.

Two adapters: ``RemoteMainline`` (a clone of the forge's repo: fetch, then a
non-force push) and ``LocalMainline`` (local mode: the ops repo itself; the
branch ref is swapped in place). Either way ``publish`` raises PushRejected
when main moved since it was read: someone else won, re-read and re-plan.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from opsvault.errors import GitError
from opsvault.git.base import OpsRepo
from opsvault.git.pygit2_repo import Pygit2OpsRepo
from opsvault.layout import DEFAULT_BRANCH

log = logging.getLogger(__name__)


class RemoteMainline:
    def __init__(
        self, repo: OpsRepo, branch: str = DEFAULT_BRANCH, remote: str = "origin"
    ) -> None:
        self.repo = repo
        self._branch = branch
        self.remote = remote
        self._pruned = False

    @property
    def branch(self) -> str:
        return self._branch

    def refresh(self) -> str:
        # Only main: the tick never reads another branch by name, and mirroring
        # every proposal branch made the idle tick grow with the open PRs
        # (issue 11); so does every remote-tracking ref left over from a
        # mirror (the clone's): they go, once. PR heads are fetched as objects
        # only (no ref) when a PR is looked at.
        self.repo.fetch_refspec(
            self.remote,
            f"+refs/heads/{self._branch}:refs/remotes/{self.remote}/{self._branch}",
        )
        if not self._pruned:
            self.repo.prune_remote_refs(self.remote, {self._branch})
            self._pruned = True
        return self.repo.resolve(f"{self.remote}/{self._branch}")

    def publish(self, new: str, expected_old: str) -> None:
        self.repo.push(self._branch, new, expected_old, self.remote)

    def fetch_pull_head(self, number: int, sha: str) -> bool:
        if self._has(sha):
            return True
        self.repo.fetch_refspec(self.remote, self._pull_refspec(number))
        return self._has(sha)

    def prefetch_pull_heads(self, heads: Sequence[tuple[int, str, str]]) -> None:
        # The head branch first: refs/pull/N/head follows a push only once
        # Forgejo's background task ran (API-NOTES §17); a PR from a fork (or
        # whose branch is gone) is found at refs/pull/N/head.
        missing = {n: (ref, sha) for n, ref, sha in heads if not self._has(sha)}
        branches = sorted({ref for ref, _sha in missing.values() if _plain_branch(ref)})
        self._fetch_quietly([f"+refs/heads/{b}:" for b in branches])
        still = sorted(n for n, (_ref, sha) in missing.items() if not self._has(sha))
        self._fetch_quietly([self._pull_refspec(n) for n in still])

    def _fetch_quietly(self, refspecs: list[str]) -> None:
        if not refspecs:
            return
        try:
            self.repo.fetch_refspec(self.remote, *refspecs)
        except GitError as exc:  # one ref is gone: fetch_pull_head tries each alone
            log.info("fetching %d refs at once failed: %s", len(refspecs), exc)

    def _pull_refspec(self, number: int) -> str:
        return (
            f"+refs/pull/{number}/head:"  # objects only: no ref to slow later fetches
        )

    def _has(self, sha: str) -> bool:
        try:
            self.repo.commit_info(sha)
        except GitError:  # not fetched (yet)
            return False
        return True


def _plain_branch(name: str) -> bool:
    """Is *name* a branch name that can go into a refspec as it is (no glob, colon, option)?"""
    return (
        bool(name)
        and not name.startswith(("-", "/", "."))
        and not name.endswith(("/", ".lock", "."))
        and ".." not in name
        and "@{" not in name
        and "//" not in name
        and not any(c in name for c in ":*?[\\^~ ")
        and all(c.isprintable() and not c.isspace() for c in name)
    )


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

    def prefetch_pull_heads(self, heads: Sequence[tuple[int, str, str]]) -> None:
        return None
