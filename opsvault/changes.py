"""Classify a git change of the ops repo the way the dispatcher classifies a pull request.

Shared by `vault classify --base/--head`, `vault demo` and `vault approve`: the
change is what *head* brings relative to its merge base with *base*; policy,
formulas and used ids come from *base* only; new action files are read at *head*.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from opsvault.errors import FileTooLargeError, InvalidFileError, Problem
from opsvault.git.base import ChangeKind, Identity, OpsRepo
from opsvault.git.treediff import TreeLimitError
from opsvault.policy.classify import (
    BaseState,
    ChangeVerdict,
    Classification,
    FileVerdict,
    Reason,
    Source,
    classify_change,
    is_action_path,
)
from opsvault.policy.model import Tier
from opsvault.snapshot import CommitSnapshot, load_base_state
from opsvault.vault.schema import MAX_FILE_BYTES


@dataclass(frozen=True, slots=True)
class ClassifiedChange:
    """A verdict and the exact commits it was computed at."""

    base_commit: str
    head_commit: str
    verdict: ChangeVerdict


def classify_ref_change(
    repo: OpsRepo, base: str, head: str, now: datetime | None = None
) -> ClassifiedChange:
    """Return the verdict for what *head* changes relative to *base*, with both commits.

    Raise GitError if a ref is unknown or the histories are unrelated, and
    PolicyError (or another InvalidFileError) if the base's policy is invalid.
    """
    base_commit, head_commit = repo.resolve(base), repo.resolve(head)
    state = load_base_state(CommitSnapshot(repo, base_commit))
    return ClassifiedChange(
        base_commit,
        head_commit,
        classify_commits(repo, base_commit, head_commit, state, now),
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
    repo: OpsRepo,
    base_commit: str,
    head_commit: str,
    state: BaseState,
    now: datetime | None = None,
) -> ChangeVerdict:
    """Return the verdict on what merging *head_commit* into *base_commit* would change.

    The change is the difference between *base_commit* and the merge result,
    not a diff from one merge base: with several merge bases (criss-cross
    history) a single-base diff can hide files the real merge restores or
    deletes (security review SR-1). *state* must be the trusted inputs read at
    *base_commit*; the proposed action files are read from the merge result.
    With *now*, an action's ``expires`` must lie after it and within its
    tier's deadline.

    The head's own change is diffed first, bounded: a change too big to diff
    (a tree bomb) is refused before any merge is computed (review R-2).
    """
    try:
        repo.changed_files(base_commit, head_commit)
    except TreeLimitError as exc:
        return limit_verdict(exc, state)
    result = merged_result(repo, base_commit, head_commit)
    return classify_landed(repo, base_commit, result, state, now)


def limit_verdict(exc: TreeLimitError, state: BaseState) -> ChangeVerdict:
    """Return the refused verdict of a change whose trees break a bound (``exc.code``)."""
    reason = Reason(
        max(state.policy.default_tier, Tier.HIGH),
        Source.INVALID,
        f"the change cannot be classified: {exc.problem}",
    )
    problem = Problem("$", f"{exc.problem}; nothing of it is merged")
    verdict = FileVerdict(
        "(whole change)",
        ChangeKind.MODIFIED,
        Classification(reason.tier, (reason,)),
        (problem,),
    )
    return ChangeVerdict(reason.tier, (verdict,))


@dataclass(frozen=True, slots=True)
class ChangeManifest:
    """Exactly what a change does to a tree: each path it touches and its new blob.

    ``entries`` are ``(path, blob id)`` sorted by path, with None for a path
    the change deletes (a rename is its old path deleted plus its new path).
    Two changes are the same change iff their manifests are equal, whatever
    commits they were computed between (invariant I1, ADR 0004).
    """

    entries: tuple[tuple[str, str | None], ...]

    def digest(self) -> str:
        """Return the sha256 of the canonical JSON form of the entries."""
        text = json.dumps([list(e) for e in self.entries], separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def differences(self, landed: ChangeManifest) -> tuple[str, ...]:
        """Return, one line per path, how *landed* differs from this (classified) manifest."""
        mine, theirs = dict(self.entries), dict(landed.entries)
        lines = []
        for path in sorted(set(mine) | set(theirs)):
            if path not in theirs:
                lines.append(f"{path!r}: classified but not changed by the merge")
            elif path not in mine:
                what = "deleted" if theirs[path] is None else "changed"
                lines.append(f"{path!r}: {what} by the merge but never classified")
            elif mine[path] != theirs[path]:
                lines.append(
                    f"{path!r}: landed as {_blob(theirs[path])}, "
                    f"classified as {_blob(mine[path])}"
                )
        return tuple(lines)


def _blob(blob: str | None) -> str:
    return "deleted" if blob is None else f"blob {blob[:12]}"


def change_manifest(repo: OpsRepo, parent: str, commit: str) -> ChangeManifest:
    """Return the manifest of what *commit* changes relative to *parent* (its first parent, say)."""
    entries: dict[str, str | None] = {}
    for change in repo.changed_files(parent, commit):
        if change.kind is ChangeKind.DELETED:
            entries[change.path] = None
            continue
        if change.old_path is not None:
            entries[change.old_path] = None
        entries[change.path] = repo.blob_id(commit, change.path)
    return ChangeManifest(tuple(sorted(entries.items())))


@dataclass(frozen=True, slots=True)
class MergePreview:
    """The verdict on merging a head into a base, and the manifest it was computed from."""

    base_commit: str
    verdict: ChangeVerdict
    manifest: ChangeManifest


def preview_merge(
    repo: OpsRepo,
    base_commit: str,
    head_commit: str,
    state: BaseState,
    now: datetime | None = None,
) -> MergePreview:
    """Return ``classify_commits``'s verdict together with the exact change it judged.

    The manifest is what a merge of *head_commit* onto *base_commit* must change,
    path by path and blob by blob; the dispatcher records it in its merge
    commit and checks the landed merge against it (ADR 0004). As in
    ``classify_commits``, a change too big to diff is refused (with an empty
    manifest) before any merge is computed (review R-2).
    """
    try:
        repo.changed_files(base_commit, head_commit)
        result = merged_result(repo, base_commit, head_commit)
        manifest = change_manifest(repo, base_commit, result)
    except TreeLimitError as exc:
        return MergePreview(base_commit, limit_verdict(exc, state), ChangeManifest(()))
    return MergePreview(
        base_commit, classify_landed(repo, base_commit, result, state, now), manifest
    )


def classify_landed(
    repo: OpsRepo,
    parent: str,
    commit: str,
    state: BaseState,
    now: datetime | None = None,
) -> ChangeVerdict:
    """Return the verdict on exactly what *commit* changes relative to *parent* (one of its parents)."""
    try:
        changes = repo.changed_files(parent, commit)
    except TreeLimitError as exc:
        return limit_verdict(exc, state)
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
    return classify_change(changes, head_files, state, now)
