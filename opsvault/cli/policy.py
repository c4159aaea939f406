"""`vault policy check|diff|test`: keep an ops repo's policy correct and under test."""

from __future__ import annotations

from pathlib import Path

import click

from opsvault.cli.options import echo_json, json_option, ops_option, resolve_ops
from opsvault.errors import InvalidFileError, PolicyError, Problem
from opsvault.layout import ACTIONS, POLICY, POLICY_TESTS


@click.group()
def policy() -> None:
    """Check, compare and test vault/policy.toml."""


@policy.command()
@ops_option
@json_option
def check(ops: Path | None, as_json: bool) -> None:
    """Lint the ops repo's policy and formulas.

    Errors (exit 1): schema problems, formulas named but missing, secrets scoped
    to a formula but not allowed, default_tier below medium, rules that can
    never match, invalid ops formulas, notify names without a sink.
    Warnings: secrets scoped to unknown formulas, ops formulas replacing built-ins.
    """
    from opsvault.policy.lint import Finding, lint_policy
    from opsvault.snapshot import (
        DirSnapshot,
        iter_local_formulas,
        load_builtin_formulas,
        load_formulas,
        load_policy,
    )

    root = resolve_ops(ops)
    snapshot = DirSnapshot(root)
    findings: list[tuple[str, Finding]] = []
    for path, formula in iter_local_formulas(snapshot):
        if isinstance(formula, InvalidFileError):
            findings.extend((path, Finding("error", p)) for p in formula.problems)
    try:
        parsed = load_policy(snapshot)
    except PolicyError as exc:
        findings.extend((POLICY, Finding("error", p)) for p in exc.problems)
    else:
        formulas = load_formulas(snapshot)
        local = {
            f.name
            for _p, f in iter_local_formulas(snapshot)
            if not isinstance(f, InvalidFileError)
        }
        shadowed = frozenset(local & set(load_builtin_formulas()))
        findings.extend((POLICY, f) for f in lint_policy(parsed, formulas, shadowed))
    errors = [f for f in findings if f[1].severity == "error"]
    if as_json:
        echo_json(
            {
                "ok": not errors,
                "findings": [
                    {
                        "file": where,
                        "severity": f.severity,
                        "path": f.problem.path,
                        "message": f.problem.message,
                    }
                    for where, f in findings
                ],
            }
        )
    else:
        for where, f in findings:
            click.echo(f"{f.severity}: {f.problem.render(where)}")
        click.echo(f"{len(errors)} error(s), {len(findings) - len(errors)} warning(s)")
    if errors:
        raise SystemExit(1)


@policy.command()
@click.argument("old", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("new", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--actions",
    "actions_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Also show how each action file in this directory would change tier.",
)
@ops_option
@click.option(
    "--fail-on-lowering",
    is_flag=True,
    help="Exit 1 if any tier would be lowered (for CI).",
)
@json_option
def diff(
    old: Path,
    new: Path,
    actions_dir: Path | None,
    ops: Path | None,
    fail_on_lowering: bool,
    as_json: bool,
) -> None:
    """Show the impact of changing policy OLD into NEW: every tier that moves, lowerings flagged.

    Formulas come from the ops repo (--ops, or the one you are in; built-ins
    only when there is none).

    \b
    Example:
      git show main:vault/policy.toml > /tmp/old.toml
      vault policy diff /tmp/old.toml vault/policy.toml --actions vault/actions
    """
    from opsvault.policy.impact import policy_impact
    from opsvault.policy.parse import parse_policy
    from opsvault.snapshot import (
        DirSnapshot,
        find_ops_root,
        load_builtin_formulas,
        load_formulas,
        read_bounded,
    )
    from opsvault.vault.request import Action, parse_action
    from opsvault.vault.schema import MAX_FILE_BYTES

    root = ops if ops is not None else find_ops_root(Path.cwd())
    formulas = (
        load_formulas(DirSnapshot(root))
        if root is not None
        else load_builtin_formulas()
    )
    old_policy = parse_policy(read_bounded(old, str(old)), str(old))
    new_policy = parse_policy(read_bounded(new, str(new)), str(new))
    actions: list[Action] = []
    if actions_dir is not None:
        for path in sorted(actions_dir.glob("*.toml")):
            actions.append(
                parse_action(
                    read_bounded(path, str(path), MAX_FILE_BYTES),
                    f"{ACTIONS}/{path.name}",
                )
            )
    changes = policy_impact(old_policy, new_policy, formulas, actions)
    lowered = [c for c in changes if c.lowered]
    if as_json:
        echo_json(
            {
                "changes": [
                    {
                        "subject": c.subject,
                        "old": c.old.label if c.old else None,
                        "new": c.new.label if c.new else None,
                        "lowered": c.lowered,
                    }
                    for c in changes
                ],
                "lowered": len(lowered),
            }
        )
    else:
        if not changes:
            click.echo("no tier changes")
        for c in changes:
            mark = "  LOWERED" if c.lowered else ""
            click.echo(
                f"{c.subject}: {c.old.label if c.old else '-'} -> {c.new.label if c.new else '-'}{mark}"
            )
    if fail_on_lowering and lowered:
        raise SystemExit(1)


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
        echo_json(
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
            }
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
