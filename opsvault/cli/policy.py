"""`vault policy check|diff|test`: keep an ops repo's policy correct and under test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from opsvault.cli.options import json_option, ops_option, resolve_ops
from opsvault.cli.policy_diff import diff
from opsvault.errors import InvalidFileError, Problem
from opsvault.layout import POLICY, POLICY_TESTS

if TYPE_CHECKING:
    from opsvault.policy.casereport import CaseInput


@click.group()
def policy() -> None:
    """Check, compare and test vault/policy.toml."""


@policy.command()
@ops_option
@json_option
def check(ops: Path | None, as_json: bool) -> None:
    """Lint the ops repo's policy and formulas, reporting every problem at once.

    Errors (exit 1): schema problems, formulas named but missing, secrets scoped
    to a formula but not allowed, default_tier below medium, rules that can
    never match, invalid ops formulas, notify names without a sink.
    Warnings: secrets scoped to unknown formulas, ops formulas replacing built-ins.
    A schema problem does not hide the others: the valid rest is still linted.
    """
    from opsvault.cli.envelope import emit
    from opsvault.policy.lint import LintFinding, lint_policy
    from opsvault.policy.parse import read_policy
    from opsvault.snapshot import (
        DirSnapshot,
        iter_local_formulas,
        load_builtin_formulas,
        load_formulas,
    )

    root = resolve_ops(ops)
    snapshot = DirSnapshot(root)
    findings: list[tuple[str, LintFinding]] = []
    for path, formula in iter_local_formulas(snapshot):
        if isinstance(formula, InvalidFileError):
            findings.extend((path, LintFinding("error", p)) for p in formula.problems)
    try:
        reading = read_policy(snapshot.read_file(POLICY) or b"", POLICY)
    except InvalidFileError as exc:  # not TOML, or too large: nothing to lint
        findings.extend((POLICY, LintFinding("error", p)) for p in exc.problems)
    else:
        findings.extend((POLICY, LintFinding("error", p)) for p in reading.problems)
        if reading.policy is not None:
            formulas = load_formulas(snapshot)
            local = {
                f.name
                for _p, f in iter_local_formulas(snapshot)
                if not isinstance(f, InvalidFileError)
            }
            shadowed = frozenset(local & set(load_builtin_formulas()))
            for f in lint_policy(reading.policy, formulas, shadowed):
                (problem,) = reading.original_problems([f.problem])
                findings.append((POLICY, LintFinding(f.severity, problem)))
    errors = [f for f in findings if f[1].severity == "error"]
    if as_json:
        emit(
            {
                "errors": len(errors),
                "warnings": len(findings) - len(errors),
                "findings": [
                    {
                        "file": where,
                        "severity": f.severity,
                        "path": f.problem.path,
                        "message": f.problem.message,
                    }
                    for where, f in findings
                ],
            },
            ok=not errors,
        )
    else:
        for where, f in findings:
            click.echo(f"{f.severity}: {f.problem.render(where)}")
        click.echo(f"{len(errors)} error(s), {len(findings) - len(errors)} warning(s)")
    if errors:
        raise SystemExit(1)


policy.add_command(diff)


@policy.command(name="test")
@click.argument(
    "paths",
    nargs=-1,
    type=click.Path(exists=True, path_type=Path),
)
@ops_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "junit", "tap"]),
    default=None,
    help="Output: text (default), json (as --json), junit (JUnit XML) or tap (TAP 14).",
)
@json_option
def test_cmd(
    paths: tuple[Path, ...], ops: Path | None, fmt: str | None, as_json: bool
) -> None:
    """Run policy test cases: the case files and directories in PATHS (default: vault/policy-tests).

    Each case is one TOML file: an [action] (or a [[change]] of several files)
    and an [expect] table with the tier, optionally the exact reasons and
    whether it is refused. A file that is not a valid case is reported as that
    case's error; the others still run. Exit 1 if any case fails or errs, or
    there is none: run it in the ops repo's CI (--format junit or tap for CI
    systems that read those).
    """
    from opsvault.cli.files import display_path
    from opsvault.policy.casereport import (
        case_run_data,
        render_case_run,
        run_cases,
    )
    from opsvault.snapshot import DirSnapshot, load_base_state

    if as_json and fmt not in (None, "json"):
        raise click.UsageError(f"--json and --format {fmt}: give one")
    fmt = "json" if as_json else (fmt or "text")
    root = resolve_ops(ops)
    base = load_base_state(DirSnapshot(root))
    asked = paths or (root / POLICY_TESTS,)
    where = ", ".join(display_path(p, root) for p in asked)
    run = run_cases(_case_inputs(asked, root), base, where)
    if fmt == "json":
        from opsvault.cli.envelope import emit

        emit(case_run_data(run), ok=run.ok)
    else:
        click.echo(render_case_run(run, fmt))
    if not run.ok:
        raise SystemExit(1)


def _case_inputs(paths: tuple[Path, ...], root: Path) -> Iterator[CaseInput]:
    """Each case file named, or found (*.toml) in a directory named, in order; unreadable ones carry why.

    A case is named by its path in the ops repo when it lies inside it.
    """
    from opsvault.cli.files import display_path
    from opsvault.policy.casereport import CaseInput
    from opsvault.snapshot import read_bounded

    for path in paths:
        files = sorted(path.glob("*.toml")) if path.is_dir() else [path]
        for file in files:
            name = display_path(file, root)
            try:
                yield CaseInput(name, read_bounded(file, name))
            except InvalidFileError as exc:
                yield CaseInput(name, problems=exc.problems)
            except OSError as exc:
                yield CaseInput(
                    name, problems=(Problem("$", f"cannot read: {exc.strerror}"),)
                )


def _register_suggest() -> None:
    # Its own module (issue 14 §3): `vault policy suggest`.
    from opsvault.cli.suggest import suggest

    policy.add_command(suggest)


_register_suggest()
