"""`vault status`: HALT, approved actions waiting, running claims, recent results, proposals."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from opsvault.cli.options import echo_json, json_option, ops_option, resolve_ops
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
    root = resolve_ops(ops)
    if serve_port is not None:  # docs/operating.md "Status page"
        from opsvault.web.local import serve_status

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
        echo_json(status_data(result))
    else:
        for line in render_status(result):
            click.echo(line)


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
        snapshot = CommitSnapshot(repo, repo.resolve(ref or base_branch_of(repo)))
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


def status_data(result: Status) -> dict[str, Any]:
    data = asdict(result)
    for entry, waiting in zip(data["waiting"], result.waiting, strict=True):
        entry["refused"] = waiting.refused
    return data


def render_status(result: Status) -> list[str]:
    lines = [f"ops repo at {result.source}"]
    if result.halted:
        note = f": {result.halt_note}" if result.halt_note else ""
        lines.append(f"HALTED (vault/HALT exists){note}; nothing is merged or fired")
    else:
        lines.append("running normally (no vault/HALT)")
    if result.sandboxed is False:
        lines.append(f"WARNING: {result.sandbox_note}")
    elif result.sandbox_note:
        lines.append(result.sandbox_note)
    lines.append(f"waiting to fire: {len(result.waiting)}")
    for w in result.waiting:
        tier = w.tier or "invalid"
        flag = " (refused)" if w.refused else ""
        lines.append(f"  {w.id}  {tier}{flag}  {w.formula or '-'}  {w.context!r}")
        lines.extend(f"    {p}" for p in w.problems)
    lines.append(f"running: {len(result.running)}")
    for r in result.running:
        parts = [f"  {r.id}", f"by {r.dispatcher or '?'}"]
        if r.claimed_at:
            parts.append(f"since {r.claimed_at}")
        if r.deadline:
            parts.append(f"deadline {r.deadline}")
        if r.stale:
            parts.append("STALE (past its deadline)")
        if r.problem:
            parts.append(f"({r.problem})")
        lines.append("  ".join(parts))
    lines.append(f"recent: {len(result.recent)}")
    for f in result.recent:
        outcome = f.outcome or "?"
        reason = f" ({f.reason})" if f.reason else ""
        who = f"approver {f.approver}" if f.approver else "no approver"
        when = f.ended_at or f.started_at or "-"
        problem = f"  [{f.problem}]" if f.problem else ""
        lines.append(
            f"  {when}  {f.id}  {outcome}{reason}  tier {f.tier or '-'}  {who}{problem}"
        )
    if result.proposals:
        lines.append(f"pending proposals: {len(result.proposals)}")
    for p in result.proposals:
        flag = " (refused)" if p.refused else ""
        ids = f"  actions: {', '.join(p.action_ids)}" if p.action_ids else ""
        lines.append(f"  {p.branch}  {p.tier or 'invalid'}{flag}{ids}")
        if p.problem:
            lines.append(f"    {p.problem}")
    return lines
