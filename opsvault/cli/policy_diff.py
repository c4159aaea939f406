"""`vault policy diff`: what changing the policy would do, replayed on real actions.

The actions replayed are those of ``--actions DIR`` (every action file below
it) and, unless ``--no-history``, the recent history on the ops repo's base
branch: ``vault/fired/`` and ``vault/rejected/`` month folders from ``--since``
ago until now. History that no longer parses (refused proposals are filed
there too) is counted as skipped; a bad file in ``--actions`` is an error,
named, and the rest is still replayed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from opsvault.cli.files import STDIN, STDIN_NAME, display_path, expand_paths
from opsvault.cli.options import json_option, ops_option, resolve_ops, shown
from opsvault.errors import GitError, InvalidFileError, Problem
from opsvault.layout import FIRED, REJECTED

if TYPE_CHECKING:
    from opsvault.snapshot import Snapshot
    from opsvault.vault.request import Action


@dataclass(slots=True)
class Replay:
    """The actions to replay and where they came from."""

    actions: list[Action] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)
    invalid: list[tuple[str, tuple[Problem, ...]]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    def add(self, action: Action) -> bool:
        if action.id in self.seen:
            return False
        self.seen.add(action.id)
        self.actions.append(action)
        return True


@click.command()
@click.argument(
    "old",
    type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path),
)
@click.argument(
    "new",
    type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path),
)
@click.option(
    "--actions",
    "actions_dirs",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Also replay every action file below this directory (repeatable).",
)
@click.option(
    "--history/--no-history",
    default=True,
    help="Replay vault/fired/ and vault/rejected/ on the base branch (default: on).",
)
@click.option(
    "--since",
    default="90d",
    show_default=True,
    help="How far back history goes, as a duration ('30d', '12h').",
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
    actions_dirs: tuple[Path, ...],
    history: bool,
    since: str,
    ops: Path | None,
    fail_on_lowering: bool,
    as_json: bool,
) -> None:
    """Show the impact of changing policy OLD into NEW: every tier that moves, lowerings flagged.

    Compared: default_tier, each formula's tier, each [[paths]] pattern, each
    [[rules]] escalation (added, removed, tier or condition changed: a rule
    removed or changed counts as a lowering), and each replayed action. Formulas
    and history come from the ops repo (--ops, or the one you are in; built-in
    formulas and no history when there is none). Exit 1 when an --actions file
    is invalid (the others are still replayed), or with --fail-on-lowering
    when a tier would be lowered.

    Either policy may be `-`, read from standard input.

    \b
    Example:
      git show main:vault/policy.toml | vault policy diff - vault/policy.toml
    """
    from opsvault.cli.envelope import emit
    from opsvault.policy.impact import policy_impact
    from opsvault.policy.parse import parse_policy
    from opsvault.snapshot import (
        DirSnapshot,
        find_ops_root,
        load_builtin_formulas,
        load_formulas,
    )
    from opsvault.vault.duration import parse_duration

    try:
        window = parse_duration(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from exc
    root = resolve_ops(ops) if ops is not None else find_ops_root(Path.cwd())
    formulas = (
        load_formulas(DirSnapshot(root))
        if root is not None
        else load_builtin_formulas()
    )
    if str(old) == str(new) == STDIN:
        raise click.UsageError("only one of OLD and NEW can be '-' (standard input)")
    old_where, old_text = _policy_text(old, root)
    new_where, new_text = _policy_text(new, root)
    old_policy = parse_policy(old_text, old_where)
    new_policy = parse_policy(new_text, new_where)
    replay = Replay()
    for directory in actions_dirs:
        _replay_dir(replay, directory, root)
    if history and root is not None:
        _replay_history(replay, root, datetime.now(UTC) - window)
    changes = policy_impact(old_policy, new_policy, formulas, replay.actions)
    lowered = [c for c in changes if c.lowered]
    failed = bool(replay.invalid) or (fail_on_lowering and bool(lowered))
    if as_json:
        emit(
            {
                "old_policy": old_where,
                "new_policy": new_where,
                "changes": [
                    {
                        "subject": c.subject,
                        "old": c.old.label if c.old else None,
                        "new": c.new.label if c.new else None,
                        "lowered": c.lowered,
                        "note": c.note,
                    }
                    for c in changes
                ],
                "lowered": len(lowered),
                "replayed": replay.sources,
                "invalid": [
                    {
                        "path": where,
                        "valid": False,
                        "problems": [
                            {"path": p.path, "message": p.message} for p in problems
                        ],
                    }
                    for where, problems in replay.invalid
                ],
            },
            ok=not failed,
        )
    else:
        _echo(changes, replay)
    if failed:
        raise SystemExit(1)


def _policy_text(path: Path, root: Path | None) -> tuple[str, bytes]:
    """Return (the name errors give it, the bytes) of policy file *path*, ``-`` for stdin."""
    from opsvault.snapshot import read_bounded

    if str(path) == STDIN:
        (source,) = expand_paths([path])
        return STDIN_NAME, source.content or b""
    where = display_path(path, root)
    return where, read_bounded(path, where)


def _replay_dir(replay: Replay, directory: Path, root: Path | None) -> None:
    from opsvault.cli.files import sniff_kind
    from opsvault.layout import file_kind
    from opsvault.snapshot import read_bounded
    from opsvault.vault.request import parse_action
    from opsvault.vault.schema import MAX_FILE_BYTES

    count = 0
    for path in sorted(p for p in directory.rglob("*.toml") if ".git" not in p.parts):
        where = display_path(path, root)
        try:
            content = read_bounded(path, where, MAX_FILE_BYTES)
            kind = file_kind(path) or sniff_kind(content)
            if kind != "action":
                continue
            count += replay.add(parse_action(content, where))
        except InvalidFileError as exc:
            replay.invalid.append((where, exc.problems))
    replay.sources.append(
        {
            "from": display_path(directory, root),
            "base": None,
            "actions": count,
            "skipped": 0,
        }
    )


def _replay_history(replay: Replay, root: Path, start: datetime) -> None:
    """Replay the fired and rejected actions filed from *start*'s month on."""
    from opsvault.snapshot import CommitSnapshot, DirSnapshot
    from opsvault.vault.request import parse_action

    snapshot: Snapshot
    commit: str | None = None
    label = "work tree"
    if (root / ".git").exists():
        from opsvault.app import base_branch_of, open_repo

        repo = open_repo(root)
        branch = base_branch_of(repo)
        try:
            commit = repo.resolve(branch)
        except GitError as exc:
            raise GitError(
                exc.where,
                f"{exc.problem}; history is read from the base branch: set "
                "`git config opsvault.branch NAME`, or pass --no-history",
            ) from exc
        snapshot, label = CommitSnapshot(repo, commit), branch
    else:
        snapshot = DirSnapshot(root)
    first = f"{start:%Y/%m}"
    for family in (FIRED, REJECTED):
        count = skipped = 0
        for year in snapshot.list_dirs(family):
            for month in snapshot.list_dirs(f"{family}/{year}"):
                if f"{year}/{month}" < first:
                    continue
                for path in snapshot.list_files(f"{family}/{year}/{month}"):
                    if not path.endswith(".toml"):
                        continue
                    try:
                        action = parse_action(snapshot.read_file(path) or b"", path)
                    except InvalidFileError:
                        skipped += 1  # refused proposals are filed here too
                        continue
                    count += replay.add(action)
        replay.sources.append(
            {
                "from": f"{family}/ on {label} since {first}",
                "base": commit,
                "actions": count,
                "skipped": skipped,
            }
        )


def _echo(changes: list[Any], replay: Replay) -> None:
    for where, problems in replay.invalid:
        for p in problems:
            click.echo(f"error: {shown(p.render(where))}")
    if not changes:
        click.echo("no tier changes")
    for c in changes:
        mark = "  LOWERED" if c.lowered else ""
        note = f" ({c.note})" if c.note else ""
        click.echo(
            f"{shown(c.subject)}: {c.old.label if c.old else '-'} -> "
            f"{c.new.label if c.new else '-'}{note}{mark}"
        )
    for s in replay.sources:
        skipped = (
            f", {s['skipped']} skipped (not valid actions)" if s["skipped"] else ""
        )
        click.echo(f"replayed {s['actions']} action(s) from {s['from']}{skipped}")
