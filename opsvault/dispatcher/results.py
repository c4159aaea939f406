"""Results: the changes that record what the executed claims did, and their PR comments.

A result is recorded only for a claim still ours on main (the same
``claimed_by``); the action moves from ``vault/running/`` to its archive with
its result record beside it, and the claim file goes.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime

from opsvault.dispatcher.claims import read_claim
from opsvault.dispatcher.fireplan import Claimed
from opsvault.dispatcher.reasons import ReasonCode
from opsvault.dispatcher.records import (
    Outcome,
    ResultRecord,
    archive_paths,
    render_record,
)
from opsvault.layout import claim_path, running_path
from opsvault.messages import RunResult
from opsvault.snapshot import CommitSnapshot
from opsvault.timefmt import render_iso

log = logging.getLogger(__name__)


def result_changes(
    snapshot: CommitSnapshot,
    claims: list[Claimed],
    results: list[RunResult | None],
    identity: str,
    now: datetime,
) -> tuple[dict[str, bytes | None], list[tuple[Claimed, ResultRecord]]]:
    """Return the changes recording *results* on top of *snapshot*, for claims still ours there.

    A None result (the execution raised) is not recorded: the claim stays.
    """
    changes: dict[str, bytes | None] = {}
    recorded: list[tuple[Claimed, ResultRecord]] = []
    for claim, result in zip(claims, results, strict=True):
        if result is None:
            continue
        action_id = claim.action.id
        current = read_claim(snapshot.read_file(claim_path(action_id)))
        content = snapshot.read_file(running_path(action_id))
        if (
            content is None
            or current is None
            or current.claimed_by != claim.record.claimed_by
        ):
            log.error(
                "%s: our claim is gone from main; its result is not recorded", action_id
            )
            continue
        try:
            record = result_record(claim, result, identity)
        except Exception:  # one malformed result never loses the others (I5)
            log.exception(
                "%s: its result cannot be recorded; it stays claimed", action_id
            )
            continue
        toml_path, result_path = archive_paths(record.outcome, action_id, now)
        changes[running_path(action_id)] = None
        changes[claim_path(action_id)] = None
        changes[toml_path] = content
        changes[result_path] = render_record(record)
        recorded.append((claim, record))
    return changes, recorded


def result_record(claim: Claimed, result: RunResult, identity: str) -> ResultRecord:
    """Return the record of *claim*'s execution: its claim's provenance and the run's end."""
    origin = replace(claim.record.origin, id=claim.action.id, dispatcher=identity)
    return origin.result(
        Outcome(result.outcome),
        ReasonCode(result.reason),
        f"failed at step {result.failed_step!r}" if result.failed_step else "",
        formula=claim.record.formula,
        formula_sha256=claim.record.formula_sha256,
        started_at=render_iso(datetime.fromtimestamp(result.started_at, UTC)),
        ended_at=render_iso(datetime.fromtimestamp(result.ended_at, UTC)),
        exit_code=result.exit_code,
        output_tail=result.output_tail,
        attempt=claim.record.attempt,
        sandbox=result.sandbox or None,
    )


def result_comment(record: ResultRecord) -> str:
    """Return the PR comment announcing an executed action's result."""
    tail = record.output_tail.strip()[-1500:]
    text = (
        f"Executed: **{record.outcome}** ({record.reason}), exit code "
        f"{record.exit_code}, {record.started_at} → {record.ended_at}."
    )
    if tail:
        text += f"\n\n```\n{tail}\n```"
    return text
