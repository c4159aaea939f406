"""Merge integrity (invariant I1, ADR 0004): a dispatcher merge lands exactly what was classified.

The dispatcher classifies a pull request against the main it read, then asks
the forge to merge it. The forge merges onto whatever main is *then*, and git's
three-way merge onto another main can bring in more than was classified (a
merge base that moved, files an earlier commit of the PR's history held).
Each dispatcher merge therefore carries, as the last line of its commit
message, the digest of the change that was classified::

    Vault-Classified: pr=<N> base=<main it was classified on> change=sha256:<digest>

and the merge commit's first-parent diff is checked against it right after
the merge, by every later tick of every replica (``find_mismatches`` over the
commits main gained since the last check), and again before anything it
introduced fires. A mismatch is never
fired: it is refused as ``merge-mismatch``, ``vault/HALT`` is written and the
admins are alerted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from opsvault.changes import ChangeManifest, change_manifest, merged_result
from opsvault.errors import GitError
from opsvault.git.base import OpsRepo

TRAILER = "Vault-Classified"
_TRAILER_LINE = re.compile(
    rf"^{TRAILER}: pr=(?P<pr>[1-9][0-9]{{0,9}}) base=(?P<base>[0-9a-f]{{40}}) "
    r"change=sha256:(?P<digest>[0-9a-f]{64})$"
)
MAX_CHECK_WALK = 500  # first-parent commits a tick looks back for merges to check


@dataclass(frozen=True, slots=True)
class ClassifiedMark:
    """What the dispatcher wrote into a merge commit: the PR, where it classified, the digest."""

    pr: int
    base_commit: str
    digest: str


def merge_message(
    number: int, tier: str, base_commit: str, manifest: ChangeManifest
) -> str:
    """Return the commit message body of a dispatcher merge; the mark is its last line."""
    return (
        f"vault: merge #{number} ({tier} tier)\n\n"
        f"{TRAILER}: pr={number} base={base_commit} change=sha256:{manifest.digest()}"
    )


def parse_mark(message: str) -> ClassifiedMark | None:
    """Return the mark on the *last* non-empty line of *message*, or None.

    Only the last line counts: the forge puts the PR title (proposer-chosen
    text) before the body the dispatcher sends, never after it.
    """
    lines = [line.strip() for line in message.strip().splitlines()]
    found = _TRAILER_LINE.match(lines[-1]) if lines else None
    if found is None:
        return None
    return ClassifiedMark(int(found["pr"]), found["base"], found["digest"])


@dataclass(frozen=True, slots=True)
class MergeMismatch:
    """A dispatcher merge whose first-parent diff is not the change that was classified."""

    merge_commit: str
    pr: int | None
    problems: tuple[str, ...]

    @property
    def stem(self) -> str:
        """Return the archive stem of this mismatch's record (no action id has this form)."""
        return f"pr{self.pr}-merge-{self.merge_commit[:12]}"

    def render(self) -> str:
        who = (
            f"the merge of #{self.pr}" if self.pr is not None else "a dispatcher merge"
        )
        return (
            f"{who} ({self.merge_commit[:12]}) changed the base branch differently from what "
            f"was classified: {'; '.join(self.problems)}"
        )


def check_merge(
    repo: OpsRepo,
    merge_commit: str,
    head_commit: str,
    pr: int | None,
    classified: ChangeManifest | None = None,
) -> MergeMismatch | None:
    """Return how dispatcher merge *merge_commit* differs from its classification, or None.

    *classified* is the manifest the tick classified (right after its own
    merge); without it the mark in the commit message is the reference. The
    merge must have two parents, the second being the classified *head_commit*,
    and its first-parent diff must have exactly the classified paths and blobs.
    A merge without a readable mark is a mismatch: nothing proves what it was
    classified as.
    """
    info = repo.commit_info(merge_commit)
    if len(info.parents) != 2 or info.parents[1] != head_commit:
        return MergeMismatch(
            merge_commit,
            pr,
            (f"its parents are {list(info.parents)!r}, not (main, {head_commit!r})",),
        )
    landed = change_manifest(repo, info.parents[0], merge_commit)
    mark = parse_mark(info.message)
    if classified is not None:
        if landed == classified:
            return None
        return MergeMismatch(merge_commit, pr, classified.differences(landed))
    if mark is None:
        return MergeMismatch(
            merge_commit, pr, (f"its message has no valid {TRAILER} line",)
        )
    if landed.digest() == mark.digest:
        return None
    return MergeMismatch(merge_commit, pr, _explain(repo, mark, head_commit, landed))


def _explain(
    repo: OpsRepo, mark: ClassifiedMark, head_commit: str, landed: ChangeManifest
) -> tuple[str, ...]:
    """Name the paths that differ, recomputing the classified change from the mark's base."""
    try:
        result = merged_result(repo, mark.base_commit, head_commit)
        classified = change_manifest(repo, mark.base_commit, result)
    except GitError as exc:
        return (f"the classified change cannot be recomputed: {exc}",)
    if classified.digest() != mark.digest:
        return ("the classified change cannot be recomputed from the mark",)
    return classified.differences(landed) or ("the change digests differ",)


def find_mismatches(
    repo: OpsRepo, main: str, since: str, limit: int = MAX_CHECK_WALK
) -> list[MergeMismatch]:
    """Return the marked merges main gained after *since* that did not land as marked, oldest first.

    Walks *main*'s first parents back to *since* (at most *limit* commits). A
    merge counts as the dispatcher's when its last message line is a mark;
    human merges have none and are judged at fire time by what landed (SR-1).
    """
    found: list[MergeMismatch] = []
    commit = main
    for _ in range(limit):
        if commit == since:
            break
        info = repo.commit_info(commit)
        mark = parse_mark(info.message)
        if len(info.parents) == 2 and mark is not None:
            mismatch = check_merge(repo, commit, info.parents[1], mark.pr)
            if mismatch is not None:
                found.append(mismatch)
        if not info.parents:
            break
        commit = info.parents[0]
    return found[::-1]
