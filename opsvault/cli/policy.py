"""`vault policy check|diff|test`: keep an ops repo's policy correct and under test."""

from __future__ import annotations

from pathlib import Path

import click

from opsvault.cli.options import json_option, ops_option, resolve_ops
from opsvault.cli.policy_diff import diff
from opsvault.errors import InvalidFileError, PolicyError, Problem
from opsvault.layout import POLICY, POLICY_TESTS


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
    "cases_dir",
    required=False,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
@ops_option
@json_option
def test_cmd(cases_dir: Path | None, ops: Path | None, as_json: bool) -> None:
    """Run the policy test cases in CASES_DIR (default: vault/policy-tests of the ops repo).

    Each case is one TOML file: an [action] (or a [[change]] of several files)
    and an [expect] table with the tier, optionally the exact reasons and
    whether it is refused. Exit 1 if any case fails: run it in the ops repo's CI.
    """
    from opsvault.policy.cases import parse_case, run_case
    from opsvault.snapshot import DirSnapshot, load_base_state, read_bounded

    root = resolve_ops(ops)
    directory = cases_dir if cases_dir is not None else root / POLICY_TESTS
    base = load_base_state(DirSnapshot(root))
    files = sorted(directory.glob("*.toml")) if directory.is_dir() else []
    if not files:
        raise PolicyError(
            str(directory), [Problem("$", "no policy test cases (*.toml) here")]
        )
    results = [
        run_case(parse_case(read_bounded(p, p.as_posix()), p.as_posix()), base)
        for p in files
    ]
    failed = [r for r in results if not r.passed]
    if as_json:
        from opsvault.cli.envelope import emit

        emit(
            {
                "passed": len(results) - len(failed),
                "failed": len(failed),
                "cases": [
                    {
                        "case": r.case.name,
                        "passed": r.passed,
                        "failures": list(r.failures),
                    }
                    for r in results
                ],
            },
            ok=not failed,
        )
    else:
        for r in results:
            click.echo(
                f"{'PASS' if r.passed else 'FAIL'} {r.case.name}{': ' + r.case.description if r.case.description else ''}"
            )
            for failure in r.failures:
                click.echo(f"     {failure}")
        click.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed:
        raise SystemExit(1)


def _register_suggest() -> None:
    # Its own module (issue 14 §3): `vault policy suggest`.
    from opsvault.cli.suggest import suggest

    policy.add_command(suggest)


_register_suggest()
