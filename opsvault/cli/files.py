"""What `vault validate` and `vault classify` share: find the files, tell their kind, check each.

A file's kind comes from ``--kind``, else from where it sits (``layout.file_kind``:
``vault/policy.toml``, ``formulas/``, ``policy-tests/``, ``actions/``...), else
from its content (a copy of the policy in /tmp is still a policy). ``-`` reads
standard input.
"""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from opsvault.cli.options import resolve_ops
from opsvault.errors import InvalidFileError, Problem
from opsvault.layout import file_kind

if TYPE_CHECKING:
    from opsvault.policy.classify import BaseState

KINDS = ("action", "formula", "policy", "policy-test")
STDIN = "-"
STDIN_NAME = "<stdin>"


class NothingToCheck(InvalidFileError):
    """A directory (or set of paths) holds no file to check: saying so beats a silent exit 0."""

    def __init__(self, where: str, what: str) -> None:
        super().__init__(where, [Problem("$", f"no {what} here; nothing checked")])
        self.args = (f"{where}: no {what} below it; nothing checked",)


@dataclass(frozen=True, slots=True)
class FileReport:
    """What checking one file found: its kind, its problems and, for an action, its tier."""

    path: str
    kind: str  # action | formula | policy | policy-test
    problems: tuple[Problem, ...]
    classification: Any = None  # Classification for actions
    note: str = ""


@dataclass(frozen=True, slots=True)
class InputFile:
    """One file to check: a path, or standard input (``path`` None)."""

    path: Path | None
    content: bytes | None = None  # read up front for standard input


def kind_option(f: Any) -> Any:
    return click.option(
        "--kind",
        type=click.Choice(KINDS),
        default=None,
        help="What the files are. Default: from where each sits, else from its content.",
    )(f)


def expand_paths(paths: Sequence[Path], what: str = "*.toml files") -> list[InputFile]:
    """Return the files *paths* name: files as given, every ``*.toml`` below a directory.

    ``-`` is standard input, read once. Raise InvalidFileError for a directory
    with nothing to check (an empty directory is a mistake worth saying so)
    and click.BadParameter for a path that does not exist.
    """
    files: list[InputFile] = []
    for path in paths:
        if str(path) == STDIN:
            files.append(InputFile(None, _read_stdin()))
        elif path.is_dir():
            below = sorted(p for p in path.rglob("*.toml") if ".git" not in p.parts)
            if not below:
                raise NothingToCheck(path.as_posix(), what)
            files.extend(InputFile(p) for p in below)
        elif path.is_file():
            files.append(InputFile(path))
        else:
            raise click.BadParameter(f"{str(path)!r} does not exist", param_hint="PATH")
    return files


def _read_stdin() -> bytes:
    from opsvault.vault.bounded import MAX_BLOB_BYTES

    data: bytes = sys.stdin.buffer.read(MAX_BLOB_BYTES + 1)
    return data


def display_path(path: Path, root: Path | None) -> str:
    """Return *path* relative to the ops root when inside it, as errors name it."""
    if root is not None:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return path.as_posix()


def sniff_kind(content: bytes) -> str:
    """Return the kind a TOML document's keys say it is; ``action`` when they say nothing.

    A policy has ``tiers`` or ``default_tier``, a formula ``steps``, a policy
    test ``expect``. Text that is not TOML is checked as an action (whose
    parser then names the syntax error).
    """
    from opsvault.vault.schema import MAX_FILE_BYTES

    if len(content) > MAX_FILE_BYTES:  # never parsed (I5); the parser says why
        return "action"
    try:
        data = tomllib.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError, ValueError):
        return "action"
    if "expect" in data:
        return "policy-test"
    if "steps" in data:
        return "formula"
    if "tiers" in data or "default_tier" in data:
        return "policy"
    return "action"


# An action read from standard input has no file stem: its `id` key names it.
_STDIN_ID_PROBLEM = Problem(
    "$.id",
    "required when the action is read from standard input (a file's id is its stem)",
)
_STDIN_PLACEHOLDER = "stdin-action.toml"


