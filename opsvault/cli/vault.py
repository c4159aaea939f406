"""`vault validate`, `vault classify`, `vault request`, `vault formulas`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from opsvault.cli.options import echo_json, json_option, ops_option, resolve_ops, shown
from opsvault.errors import InvalidFileError, Problem
from opsvault.layout import file_kind

if TYPE_CHECKING:
    pass


@dataclass(frozen=True, slots=True)
class FileReport:
    path: str
    kind: str  # action | formula | policy | policy-test
    problems: tuple[Problem, ...]
    classification: Any = None  # Classification for actions
    note: str = ""


def _expand(paths: tuple[Path, ...]) -> list[Path]:
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


def _display(path: Path, root: Path | None) -> str:
    """Return *path* relative to the ops root when inside it, as errors name it."""
    if root is not None:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return path.as_posix()


def _kind(path: Path) -> str:
    return file_kind(path)


def _check_file(
    path: Path, ops: Path | None, now: datetime, base: Any = None
) -> FileReport:
    from opsvault.policy.assess import assess_action
    from opsvault.policy.parse import parse_policy
    from opsvault.snapshot import DirSnapshot, load_base_state, read_bounded
    from opsvault.vault.formula import parse_formula
    from opsvault.vault.request import parse_action

    where = _display(path, ops)
    kind = _kind(path)
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


def _base_for(root: Path | None) -> Any:
    """Return the base state of the ops repo at *root*, loaded once for a whole run."""
    from opsvault.snapshot import DirSnapshot, load_base_state

    return load_base_state(DirSnapshot(root)) if root is not None else None


def _ops_for(ops: Path | None, paths: list[Path]) -> Path | None:
    from opsvault.snapshot import find_ops_root

    if ops is not None:
        return resolve_ops(ops)
    for path in paths:
        found = find_ops_root(path.parent)
        if found is not None:
            return found
    return find_ops_root(Path.cwd())


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@ops_option
@json_option
def validate(paths: tuple[Path, ...], ops: Path | None, as_json: bool) -> None:
    """Validate action, formula, policy and policy-test files (or every *.toml below a directory).

    Action files are checked against the formulas and policy of the ops repo
    they sit in (or --ops): declared and typed params, secrets allowed for the
    formula, `expires` within the tier's deadline. Every problem is reported,
    as `file: $.json.path: message`. Exit 1 if any file is invalid.

    \b
    Examples:
      vault validate vault/actions/publish-site-20261121-1.toml
      vault validate vault/ --json
    """
    files = _expand(paths)
    root = _ops_for(ops, files)
    now = datetime.now(UTC)
    base = _base_for(root)
    reports = [_check_file(path, root, now, base) for path in files]
    if as_json:
        echo_json(
            {
                "ok": not any(r.problems for r in reports),
                "files": [
                    {
                        "path": r.path,
                        "kind": r.kind,
                        "valid": not r.problems,
                        "problems": [
                            {"path": p.path, "message": p.message} for p in r.problems
                        ],
                        "tier": r.classification.tier.label
                        if r.classification
                        else None,
                        "note": r.note,
                    }
                    for r in reports
                ],
            }
        )
    else:
        for r in reports:
            if r.problems:
                for p in r.problems:
                    click.echo(p.render(r.path))
            else:
                click.echo(f"{r.path}: ok ({r.kind}{'; ' + r.note if r.note else ''})")
    if any(r.problems for r in reports):
        raise SystemExit(1)


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@ops_option
@click.option(
    "--base",
    help="Classify a git change: the base ref (policy and formulas are read here).",
)
@click.option(
    "--head",
    help="Classify a git change: the head ref (the proposed files are read here).",
)
@click.option(
    "--explain", is_flag=True, help="Show every reason that contributed to each tier."
)
@json_option
def classify(
    paths: tuple[Path, ...],
    ops: Path | None,
    base: str | None,
    head: str | None,
    explain: bool,
    as_json: bool,
) -> None:
    """Print the blast-radius tier of action files, or of a whole git change.

    With PATHs: each action file is classified with the policy and formulas of
    the ops repo (--ops, default: the repo you are in). With --base and --head:
    the change HEAD brings relative to its merge base with BASE is classified
    exactly as the dispatcher classifies a pull request — policy and formulas
    from BASE, files from HEAD, built-in floors included.

    Exit 1 if anything is invalid (refused).

    \b
    Examples:
      vault classify vault/actions/rotate-key-1.toml --explain
      vault classify --ops . --base main --head vault/rotate-key-1 --json
    """
    from opsvault.report import change_verdict_data, classification_data, problems_data

    if (base is None) != (head is None):
        raise click.UsageError("--base and --head go together")
    if base is not None and head is not None:
        if paths:
            raise click.UsageError("give either PATHs or --base/--head, not both")
        verdict = _classify_change(resolve_ops(ops), base, head)
        if as_json:
            echo_json(change_verdict_data(verdict))
        else:
            flags = [
                f
                for f, on in (
                    ("refused", verdict.refused),
                    ("admin only", verdict.protected),
                )
                if on
            ]
            click.echo(
                f"change {base}..{head}: {verdict.tier.label}{' (' + ', '.join(flags) + ')' if flags else ''}"
            )
            for f in verdict.files:
                click.echo(
                    f"  {shown(f.path)} [{f.kind}]: {f.classification.tier.label}"
                )
                if explain:
                    for r in f.classification.reasons:
                        click.echo(f"    {shown(r.render())}")
                for p in f.problems:
                    click.echo(f"    {shown(p.render(f.path))}")
        if verdict.refused:
            raise SystemExit(1)
        return
    if not paths:
        raise click.UsageError("give action files to classify, or --base and --head")
    files = _expand(paths)
    root = resolve_ops(ops) if ops is not None else _ops_for(None, files)
    if root is None:
        raise click.UsageError("no ops repo found above the files; pass --ops DIR")
    now = datetime.now(UTC)
    base = _base_for(root)
    reports = [_check_file(path, root, now, base) for path in files]
    if as_json:
        echo_json(
            {
                "results": [
                    {
                        "path": r.path,
                        "refused": bool(r.problems),
                        "problems": problems_data(r.problems),
                        **(
                            classification_data(r.classification)
                            if r.classification
                            else {"tier": None, "reasons": []}
                        ),
                    }
                    for r in reports
                ]
            }
        )
    else:
        for r in reports:
            tier = r.classification.tier.label if r.classification else "invalid"
            click.echo(f"{r.path}: {tier}{' (refused)' if r.problems else ''}")
            if explain and r.classification:
                for reason in r.classification.reasons:
                    click.echo(f"  {reason.render()}")
            for p in r.problems:
                click.echo(f"  {p.render(r.path)}")
    if any(r.problems for r in reports):
        raise SystemExit(1)


def _classify_change(ops: Path, base: str, head: str) -> Any:
    from opsvault.app import open_repo
    from opsvault.changes import classify_ref_change

    return classify_ref_change(open_repo(ops), base, head).verdict


@click.command()
@ops_option
@json_option
def formulas(ops: Path | None, as_json: bool) -> None:
    """List the formulas actions can name: built-in ones and the ops repo's own."""
    from opsvault.snapshot import (
        DirSnapshot,
        find_ops_root,
        load_builtin_formulas,
        load_formulas,
    )

    root = ops if ops is not None else find_ops_root(Path.cwd())
    found = (
        load_formulas(DirSnapshot(root))
        if root is not None
        else load_builtin_formulas()
    )
    builtin = load_builtin_formulas()
    rows = [
        {
            "name": f.name,
            "source": "built-in" if builtin.get(f.name) is f else "ops repo",
            "blast_radius": f.blast_radius.label if f.blast_radius else None,
            "params": [p.name for p in f.params],
            "secrets": list(f.secrets),
            "description": f.description,
        }
        for f in sorted(found.values(), key=lambda f: f.name)
    ]
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(
            f"{row['name']} ({row['source']}, {row['blast_radius'] or 'default tier'}): {row['description']}"
        )
