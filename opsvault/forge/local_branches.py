"""How local mode's pull requests live in git: proposal branches, main, merges.

A pull request is a local branch ``vault/<id>`` or ``plan/<name>`` that main
does not contain yet. ``ProposalBranches`` brings the recorded PRs in line with
the branches (``discover``), merges one onto main by compare-and-swap, creates
a proposal's branch and deletes merged or closed ones. A PR's author is the
author name of its branch tip commit; a merge someone made by hand (``git
merge``) is attributed to the author of the merge commit. Creation and update
times are when LocalForge first saw a branch (or a new tip), never the commit
dates a proposer chose. This module changes when the mapping between git and
pull requests changes; ``local_state.py`` when what is recorded does.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime

from opsvault.errors import (
    ForgeConflict,
    ForgeError,
    ForgeNotFound,
    GitError,
    PushRejected,
)
from opsvault.forge.local_state import ForgeState, PullRecord
from opsvault.forge.types import Proposal, PullRequest, PullState
from opsvault.git.base import Identity
from opsvault.git.pygit2_repo import Pygit2OpsRepo
from opsvault.layout import PROPOSAL_PREFIXES

log = logging.getLogger(__name__)

MERGE_ATTEMPTS = 5
# How far back along main's first parents a hand-made merge commit is looked for.
_MERGE_SEARCH_DEPTH = 200
# What of a proposal's commit message is kept as its PR title and body.
MAX_TITLE_CHARS = 256
MAX_BODY_CHARS = 64 * 1024


class ProposalBranches:
    """The proposal branches and the base branch *base_branch* of *repo*."""

    def __init__(self, repo: Pygit2OpsRepo, base_branch: str) -> None:
        self.repo = repo
        self.base_branch = base_branch
        self.main_ref = f"refs/heads/{base_branch}"

    def main(self) -> str:
        return self.repo.resolve(self.main_ref)

    def _proposal_branches(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for prefix in PROPOSAL_PREFIXES:
            found.update(self.repo.branches(prefix))
        return found

    def discover(self, state: ForgeState, now: datetime) -> None:
        """Bring the recorded PRs in line with the branches (numbers in branch-name order)."""
        main = self.main()
        main_moved = main != state.main_seen
        branches = self._proposal_branches()
        open_pulls = {
            p.branch: p for p in state.pulls.values() if p.state is PullState.OPEN
        }
        ended = {
            (p.branch, p.head_sha)
            for p in state.pulls.values()
            if p.state is PullState.CLOSED
        }
        for name in sorted(branches):
            tip = branches[name]
            pull = open_pulls.pop(name, None)
            if pull is not None:
                if pull.head_sha == tip and not main_moved:
                    continue
                if pull.head_sha != tip:
                    self._pin_head(pull.number, tip)
                if self.repo.is_ancestor(tip, main):
                    state.pulls[pull.number] = self._merged_by_hand(
                        replace(pull, head_sha=tip), main, now
                    )
                elif pull.head_sha != tip:
                    author = self.repo.commit_info(tip).author.name
                    state.pulls[pull.number] = replace(
                        pull, head_sha=tip, author=author, updated_at=now
                    )
                continue
            if (name, tip) in ended or self.repo.is_ancestor(tip, main):
                continue  # a closed proposal's leftover, or nothing to merge
            info = self.repo.commit_info(tip)
            title, _, body = info.message.strip().partition("\n")
            number = state.next_number
            state.next_number += 1
            self._pin_head(number, tip)
            state.pulls[number] = PullRecord(
                number=number,
                branch=name,
                head_sha=tip,
                author=info.author.name,
                title=title.strip()[:MAX_TITLE_CHARS] or name,
                body=body.strip()[:MAX_BODY_CHARS],
                created_at=now,
                updated_at=now,
            )
        for pull in open_pulls.values():  # their branch is gone
            if self.repo.is_ancestor(pull.head_sha, main):
                state.pulls[pull.number] = self._merged_by_hand(pull, main, now)
            else:
                log.info(
                    "PR #%d: branch %r is gone; closing it", pull.number, pull.branch
                )
                state.pulls[pull.number] = replace(
                    pull,
                    state=PullState.CLOSED,
                    closed_at=now,
                    closed_reason="branch deleted",
                    updated_at=now,
                )
        state.main_seen = main

    def _pin_head(self, number: int, head: str) -> None:
        """Point ``refs/pull/<n>/head`` at *head*, as Forgejo does.

        It keeps the commits of closed and merged PRs (whose branches are
        deleted) safe from ``git gc``, so their diff can still be read.
        """
        ref = f"refs/pull/{number}/head"
        try:
            try:
                current: str | None = self.repo.resolve(ref)
            except GitError:
                current = None
            self.repo.update_ref(ref, head, current)
        except GitError as exc:
            log.warning("could not set %s to %s: %s", ref, head, exc)

    def _merged_by_hand(self, pull: PullRecord, main: str, now: datetime) -> PullRecord:
        """Record *pull* as merged outside LocalForge, by the author of its merge commit.

        A fast-forward leaves no merge commit: merged_by stays None, which the
        dispatcher refuses to fire (fail closed).
        """
        merged_by = merge_commit = merge_base = None
        merged_at = now
        for commit in self.repo.log_first_parent(main, _MERGE_SEARCH_DEPTH):
            info = self.repo.commit_info(commit)
            if pull.head_sha in info.parents[1:]:
                merged_by, merge_commit = info.author.name, info.id
                merge_base = info.parents[0]
                merged_at = datetime.fromtimestamp(info.time, UTC)
                break
        log.info("PR #%d: merged outside opsvault (by %r)", pull.number, merged_by)
        return replace(
            pull,
            state=PullState.CLOSED,
            merged=True,
            merged_by=merged_by,
            merged_at=merged_at,
            merge_commit_sha=merge_commit,
            merge_base_sha=merge_base,
            closed_at=merged_at,
            updated_at=now,
        )

    def to_pull_request(self, pull: PullRecord, main: str) -> PullRequest:
        return PullRequest(
            number=pull.number,
            title=pull.title,
            body=pull.body,
            state=pull.state,
            author=pull.author,
            head_ref=pull.branch,
            head_sha=pull.head_sha,
            base_ref=self.base_branch,
            labels=pull.labels,
            base_sha=pull.merge_base_sha if pull.merged else main,
            merged=pull.merged,
            merged_by=pull.merged_by,
            merged_at=pull.merged_at,
            merge_commit_sha=pull.merge_commit_sha,
            created_at=pull.created_at,
            updated_at=pull.updated_at,
            closed_at=pull.closed_at,
        )

    # -- changing git ------------------------------------------------------------------

    def merge_onto_main(
        self, number: int, head_sha: str, message: str, who: Identity, when: int
    ) -> tuple[str, str]:
        """Create the merge commit and move main to it by compare-and-swap; return both ends."""
        for attempt in range(1, MERGE_ATTEMPTS + 1):
            main = self.main()
            try:
                commit = self.repo.merge(main, head_sha, message, who, when)
            except GitError as exc:
                raise ForgeConflict(f"PR #{number}: cannot merge: {exc}") from exc
            try:
                self.repo.update_ref(self.main_ref, commit, main)
            except PushRejected:
                log.info(
                    "PR #%d: main moved during the merge (attempt %d)", number, attempt
                )
                continue
            return commit, main
        raise ForgeConflict(
            f"PR #{number}: {self.base_branch!r} kept moving; "
            f"gave up after {MERGE_ATTEMPTS} attempts"
        )

    def delete_branch(self, branch: str) -> None:
        try:
            self.repo.delete_branch(branch)
        except GitError as exc:
            # The record keeps the head; a leftover branch is ignored until it moves.
            log.warning("could not delete branch %r: %s", branch, exc)

    def sync_worktree(self, old_main: str) -> None:
        try:
            synced = self.repo.sync_worktree(self.base_branch, old_main)
        except GitError as exc:
            log.warning("work tree of %r not updated: %s", self.base_branch, exc)
            return
        if not synced:
            log.info(
                "work tree not updated: not on %r, or it has local changes",
                self.base_branch,
            )

    def create_branch(self, proposal: Proposal, who: Identity, when: int) -> None:
        """Create *proposal*'s branch holding its files, unless it exists with them.

        Raise ForgeConflict when the branch exists with other content.
        """
        if not proposal.branch.startswith(PROPOSAL_PREFIXES):
            raise ForgeError(
                f"{proposal.branch}: local-mode proposals are branches under "
                f"{' or '.join(repr(p) for p in PROPOSAL_PREFIXES)}"
            )
        files = dict(proposal.files)
        tip = self.repo.branches(proposal.branch).get(proposal.branch)
        if tip is None:
            try:
                base = self.repo.resolve(f"refs/heads/{proposal.base}")
            except GitError as exc:
                raise ForgeNotFound(f"{proposal.base}: no such branch") from exc
            commit = self.repo.commit_files(
                base, files, proposal.message, who, when=when
            )
            try:
                self.repo.update_ref(f"refs/heads/{proposal.branch}", commit, None)
                tip = commit
            except PushRejected:  # created meanwhile: judge it like an old one
                tip = self.repo.resolve(f"refs/heads/{proposal.branch}")
        if any(self.repo.read_file(tip, p) != c for p, c in files.items()):
            raise ForgeConflict(
                f"{proposal.branch}: the branch exists with other content"
            )
