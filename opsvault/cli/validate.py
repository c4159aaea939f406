"""`vault validate`: check action, formula, policy and policy-test files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from opsvault.cli.files import (
    base_for,
    check_file,
    expand_paths,
    kind_option,
    ops_for,
)
from opsvault.cli.options import json_option, ops_option


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@ops_option
@kind_option
@json_option
def validate(
    paths: tuple[Path, ...], ops: Path | None, kind: str | None, as_json: bool
) -> None:
    """Validate action, formula, policy and policy-test files (or every *.toml below a directory).

    A file's kind is --kind, else where it sits (vault/policy.toml,
    formulas/, policy-tests/, actions/, fired/...), else what its keys say
    (a policy has [tiers], a formula steps, a test [expect]). `-` reads
    standard input. Action files are checked against the formulas and policy
    of the ops repo they sit in (or --ops): declared and typed params, secrets
    allowed for the formula, `expires` within the tier's deadline. Every
    problem is reported, as `file: $.json.path: message`. Exit 1 if any file
    is invalid, or a directory holds no *.toml file.

    \b
    Examples:
      vault validate vault/actions/publish-site-20261121-1.toml
      vault validate vault/ --json
      git show main:vault/policy.toml | vault validate - --kind policy
    """
    from opsvault.cli.envelope import emit
    from opsvault.policy.verdict_data import problems_data

    files = expand_paths(paths)
    root = ops_for(ops, files)
    now = datetime.now(UTC)
    base = base_for(root)
    reports = [check_file(source, root, now, base, kind) for source in files]
    ok = not any(r.problems for r in reports)
    if as_json:
        emit(
            {
                "files": [
                    {
                        "path": r.path,
                        "kind": r.kind,
                        "valid": not r.problems,
                        "tier": r.classification.tier.label
                        if r.classification
                        else None,
                        "problems": problems_data(r.problems),
                        "note": r.note,
                    }
                    for r in reports
                ],
            },
            ok=ok,
        )
    else:
        for r in reports:
            if r.problems:
                for p in r.problems:
                    click.echo(p.render(r.path))
            else:
                click.echo(f"{r.path}: ok ({r.kind}{'; ' + r.note if r.note else ''})")
    if not ok:
        raise SystemExit(1)
