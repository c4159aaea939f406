"""`vault classify`: the tier of action files, or of a git change (base, head)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from opsvault.cli.files import (
    STDIN,
    FileReport,
    NothingToCheck,
    Source,
    base_for,
    check_file,
    expand_paths,
    ops_for,
)
from opsvault.cli.options import json_option, ops_option, resolve_ops, shown
from opsvault.errors import ConfigError

if TYPE_CHECKING:
    from opsvault.changes import ClassifiedChange


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

    A file named on the command line must be an action file (a policy,
    formula or policy test is "not an action file", exit 1); below a
    directory, every action file is classified and other files are left to
    `vault validate`. `-` reads an action from standard input (its `id` key
    names it). Exit 1 if anything is invalid (refused) or a directory holds
    no action file.

    \b
    Examples:
      vault classify vault/actions/rotate-key-1.toml --explain
      vault classify --ops . --base main --head vault/rotate-key-1 --json
    """
    from opsvault.cli.envelope import emit
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
        change = _classify_change(resolve_ops(ops), base, head)
        verdict = change.verdict
        if as_json:
            emit(
                {
                    "base": change.base_commit,
                    "head": change.head_commit,
                    **change_verdict_data(verdict),
                },
                ok=not verdict.refused,
            )
        else:
            _echo_change(base, head, verdict, explain)
        if verdict.refused:
            raise SystemExit(1)
        return
    if not paths:
        raise click.UsageError("give action files to classify, or --base and --head")
    sources = expand_paths(paths, "*.toml files")
    root = resolve_ops(ops) if ops is not None else ops_for(None, sources)
    if root is None:
        raise ConfigError(
            str(Path.cwd()),
            "no ops repo found above the files (no vault/policy.toml)",
            "pass --ops DIR",
        )
    now = datetime.now(UTC)
    state = base_for(root)
    reports = _reports(paths, sources, root, now, state)
    ok = not any(r.problems for r in reports)
    if as_json:
        emit(
            {
                "files": [
                    {
                        "path": r.path,
                        "kind": r.kind,
                        "valid": not r.problems,
                        **(
                            classification_data(r.classification)
                            if r.classification
                            else {"tier": None, "reasons": []}
                        ),
                        "problems": problems_data(r.problems),
                    }
                    for r in reports
                ]
            },
            ok=ok,
        )
    else:
        for r in reports:
            if r.classification is None:
                verdict_text = "not an action file" if r.kind != "action" else "invalid"
            else:
                verdict_text = r.classification.tier.label
                verdict_text += " (refused)" if r.problems else ""
            click.echo(f"{r.path}: {verdict_text}")
            if explain and r.classification:
                for reason in r.classification.reasons:
                    click.echo(f"  {shown(reason.render())}")
            for p in r.problems:
                click.echo(f"  {shown(p.render(r.path))}")
    if not ok:
        raise SystemExit(1)


def _reports(
    paths: tuple[Path, ...],
    sources: list[Source],
    root: Path,
    now: datetime,
    state: Any,
) -> list[FileReport]:
    """Check every source; below a directory, only action files count (as in `validate`)."""
    listed = {p.resolve() for p in paths if str(p) != STDIN and p.is_file()}
    reports = []
    for source in sources:
        explicit = source.path is None or source.path.resolve() in listed
        report = check_file(source, root, now, state, only="action")
        if explicit or report.kind == "action":
            reports.append(report)
    if not reports:
        raise NothingToCheck(", ".join(p.as_posix() for p in paths), "action files")
    return reports


def _echo_change(base: str, head: str, verdict: Any, explain: bool) -> None:
    flags = [
        f
        for f, on in (("refused", verdict.refused), ("admin only", verdict.protected))
        if on
    ]
    suffix = f" ({', '.join(flags)})" if flags else ""
    click.echo(f"change {base}..{head}: {verdict.tier.label}{suffix}")
    for f in verdict.files:
        click.echo(f"  {shown(f.path)} [{f.kind}]: {f.classification.tier.label}")
        if explain:
            for r in f.classification.reasons:
                click.echo(f"    {shown(r.render())}")
        for p in f.problems:
            click.echo(f"    {shown(p.render(f.path))}")


def _classify_change(ops: Path, base: str, head: str) -> ClassifiedChange:
    from opsvault.app import open_repo
    from opsvault.changes import classify_ref_change

    return classify_ref_change(open_repo(ops), base, head)
