"""`vault status`: HALT, approved actions waiting, running claims, recent results, proposals."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from opsvault.cli.envelope import emit
from opsvault.cli.options import json_option, ops_option, resolve_ops, shown
from opsvault.layout import PROPOSAL_PREFIX

if TYPE_CHECKING:
    from opsvault.dispatcher.status import PendingProposal, Status
    from opsvault.git.pygit2_repo import Pygit2OpsRepo


@click.command()
@ops_option
@click.option(
    "--ref",
    help="Read this commit or branch of the ops repo instead of main (git repos only).",
)
@click.option(
    "--worktree",
    is_flag=True,
    help="Read the working tree instead of the main branch.",
)
@click.option(
    "--recent",
    type=click.IntRange(0, 1000),
    default=20,
    show_default=True,
    help="How many finished actions to show.",
)
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help="Show whole contexts and every problem of every entry.",
)
@click.option(
    "--quiet",
    "-q",
    is_flag=True,
    help="Show the summary only: HALT, warnings and how many are in each state.",
)
@click.option(
    "--serve",
    "serve_port",
    type=click.IntRange(0, 65535),
    default=None,
    metavar="PORT",
    help="Serve this status as a read-only web page (and /metrics) on PORT "
    "(0: any free port) until Ctrl-C.",
)
@click.option(
    "--bind",
    default="127.0.0.1",
    show_default=True,
    help="With --serve: the address to listen on.",
)
@json_option
def status(
    ops: Path | None,
    ref: str | None,
    worktree: bool,
    recent: int,
    verbose: bool,
    quiet: bool,
    serve_port: int | None,
    bind: str,
    as_json: bool,
) -> None:
    """Show what the vault is doing: HALT, waiting, running, recent results, proposals.

    In a git ops repo the main branch is read (what the dispatcher sees), not
    the working tree; --worktree reads the files on disk instead, --ref another
    commit. Proposals are branches `vault/*` not merged into what is read, each
    with the tier of its change.

    \b
    Examples:
      vault status
      vault status --ops ~/ops --json
      vault status --serve 8470
    """
    if worktree and ref is not None:
        raise click.UsageError("give either --ref or --worktree, not both")
    if verbose and quiet:
        raise click.UsageError("give either --verbose or --quiet, not both")
    root = resolve_ops(ops)
    if serve_port is not None:  # docs/operating.md "Status page"
        from opsvault.web.local_serve import serve_status

        def fetch(now: datetime) -> Status:
            return fetch_status(root, ref, worktree, now, recent)

        fetch(datetime.now(UTC))  # a bad --ref fails here, not in a page view
        serve_status(
            root,
            fetch,
            bind=bind,
            port=serve_port,
            announce=lambda url: click.echo(f"status page: {url} (Ctrl-C stops)"),
        )
        return
    result = fetch_status(root, ref, worktree, datetime.now(UTC), recent)
    if as_json:
        emit(status_data(result, _base_commit(root, result)))
    else:
        from opsvault.cli.table import colour_enabled

        colour = colour_enabled()
        for line in render_status(result, colour=colour, verbose=verbose, quiet=quiet):
            click.echo(line, color=colour)


def fetch_status(
    root: Path, ref: str | None, worktree: bool, now: datetime, recent: int = 20
) -> Status:
    """Return the status of the ops repo at *root*: its main branch (or *ref*) when it is a git repo."""
    from opsvault.app import base_branch_of
    from opsvault.dispatcher.status import collect_status
    from opsvault.snapshot import CommitSnapshot, DirSnapshot, Snapshot, load_base_state

    repo = None if worktree else _open_repo(root)
    snapshot: Snapshot
    if repo is None:
        if ref is not None:
            raise click.UsageError(
                f"--ref needs a git repository; {str(root)!r} is not one"
            )
        snapshot = DirSnapshot(root)
    else:
        if ref is None:
            from opsvault.cli.proposals import require_branch

            ref = base_branch_of(repo)
            require_branch(repo, ref)
        snapshot = CommitSnapshot(repo, repo.resolve(ref))
    result = collect_status(snapshot, load_base_state(snapshot), now, recent)
    if isinstance(snapshot, CommitSnapshot) and repo is not None:
        result = replace(result, proposals=_proposals(repo, snapshot.commit))
    started = _dispatcher_sandbox(root)
    if started is not None:  # what the local dispatcher decided at its last start
        result = replace(result, sandboxed=started[0], sandbox_note=started[1])
    return result


def _dispatcher_sandbox(root: Path) -> tuple[bool, str] | None:
    """Read what a local-mode dispatcher wrote at start (default state_dir only)."""
    from opsvault.dispatcher.sandbox import read_runner_state

    return read_runner_state(root / ".git" / "opsvault")


def _open_repo(root: Path) -> Pygit2OpsRepo | None:
    from opsvault.app import open_repo

    if not (root / ".git").exists():
        return None
    return open_repo(root)


def _proposals(repo: Pygit2OpsRepo, base: str) -> tuple[PendingProposal, ...]:
    # The same classification as `vault classify --base --head` and `vault approve`.
    from opsvault.changes import classify_ref_change
    from opsvault.dispatcher.status import PendingProposal
    from opsvault.errors import OpsvaultError

    found = []
    for branch, head in sorted(repo.branches(PROPOSAL_PREFIX).items()):
        if repo.is_ancestor(head, base):
            continue  # merged (or nothing new)
        try:
            verdict = classify_ref_change(repo, base, head).verdict
        except OpsvaultError as exc:
            found.append(PendingProposal(branch, head, None, True, problem=str(exc)))
            continue
        found.append(
            PendingProposal(
                branch,
                head,
                verdict.tier.label,
                verdict.refused,
                tuple(a.id for a in verdict.actions),
            )
        )
    return tuple(found)


def status_data(result: Status, base: str | None = None) -> dict[str, Any]:
    """The status as JSON: ``source`` is what was read (as text shows it), ``base``
    the whole commit id (``null`` for a directory), as in every other command."""
    data = asdict(result)
    data["base"] = base
    for entry, waiting in zip(data["waiting"], result.waiting, strict=True):
        entry["refused"] = waiting.refused
    return data


def _base_commit(root: Path, result: Status) -> str | None:
    repo = None if result.source == str(root) else _open_repo(root)
    return None if repo is None else repo.resolve(result.source)


CONTEXT_WIDTH = 50  # characters of a context shown without --verbose
PROBLEMS_SHOWN = 3  # problems listed per entry without --verbose


def render_status(
    result: Status, *, colour: bool = False, verbose: bool = False, quiet: bool = False
) -> list[str]:
    """The status as aligned tables; *quiet*: the summary lines only."""
    from opsvault.cli.table import cell, paint, table

    lines = [f"ops repo at {result.source}"]
    if result.halted:
        note = f": {shown(result.halt_note)}" if result.halt_note else ""
        halted = paint("HALTED", "red", colour)
        lines.append(f"{halted} (vault/HALT exists){note}; nothing is merged or fired")
    else:
        lines.append("running normally (no vault/HALT)")
    if result.frozen is not None:
        exempt = result.frozen.exempt
        lines.append(
            f"FROZEN: {result.frozen.text}; nothing is merged by the dispatcher or fired"
            + (f" but {', '.join(exempt)}" if exempt else "")
        )
    if result.sandboxed is False:
        lines.append(f"{paint('WARNING', 'yellow', colour)}: {result.sandbox_note}")
    elif result.sandbox_note:
        lines.append(result.sandbox_note)

    def problems(rows: list[tuple[str, tuple[str, ...]]]) -> list[str]:
        out: list[str] = []
        for name, found in rows:
            keep = found if verbose else found[:PROBLEMS_SHOWN]
            out.extend(f"    {name}: {shown(p)}" for p in keep)
            if len(found) > len(keep):
                out.append(f"    {name}: {len(found) - len(keep)} more (--verbose)")
        return out

    def section(title: str, count: int, body: list[str]) -> None:
        lines.append(f"{title}: {count}")
        if not quiet:
            lines.extend(body)

    def context(text: str) -> str:
        if verbose or len(text) <= CONTEXT_WIDTH:
            return text
        return text[: CONTEXT_WIDTH - 1] + "…"

    section(
        "waiting to fire",
        len(result.waiting),
        table(
            ["ID", "TIER", "FORMULA", "CONTEXT"],
            [
                [
                    cell(w.id),
                    cell(f"{w.tier or 'invalid'}{' refused' if w.refused else ''}"),
                    cell(w.formula),
                    cell(context(w.context)),
                ]
                for w in result.waiting
            ],
            on=colour,
        )
        + problems([(w.id, w.problems) for w in result.waiting]),
    )
    section(
        "running",
        len(result.running),
        table(
            ["ID", "DISPATCHER", "SINCE", "DEADLINE", "STATE"],
            [
                [
                    cell(r.id),
                    cell(r.dispatcher),
                    cell(r.claimed_at),
                    cell(r.deadline),
                    cell("STALE (past its deadline)" if r.stale else "running"),
                ]
                for r in result.running
            ],
            on=colour,
        )
        + problems([(r.id, (r.problem,)) for r in result.running if r.problem]),
    )
    section(
        "recent",
        len(result.recent),
        table(
            ["ENDED", "ID", "OUTCOME", "TIER", "APPROVER"],
            [
                [
                    cell(f.ended_at or f.started_at),
                    cell(f.id),
                    cell(f"{f.outcome or '?'}{f' ({f.reason})' if f.reason else ''}"),
                    cell(f.tier),
                    cell(f.approver),
                ]
                for f in result.recent
            ],
            on=colour,
        )
        + problems([(f.id, (f.problem,)) for f in result.recent if f.problem]),
    )
    if result.proposals:
        section(
            "pending proposals",
            len(result.proposals),
            table(
                ["PROPOSAL", "TIER", "ACTIONS"],
                [
                    [
                        cell(p.branch),
                        cell(f"{p.tier or 'invalid'}{' refused' if p.refused else ''}"),
                        cell(", ".join(p.action_ids)),
                    ]
                    for p in result.proposals
                ],
                on=colour,
            )
            + problems(
                [(p.branch, (p.problem,)) for p in result.proposals if p.problem]
            ),
        )
    return lines
