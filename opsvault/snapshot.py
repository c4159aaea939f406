"""Read an ops repo's trusted inputs (policy, formulas, used ids) from one snapshot.

A snapshot is either a directory (``vault classify FILE --ops DIR``) or a
commit of a git repository (the base side of a change, as the dispatcher reads
it). Both give the same BaseState, so a classification can be reproduced from
(commit, change).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from opsvault._resources import data_dir
from opsvault.errors import ConfigError, FileTooLargeError, InvalidFileError, Problem
from opsvault.layout import FORMULAS as FORMULAS_DIR
from opsvault.layout import POLICY as POLICY_PATH
from opsvault.layout import RECORD_DIRS
from opsvault.policy.basestate import BaseState
from opsvault.policy.model import Policy
from opsvault.policy.parse import parse_policy
from opsvault.vault.bounded import MAX_BLOB_BYTES
from opsvault.vault.formula import FORMULA_NAME, Formula, parse_formula

if TYPE_CHECKING:  # a directory snapshot (`vault classify FILE`) never imports git
    from opsvault.git.base import OpsRepo


class Snapshot(Protocol):
    """Read-only view of an ops repo at one point; paths are repo-relative posix."""

    @property
    def label(self) -> str: ...

    def read_file(self, path: str) -> bytes | None: ...
    def list_files(self, prefix: str) -> tuple[str, ...]: ...
    def list_dirs(self, prefix: str) -> tuple[str, ...]: ...


def read_bounded(
    path: Path,
    where: str,
    max_bytes: int = MAX_BLOB_BYTES,
    *,
    follow_links: bool = True,
) -> bytes:
    """Return the bytes of regular file *path*; FileTooLargeError naming *where* past *max_bytes*.

    Reads at most *max_bytes* + 1 bytes whatever the file claims to be (I5).
    A device, FIFO or directory is refused with InvalidFileError (never read,
    review R-10), and so is a symlink when *follow_links* is false (O_NOFOLLOW).
    OSError (e.g. FileNotFoundError) passes through.
    """
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK  # a FIFO must not block the open
    if not follow_links:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_links:
            raise InvalidFileError(
                where, [Problem("$", "is a symlink; refusing to read through it")]
            ) from exc
        raise
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InvalidFileError(
                where, [Problem("$", "is not a regular file; refusing to read it")]
            )
        content = fh.read(max_bytes + 1)
        size = os.fstat(fd).st_size
    if len(content) > max_bytes:
        raise FileTooLargeError(where, max(size, len(content)), max_bytes)
    return content


def writable_path(root: Path, relative: str) -> Path:
    """Return ``root / relative`` for writing a file, refusing to follow a symlink (I4).

    Raise InvalidFileError naming *relative* when the file or any directory
    between *root* and it is a symlink, or it would land outside *root*.
    """
    target = root / relative
    current = root
    for part in relative.split("/"):
        current = current / part
        if current.is_symlink():
            shown = current.relative_to(root).as_posix()
            raise InvalidFileError(
                relative,
                [Problem("$", f"{shown!r} is a symlink; refusing to write through it")],
            )
    if not target.resolve().is_relative_to(root.resolve()):
        raise InvalidFileError(
            relative, [Problem("$", "resolves outside the ops repo")]
        )
    return target


@dataclass(frozen=True, slots=True)
class DirSnapshot:
    """An ops repo as a directory on disk (``vault classify FILE``, ``--ops DIR``)."""

    root: Path

    @property
    def label(self) -> str:
        return str(self.root)

    def read_file(self, path: str) -> bytes | None:
        target = self.root / path
        return read_bounded(target, path) if target.is_file() else None

    def list_files(self, prefix: str) -> tuple[str, ...]:
        base = self.root / prefix
        if not base.is_dir():
            return ()
        return tuple(
            sorted(
                p.relative_to(self.root).as_posix()
                for p in base.rglob("*")
                if p.is_file()
            )
        )

    def list_dirs(self, prefix: str) -> tuple[str, ...]:
        base = self.root / prefix
        if not base.is_dir():
            return ()
        return tuple(sorted(p.name for p in base.iterdir() if p.is_dir()))


@dataclass(frozen=True, slots=True)
class CommitSnapshot:
    """An ops repo at one commit of a git repository (the base side of a change)."""

    repo: OpsRepo
    commit: str

    @property
    def label(self) -> str:
        return self.commit[:12]

    def read_file(self, path: str) -> bytes | None:
        return self.repo.read_file(self.commit, path)

    def list_files(self, prefix: str) -> tuple[str, ...]:
        return self.repo.list_files(self.commit, prefix)

    def list_dirs(self, prefix: str) -> tuple[str, ...]:
        return self.repo.list_dirs(self.commit, prefix)


def has_file(snapshot: Snapshot, path: str) -> bool:
    """Return whether file *path* exists in *snapshot*; a file too large to read still exists."""
    try:
        return snapshot.read_file(path) is not None
    except FileTooLargeError:
        return True


@cache
def load_builtin_formulas() -> dict[str, Formula]:
    """Return the formulas shipped with opsvault, by name."""
    root = data_dir("formulas")
    return {
        f.name: f
        for f in (
            parse_formula(p.read_bytes(), f"formulas/{p.name}")
            for p in sorted(root.glob("*.toml"))
        )
    }


def iter_local_formulas(
    snapshot: Snapshot,
) -> Iterator[tuple[str, Formula | InvalidFileError]]:
    """Yield (path, formula or the error that makes it unusable) for the ops repo's own formulas."""
    for path in snapshot.list_files(FORMULAS_DIR):
        if not path.endswith(".toml") or path.count("/") != 2:
            continue
        content = snapshot.read_file(path)
        try:
            yield path, parse_formula(content or b"", path)
        except InvalidFileError as exc:
            yield path, exc


