"""`vault classify`: the tier of action files, or of a git change (base, head)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from opsvault.cli.files import (
    base_for,
    check_file,
    expand_paths,
    ops_for,
)
from opsvault.cli.options import echo_json, json_option, ops_option, resolve_ops, shown


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
    from opsvault.policy.verdict_data import (
        change_verdict_data,
        classification_data,
        problems_data,
    )

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
    files = expand_paths(paths)
    root = resolve_ops(ops) if ops is not None else ops_for(None, files)
    if root is None:
        raise click.UsageError("no ops repo found above the files; pass --ops DIR")
    now = datetime.now(UTC)
    base = base_for(root)
    reports = [check_file(path, root, now, base) for path in files]
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
