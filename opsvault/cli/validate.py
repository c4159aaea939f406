"""`vault validate`: check action, formula, policy and policy-test files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from opsvault.cli.files import (
    base_for,
    check_file,
    expand_paths,
    ops_for,
)
from opsvault.cli.options import echo_json, json_option, ops_option


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
    files = expand_paths(paths)
    root = ops_for(ops, files)
    now = datetime.now(UTC)
    base = base_for(root)
    reports = [check_file(path, root, now, base) for path in files]
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