@cache
def _builtin_formula(name: str) -> Formula | None:
    # A name from an action file, checked before it becomes a path.
    if not FORMULA_NAME.fullmatch(name):
        return None
    path = data_dir("formulas") / f"{name}.toml"
    if not path.is_file():
        return None
    return parse_formula(path.read_bytes(), f"formulas/{path.name}")


@cache
def _builtin_names() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in data_dir("formulas").glob("*.toml")))


class FormulaSet(Mapping[str, Formula]):
    """Built-in formulas overlaid with a snapshot's valid ``vault/formulas/*.toml``.

    A formula's name is its file stem (``parse_formula`` checks it), so looking
    one up parses that one file only: classifying an action costs the formula
    it names, not every formula (issue 11). An invalid ops formula is left out
    (a built-in of its name stays), so actions naming it fail closed as unknown.
    Iterating parses them all, in the order built-ins first, then the rest.
    """

    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self._local = {
            path.rsplit("/", 1)[1].removesuffix(".toml"): path
            for path in snapshot.list_files(FORMULAS_DIR)
            if path.endswith(".toml") and path.count("/") == 2
        }
        self._parsed: dict[str, Formula | None] = {}

    def _load(self, name: str) -> Formula | None:
        path = self._local.get(name)
        if path is not None:
            # Read outside the try: a formula too large to read fails the lookup
            # (closed), it does not let the built-in of that name stand in.
            content = self._snapshot.read_file(path) or b""
            try:
                return parse_formula(content, path)
            except InvalidFileError:
                pass
        return _builtin_formula(name)

    def __getitem__(self, name: str) -> Formula:
        if name not in self._parsed:
            self._parsed[name] = self._load(name)
        formula = self._parsed[name]
        if formula is None:
            raise KeyError(name)
        return formula

    def _names(self) -> list[str]:
        builtin = _builtin_names()
        names = [*builtin, *sorted(set(self._local) - set(builtin))]
        return [n for n in names if self.get(n) is not None]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


def load_formulas(snapshot: Snapshot) -> Mapping[str, Formula]:
    """Return built-in formulas overlaid with the snapshot's valid ``vault/formulas/*.toml``.

    An invalid ops formula is left out, so actions naming it fail closed as
    unknown; ``vault policy check`` reports it. Formulas are parsed when
    looked up (:class:`FormulaSet`).
    """
    return FormulaSet(snapshot)


def load_policy(snapshot: Snapshot) -> Policy:
    """Return the snapshot's policy; ConfigError if absent, PolicyError if invalid."""
    content = snapshot.read_file(POLICY_PATH)
    if content is None:
        raise ConfigError(
            f"{snapshot.label}",
            f"no {POLICY_PATH} here",
            "point --ops at an ops repo made by `vault init`",
        )
    return parse_policy(content, POLICY_PATH)


def used_ids(snapshot: Snapshot) -> frozenset[str]:
    """Return every action id present in the snapshot's actions, running, fired or rejected."""
    return frozenset(
        path.rsplit("/", 1)[-1].removesuffix(".toml")
        for directory in RECORD_DIRS
        for path in snapshot.list_files(directory)
        if path.endswith(".toml")
    )


class UsedIds(Collection[str]):
    """The ids used in a snapshot, answering ``id in used`` without listing history.

    Membership looks for ``<id>.toml`` in actions, running and each month folder
    of fired and rejected: its cost grows with the number of months archived,
    not with the number of records. Iterating lists everything (rarely needed).
    """

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self._months: tuple[str, ...] | None = None
        self._all: frozenset[str] | None = None

    def _archive_dirs(self) -> tuple[str, ...]:
        if self._months is None:
            self._months = tuple(
                f"{family}/{year}/{month}"
                for family in RECORD_DIRS[2:]
                for year in self.snapshot.list_dirs(family)
                for month in self.snapshot.list_dirs(f"{family}/{year}")
            )
        return self._months

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, str) or "/" in item or not item:
            return False
        folders = (*RECORD_DIRS[:2], *self._archive_dirs())
        return any(
            has_file(self.snapshot, f"{folder}/{item}.toml") for folder in folders
        )

    def _everything(self) -> frozenset[str]:
        if self._all is None:
            self._all = used_ids(self.snapshot)
        return self._all

    def __iter__(self) -> Iterator[str]:
        return iter(self._everything())

    def __len__(self) -> int:
        return len(self._everything())


def load_base_state(snapshot: Snapshot) -> BaseState:
    """Return the trusted inputs of classification taken from *snapshot*."""
    return BaseState(load_policy(snapshot), load_formulas(snapshot), UsedIds(snapshot))


def find_ops_root(start: Path) -> Path | None:
    """Return the nearest directory at or above *start* that holds vault/policy.toml."""
    start = start.resolve()
    for candidate in (start, *start.parents):
        if (candidate / POLICY_PATH).is_file():
            return candidate
    return None