def _stdin_where(content: bytes) -> str | None:
    """The name an action read from standard input is parsed under: ``<id>.toml``."""
    from opsvault.vault.schema import MAX_FILE_BYTES

    if len(content) > MAX_FILE_BYTES:
        return None
    try:
        data = tomllib.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError, ValueError):
        return None
    action_id = data.get("id")
    return f"{action_id}.toml" if isinstance(action_id, str) else None


def check_file(
    source: InputFile,
    ops: Path | None,
    now: datetime,
    base: Callable[[], BaseState] | None = None,
    kind: str | None = None,
    only: str | None = None,
) -> FileReport:
    """Check one file by its kind; with *only*, a file of another kind is one problem."""
    from opsvault.policy.parse import parse_policy
    from opsvault.snapshot import read_bounded
    from opsvault.vault.formula import parse_formula

    where = STDIN_NAME if source.path is None else display_path(source.path, ops)
    try:
        content = (
            source.content if source.path is None else read_bounded(source.path, where)
        ) or b""
        kind = kind or (file_kind(source.path) if source.path else None)
        kind = kind or sniff_kind(content)
        if only is not None and kind != only:
            return FileReport(
                where,
                kind,
                (
                    Problem(
                        "$",
                        f"not an action file (it reads as a {kind}); "
                        f"check it with `vault validate`",
                    ),
                ),
            )
        if kind == "policy":
            parse_policy(content, where)
        elif kind == "formula":
            parse_formula(content, where)
        elif kind == "policy-test":
            from opsvault.policy.cases import parse_case

            parse_case(content, where)
        else:
            return _check_action(source, where, content, ops, now, base)
    except InvalidFileError as exc:
        return FileReport(where, kind or "action", exc.problems)
    return FileReport(where, kind, ())


def _check_action(
    source: InputFile,
    where: str,
    content: bytes,
    ops: Path | None,
    now: datetime,
    base: Callable[[], BaseState] | None,
) -> FileReport:
    from opsvault.policy.assess import assess_action
    from opsvault.vault.request import parse_action

    name = where
    extra: tuple[Problem, ...] = ()
    if source.path is None:
        found = _stdin_where(content)
        if found is None:
            name, extra = _STDIN_PLACEHOLDER, (_STDIN_ID_PROBLEM,)
        else:
            name = found
    try:
        action = parse_action(content, name)
    except InvalidFileError as exc:
        return FileReport(where, "action", (*extra, *exc.problems))
    if base is None:
        return FileReport(
            where, "action", extra, note="form only: no ops repo to check against"
        )
    try:
        state = base()
    except InvalidFileError as exc:
        problem = Problem(
            "$",
            f"cannot be checked against the ops repo: {exc.where} is invalid; "
            "see `vault policy check`",
        )
        return FileReport(where, "action", (*extra, problem))
    # A record (running, fired, rejected) was admitted when it was proposed:
    # its `expires` is history, not a deadline still to meet.
    when = None if source.path is not None and _is_record(where) else now
    assessment = assess_action(action, state.formulas, state.policy, when)
    return FileReport(
        where, "action", (*extra, *assessment.problems), assessment.classification
    )


def _is_record(where: str) -> bool:
    """Whether *where* (repo-relative inside the ops repo) is a record, not a proposal."""
    from opsvault.layout import FIRED, REJECTED, RUNNING

    return where.startswith(tuple(f"{d}/" for d in (RUNNING, FIRED, REJECTED)))


def base_for(root: Path | None) -> Callable[[], BaseState] | None:
    """Return what loads the base state of the ops repo at *root*, once, when first needed.

    None without an ops repo. Loading raises PolicyError (or ConfigError) when
    the repo's policy is unusable; an action checked then says so.
    """
    if root is None:
        return None
    from opsvault.snapshot import DirSnapshot, load_base_state

    return cache(lambda: load_base_state(DirSnapshot(root)))


def ops_for(ops: Path | None, sources: Sequence[InputFile]) -> Path | None:
    from opsvault.snapshot import find_ops_root

    if ops is not None:
        return resolve_ops(ops)
    for source in sources:
        if source.path is not None:
            found = find_ops_root(source.path.parent)
            if found is not None:
                return found
    return find_ops_root(Path.cwd())
