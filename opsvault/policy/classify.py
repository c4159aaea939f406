"""The deterministic classifier of a change: a pure function of (change, policy, formulas).

The tier of a change is the maximum over its files (see ``classify_change``);
a new action file gets the tier of its action (``opsvault.policy.action``,
through ``opsvault.policy.assess``), every other file the tier of its path. Nothing a proposer writes can lower a tier: its own
``blast_radius`` only joins the maximum, and policy and formulas always come
from the base side of a change.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from opsvault.errors import InvalidFileError, Problem
from opsvault.layout import ACTIONS as ACTIONS_DIR
from opsvault.layout import FIRED, FORMULAS, HALT, POLICY, REJECTED, RUNNING
from opsvault.policy.action import Classification, Reason, Source, join_reasons
from opsvault.policy.assess import assess_action
from opsvault.policy.change import (
    MAX_BLOB_BYTES,
    ChangedFile,
    ChangeKind,
    tree_path_problem,
)
from opsvault.policy.glob import glob_match
from opsvault.policy.model import Policy
from opsvault.vault.formula import Formula
from opsvault.vault.request import (
    Action,
    action_id_for,
    id_problems,
    parse_action,
)
from opsvault.vault.tier import Tier

# Changes to these never get below HIGH and are never merged by the dispatcher,
# whatever policy says: they change the gate itself or what the vault has done.
FLOOR_PATTERNS: tuple[tuple[str, str], ...] = (
    (POLICY, "the policy itself"),
    (f"{FORMULAS}/**", "formulas (what actions run)"),
    (f"{RUNNING}/**", "dispatcher bookkeeping"),
    (f"{FIRED}/**", "the record of executed actions"),
    (f"{REJECTED}/**", "the record of refused actions"),
    (HALT, "the kill switch"),
    (".forgejo/**", "CI/workflow files"),
    (".gitea/**", "CI/workflow files"),
    (".github/**", "CI/workflow files"),
    (".woodpecker/**", "CI/workflow files"),
    (".woodpecker.yml", "CI/workflow files"),
    (".woodpecker.yaml", "CI/workflow files"),
    (".gitlab-ci.yml", "CI/workflow files"),
    (".drone.yml", "CI/workflow files"),
    (".ci/**", "CI/workflow files"),
    (".gitmodules", "submodules (code from elsewhere)"),
    (".gitattributes", "git attributes (filters, merge drivers)"),
)


def floor_reason(path: str) -> Reason | None:
    """Return the built-in HIGH floor that *path* hits, if any."""
    for pattern, why in FLOOR_PATTERNS:
        if glob_match(pattern, path):
            return Reason(
                Tier.HIGH,
                Source.FLOOR,
                f"{path}: changes {why}; built-in floor, never auto-merged",
            )
    return None


def classify_path(path: str, policy: Policy) -> Classification:
    """Return the tier of a change to a file that is not a new action file."""
    floor = floor_reason(path)
    if floor is not None:
        return join_reasons([floor])
    matched = [
        Reason(
            rule.tier,
            Source.PATH,
            f"{path}: [[paths]] {rule.pattern!r} is {rule.tier.label}",
        )
        for rule in policy.paths
        if glob_match(rule.pattern, path)
    ]
    if matched:
        # Every matching pattern counts, so a broad low rule cannot mask a narrower high one.
        return join_reasons(matched)
    return join_reasons(
        [
            Reason(
                policy.default_tier,
                Source.DEFAULT,
                f"{path}: no [[paths]] rule: default_tier",
            )
        ]
    )


@dataclass(frozen=True, slots=True)
class BaseState:
    """What the base side of a change provides: trusted inputs only."""

    policy: Policy
    formulas: Mapping[str, Formula] = field(hash=False)
    # Every id ever used at base.
    known_ids: Collection[str] = field(default=frozenset(), hash=False)


@dataclass(frozen=True, slots=True)
class FileVerdict:
    path: str
    kind: ChangeKind
    classification: Classification
    problems: tuple[Problem, ...] = ()
    action: Action | None = None
    protected: bool = False


@dataclass(frozen=True, slots=True)
class ChangeVerdict:
    tier: Tier
    files: tuple[FileVerdict, ...]

    @property
    def refused(self) -> bool:
        """True when any file is invalid: the change must not be merged by anyone via the vault."""
        return any(f.problems for f in self.files)

    @property
    def protected(self) -> bool:
        """True when a built-in floor applies: only an admin may merge, never the dispatcher."""
        return any(f.protected for f in self.files)

    @property
    def actions(self) -> tuple[Action, ...]:
        return tuple(f.action for f in self.files if f.action is not None)

    @property
    def reasons(self) -> tuple[Reason, ...]:
        return tuple(r for f in self.files for r in f.classification.reasons)


def is_action_path(path: str) -> bool:
    return path.startswith(ACTIONS_DIR + "/")


def _existing_action_verdict(path: str, kind: ChangeKind) -> FileVerdict:
    verb = {ChangeKind.DELETED: "deletes", ChangeKind.RENAMED: "renames"}.get(
        kind, "modifies"
    )
    reason = Reason(
        Tier.HIGH,
        Source.FLOOR,
        f"{path}: {verb} an existing action file; built-in floor",
    )
    return FileVerdict(path, kind, join_reasons([reason]), protected=True)


def classify_new_action(
    path: str,
    content: bytes | InvalidFileError | None,
    base: BaseState,
    now: datetime | None = None,
) -> FileVerdict:
    """Return the verdict for an action file the change adds at *path*."""

    def refused(problems: Sequence[Problem]) -> FileVerdict:
        reason = Reason(
            base.policy.default_tier,
            Source.INVALID,
            f"{path}: invalid action file, refused",
        )
        return FileVerdict(
            path, ChangeKind.ADDED, join_reasons([reason]), tuple(problems)
        )

    rest = path[len(ACTIONS_DIR) + 1 :]
    if "/" in rest or not rest.endswith(".toml"):
        return refused(
            [Problem("$", f"only <id>.toml files belong directly in {ACTIONS_DIR}/")]
        )
    stem = action_id_for(path)
    problems = [Problem("$", m) for m in id_problems(stem)]
    if not problems and stem in base.known_ids:
        problems.append(
            Problem(
                "$",
                f"the id {stem!r} was used before; ids are never reused, pick a new one",
            )
        )
    if isinstance(content, InvalidFileError):  # e.g. too large to be read at all
        problems.extend(content.problems)
    if problems or content is None or isinstance(content, InvalidFileError):
        return refused(problems or [Problem("$", "file content is missing")])
    try:
        action = parse_action(content, path)
    except InvalidFileError as exc:
        return refused(exc.problems)
    assessment = assess_action(action, base.formulas, base.policy, now=now)
    return FileVerdict(
        path,
        ChangeKind.ADDED,
        assessment.classification,
        assessment.problems,
        action=action,
    )


def classify_change(
    changes: Sequence[ChangedFile],
    head_files: Mapping[str, bytes | InvalidFileError],
    base: BaseState,
    now: datetime | None = None,
) -> ChangeVerdict:
    """Return the tier of a whole change and a verdict per changed file.

    *changes* are the files the change touches relative to the merge base,
    *head_files* the content at the head of the new action files (or the
    error that kept one from being read, such as its size), and *base*
    the policy, formulas and used ids of the base branch (never of the head).
    New action files are judged by content; modifying, renaming or deleting an
    existing action file hits a HIGH floor, and so does any symlink or gitlink
    the change leaves (whatever its path); every other file goes through the
    built-in floors, then ``[[paths]]``, then ``default_tier``. An empty change
    gets ``default_tier``.
    """
    verdicts: list[FileVerdict] = []
    for change in sorted(changes, key=lambda c: c.path):
        if change.kind is ChangeKind.RENAMED and change.old_path is not None:
            # A rename is a deletion of the old path and an addition of the new one.
            verdicts.extend(
                _verdicts_for(change.old_path, ChangeKind.DELETED, head_files, base)
            )
            verdicts.extend(
                _verdicts_for(
                    change.path, ChangeKind.ADDED, head_files, base, change, now
                )
            )
        else:
            verdicts.extend(
                _verdicts_for(change.path, change.kind, head_files, base, change, now)
            )
    if not verdicts:
        empty = Reason(
            base.policy.default_tier,
            Source.DEFAULT,
            "the change touches no file: default_tier",
        )
        return ChangeVerdict(empty.tier, ())
    return ChangeVerdict(max(v.classification.tier for v in verdicts), tuple(verdicts))


def _odd_path(path: str) -> bool:
    """Return whether *path* holds characters no ops repo file needs (control characters)."""
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in path)


def _refused(
    path: str, kind: ChangeKind, base: BaseState, detail: str, message: str
) -> list[FileVerdict]:
    reason = Reason(base.policy.default_tier, Source.INVALID, f"{path!r}: {detail}")
    return [FileVerdict(path, kind, join_reasons([reason]), (Problem("$", message),))]


def _verdicts_for(
    path: str,
    kind: ChangeKind,
    head_files: Mapping[str, bytes | InvalidFileError],
    base: BaseState,
    change: ChangedFile | None = None,
    now: datetime | None = None,
) -> list[FileVerdict]:
    if _odd_path(path):
        # Newlines and escapes in a path only serve to mislead people reading comments,
        # reports and terminals: such a change is refused (security review SR-5).
        return _refused(
            path,
            kind,
            base,
            "the path has control characters",
            "the path contains control characters (newline, escape, ...); rename the file",
        )
    problem = tree_path_problem(path)
    if problem:
        # Paths git refuses to check out (.git in any spelling, '..', over NAME_MAX or
        # PATH_MAX) are never graded as ordinary files (review ).
        return _refused(
            path, kind, base, problem, f"{problem}; git cannot check this path out"
        )
    if change is not None and change.is_link:
        # A symlink or gitlink lets a later write land elsewhere (.git/hooks, a
        # dotfile outside the repo): never merged by the dispatcher (I4).
        reason = Reason(
            Tier.HIGH,
            Source.FLOOR,
            f"{path}: adds a symlink or a submodule (gitlink, mode {change.mode:o}); "
            "built-in floor, never auto-merged",
        )
        return [FileVerdict(path, kind, join_reasons([reason]), protected=True)]
    if change is not None and kind is not ChangeKind.DELETED:
        if change.size > MAX_BLOB_BYTES and not is_action_path(path):
            # (new action files have their own, smaller bound, checked from the header too)
            # No file of an ops repo is this big; the blob is never read (review R-8).
            return _refused(
                path,
                kind,
                base,
                f"the file is {change.size} bytes",
                f"file is {change.size} bytes, over the limit of {MAX_BLOB_BYTES}; "
                "keep large files out of the ops repo",
            )
        if change.odd_mode:
            reason = Reason(
                Tier.HIGH,
                Source.FLOOR,
                f"{path}: git mode {change.mode:o} is not one git writes; "
                "built-in floor, never auto-merged",
            )
            return [FileVerdict(path, kind, join_reasons([reason]), protected=True)]
    if is_action_path(path):
        if kind is ChangeKind.ADDED:
            return [classify_new_action(path, head_files.get(path), base, now)]
        return [_existing_action_verdict(path, kind)]
    classification = classify_path(path, base.policy)
    protected = any(r.source is Source.FLOOR for r in classification.reasons)
    return [FileVerdict(path, kind, classification, protected=protected)]
