"""`vault policy suggest`: tier changes earned (or lost) in the recorded history.

The records are read from the base branch of the ops repo (``vault/fired/``
and ``vault/rejected/``, through ``dispatcher/records.py``), the suggestions
made by ``policy/suggest.py``. Nothing is applied: ``--output`` writes the
suggested policy for ``vault policy diff``, ``--open-pr`` proposes it as a
policy PR, which is high tier and waits for an admin's merge.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from opsvault.cli.envelope import emit
from opsvault.cli.options import json_option, ops_option, resolve_ops
from opsvault.errors import InvalidFileError, OpsvaultError
from opsvault.git.base import OpsRepo
from opsvault.layout import DEFAULT_BRANCH, FIRED, POLICY, REJECTED
from opsvault.policy.suggest import (
    Run,
    Suggestion,
    apply_suggestions,
    render_evidence,
    render_pull_body,
    suggest_tiers,
)
from opsvault.ports import Forge

RESULT = ".result.json"


def read_runs(repo: OpsRepo, commit: str) -> list[Run]:
    """Return every result record under ``vault/fired`` and ``vault/rejected`` at *commit*.

    A record without a formula (a rejection) takes it from the action file
    archived beside it; records that are not valid, and those of no formula
    (human requests, merge mismatches), are left out.
    """
    from opsvault.dispatcher.records import parse_record
    from opsvault.snapshot import CommitSnapshot
    from opsvault.vault.request import parse_action

    snapshot = CommitSnapshot(repo, commit)
    runs = []
    for family in (FIRED, REJECTED):
        for path in snapshot.list_files(family):
            if not path.endswith(RESULT):
                continue
            try:
                content = snapshot.read_file(path)
                if content is None:
                    continue
                record = parse_record(content, path)
                formula = record.formula
                if formula is None:
                    action = snapshot.read_file(path.removesuffix(RESULT) + ".toml")
                    if action is None:
                        continue
                    formula = parse_action(action, path).formula
            except OpsvaultError:
                continue  # `vault status` reports unreadable records
            if formula is None:
                continue
            runs.append(
                Run(
                    action_id=record.id,
                    formula=formula,
                    outcome=str(record.outcome),
                    reason=str(record.reason),
                    tier=record.tier,
                    when=_time(record.ended_at or record.started_at),
                    record=path,
                    pr=record.pr,
                    approver=record.approver,
                )
            )
    return runs


def _time(text: str | None) -> datetime | None:
    from opsvault.timefmt import parse_aware

    return parse_aware(text) if text else None


def _data(suggestion: Suggestion) -> dict[str, Any]:
    return {
        "formula": suggestion.formula,
        "current": suggestion.current.label,
        "suggested": suggestion.suggested.label,
        "why": suggestion.why,
        "runs": [
            {
                "action": r.action_id,
                "outcome": r.outcome,
                "reason": r.reason,
                "tier": r.tier,
                "when": r.when.isoformat() if r.when else None,
                "pr": r.pr,
                "approver": r.approver,
                "record": r.record,
            }
            for r in suggestion.runs
        ],
    }


def _open_pr(
    config_path: Path | None, root: Path, base: str, text: str, body: str, now: datetime
) -> tuple[int, str, str]:
    from opsvault.forge.types import Proposal

    forge: Forge
    if config_path is not None:
        from opsvault.app import open_forge
        from opsvault.config import load_settings

        forge = open_forge(load_settings(os.environ, config_path))
    else:
        from opsvault.app import open_local
        from opsvault.cli.proposals import operator_for
        from opsvault.git.pygit2_repo import Pygit2OpsRepo

        user = operator_for(Pygit2OpsRepo.open(root), None).user
        forge = open_local(root, user, branch=base)
    stamp = now.strftime("%Y%m%d-%H%M%S")
    try:
        pull = forge.open_proposal(
            Proposal(
                branch=f"vault/policy-suggest-{stamp}",
                base=base,
                title="vault: policy tier changes suggested by history",
                body=body,
                message="vault: policy suggest",
                files=((POLICY, text.encode()),),
            )
        )
    finally:
        forge.close()
    return pull.number, pull.head_ref, pull.html_url


@click.command()
@ops_option
@click.option(
    "--base",
    default=DEFAULT_BRANCH,
    show_default=True,
    help="The branch whose policy and records are read (pull it first).",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the suggested policy here, for `vault policy diff`.",
)
@click.option(
    "--open-pr",
    is_flag=True,
    help="Propose the suggestions as a policy PR (high tier: an admin merges it).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="With --open-pr: open it on the forge this configuration names "
    "(default: a proposal branch of the local ops repo).",
)
@click.option(
    "--at",
    "at",
    type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S%z"]),
    default=None,
    help="Judge the window as of this time (e.g. 2026-12-01T00:00:00+00:00); default: now.",
)
@json_option
def suggest(
    ops: Path | None,
    base: str,
    output: Path | None,
    open_pr: bool,
    config_path: Path | None,
    at: datetime | None,
    as_json: bool,
) -> None:
    """Suggest tier changes from the fired and rejected history, with the runs behind each.

    A formula that ran [suggest] runs times at medium within [suggest] window
    (vault/policy.toml; default 20 in 30d), none failed, timed out, vetoed or
    rejected, is suggested for low; one that failed, timed out or was vetoed
    for the next tier up. Nothing is applied: see the change with --output and
    `vault policy diff`, or propose it with --open-pr.
    """
    from opsvault.app import open_repo
    from opsvault.snapshot import CommitSnapshot, load_base_state

    if config_path is not None and not open_pr:
        raise click.UsageError("--config is used only with --open-pr")
    root = resolve_ops(ops)
    repo = open_repo(root)
    commit = repo.resolve(base)
    state = load_base_state(CommitSnapshot(repo, commit))
    now = at.astimezone(UTC) if at is not None else datetime.now(UTC)
    found = suggest_tiers(read_runs(repo, commit), state.policy, state.formulas, now)
    policy_text = repo.read_file(commit, POLICY)
    if policy_text is None:  # load_base_state would have raised
        raise InvalidFileError(POLICY, ())
    suggested = apply_suggestions(policy_text.decode(), found)
    if output is not None:
        output.write_text(suggested)
    pull: tuple[int, str, str] | None = None
    if open_pr and found:
        body = render_pull_body(found, base)
        pull = _open_pr(config_path, root, base, suggested, body, now)
    if as_json:
        emit(
            {
                "branch": base,
                "base": commit,
                "suggestions": [_data(s) for s in found],
                "output": str(output) if output else None,
                "pr": None
                if pull is None
                else {"number": pull[0], "branch": pull[1], "url": pull[2]},
            }
        )
        return
    if not found:
        click.echo(f"no tier changes suggested by the history on {base}")
    for s in found:
        click.echo(f"{s.formula}: {s.current.label} -> {s.suggested.label}: {s.why}")
        for line in render_evidence(s):
            click.echo(f"  {line}")
    if output is not None:
        click.echo(f"wrote {output}: vault policy diff {POLICY} {output}")
    if pull is not None:
        link = f": {pull[2]}" if pull[2] else ""
        click.echo(f"proposed in PR #{pull[0]} ({pull[1]}){link}; an admin merges it")
