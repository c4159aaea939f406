"""What `vault validate` and `vault classify` share: find the files, check each by kind."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from opsvault.cli.options import resolve_ops
from opsvault.errors import InvalidFileError, Problem
from opsvault.layout import file_kind


@dataclass(frozen=True, slots=True)
class FileReport:
    path: str
    kind: str  # action | formula | policy | policy-test
    problems: tuple[Problem, ...]
    classification: Any = None  # Classification for actions
    note: str = ""


def expand_paths(paths: tuple[Path, ...]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                sorted(p for p in path.rglob("*.toml") if ".git" not in p.parts)
            )
        elif path.is_file():
            files.append(path)
        else:
            raise click.BadParameter(f"{str(path)!r} does not exist", param_hint="PATH")
    return files


def display_path(path: Path, root: Path | None) -> str:
    """Return *path* relative to the ops root when inside it, as errors name it."""
    if root is not None:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return path.as_posix()


def kind_of(path: Path) -> str:
    return file_kind(path)


def check_file(
    path: Path, ops: Path | None, now: datetime, base: Any = None
) -> FileReport:
    from opsvault.policy.assess import assess_action
    from opsvault.policy.parse import parse_policy
    from opsvault.snapshot import DirSnapshot, load_base_state, read_bounded
    from opsvault.vault.formula import parse_formula
    from opsvault.vault.request import parse_action

    where = display_path(path, ops)
    kind = kind_of(path)
    try:
        content = read_bounded(path, where)
        if kind == "policy":
            parse_policy(content, where)
        elif kind == "formula":
            parse_formula(content, where)
        elif kind == "policy-test":
            from opsvault.policy.cases import parse_case

            parse_case(content, where)
        else:
            action = parse_action(content, where)
            if ops is None:
                return FileReport(
                    where, kind, (), note="form only: no ops repo to check against"
                )
            base = base or load_base_state(DirSnapshot(ops))
            assessment = assess_action(action, base.formulas, base.policy, now)
            return FileReport(
                where, kind, assessment.problems, assessment.classification
            )
    except InvalidFileError as exc:
        return FileReport(where, kind, exc.problems)
    return FileReport(where, kind, ())


def base_for(root: Path | None) -> Any:
    """Return the base state of the ops repo at *root*, loaded once for a whole run."""
    from opsvault.snapshot import DirSnapshot, load_base_state

    return load_base_state(DirSnapshot(root)) if root is not None else None


def ops_for(ops: Path | None, paths: list[Path]) -> Path | None:
    from opsvault.snapshot import find_ops_root

    if ops is not None:
        return resolve_ops(ops)
    for path in paths:
        found = find_ops_root(path.parent)
        if found is not None:
            return found
    return find_ops_root(Path.cwd())
