"""What Forgejo does asynchronously after a push to a PR's head or base.

The fake notices a moved head or base when it next looks at the PR (it has no
post-receive queue), then does what Forgejo's ``TestPullRequest`` and
``ValidatePullRequest`` do (services/pull/pull.go:303-415, check.go:45-56):

- ``refs/pull/N/head`` and ``updated_at`` follow the head branch, for open PRs
  only; a closed or merged PR keeps its old ref and ``updated_at``;
- reviews go stale only when the diff against the merge base changed
  (``CheckIfDiffDiffers``); then, with ``dismiss_stale_approvals``, every
  non-dismissed approval is dismissed, whatever commit it was made at; reviews
  made at the new head are not stale (``MarkReviewsAsNotStale``);
- the PR is "checking" for ``ForgeCore.checking_seconds`` of the fake clock:
  ``mergeable`` is false and a merge answers 405 "Please try again later".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from testing.fake_forgejo.gitstore import GitStore
from testing.fake_forgejo.model import Issue, PullInfo, Repo, iso


def diff_differs(git: GitStore, base: str, old: str, new: str) -> bool:
    """Return whether the diff base...old differs from base...new (Forgejo's CheckIfDiffDiffers)."""
    if not old or not new:
        return True
    old_base = git.merge_base(base, old) or base
    new_base = git.merge_base(base, new) or base
    old_from, old_to = git.pruned_trees(old_base, old)
    new_from, new_to = git.pruned_trees(new_base, new)
    old_diff = old_from.diff_to_tree(old_to).patch or ""
    new_diff = new_from.diff_to_tree(new_to).patch or ""
    return old_diff != new_diff


def start_check(pull: PullInfo, now: datetime, seconds: float) -> None:
    pull.checking_until = iso(now + timedelta(seconds=seconds))


def is_checking(pull: PullInfo, now: datetime) -> bool:
    return bool(pull.checking_until) and now < datetime.fromisoformat(
        pull.checking_until
    )


def observe(
    repo: Repo,
    issue: Issue,
    now: datetime,
    seconds: float,
    tip_of: Callable[[str], str | None] | None = None,
) -> tuple[str, str] | None:
    """Apply a moved head or base of an open PR; return (old head, new head) if the head moved.

    *tip_of* reads a branch tip (default: from the repository, one ref at a
    time; a listing passes one snapshot of every branch).
    """
    pull = issue.pull
    assert pull is not None
    if issue.state != "open" or pull.merged:
        return None
    tip_of = tip_of or repo.git.tip
    base_sha = tip_of(pull.base_branch) or ""
    tip = tip_of(pull.head_branch)
    moved: tuple[str, str] | None = None
    if tip is not None and tip != pull.head_sha:
        old = pull.head_sha
        pull.head_sha = tip
        repo.git.set_ref(f"refs/pull/{issue.number}/head", tip)
        issue.updated = iso(now)
        _validate(repo, pull, base_sha, old, tip)
        moved = (old, tip)
        start_check(pull, now, seconds)
    if base_sha != pull.tested_base:
        if pull.tested_base:  # the PR was tested against an older base
            start_check(pull, now, seconds)
        pull.tested_base = base_sha
    return moved


def _validate(repo: Repo, pull: PullInfo, base: str, old: str, new: str) -> None:
    if diff_differs(repo.git, base, old, new):
        rule = repo.protection_for(pull.base_branch)
        dismiss = rule is not None and rule.dismiss_stale_approvals
        pull.reviews = [
            replace(
                r,
                stale=True,
                dismissed=r.dismissed or (dismiss and r.state == "APPROVED"),
            )
            for r in pull.reviews
        ]
    pull.reviews = [
        replace(r, stale=False) if r.commit_id == new else r for r in pull.reviews
    ]
