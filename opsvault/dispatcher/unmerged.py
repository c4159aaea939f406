"""Pull requests that never merged: close the expired ones, and record both kinds.

A closed or expired PR's added actions are archived as ``RecordIntent``s
under the PR's own namespace (``pr-<N>/<id>``, ADR 0005); the tick adds them to
the fire phase's commit.
"""

from __future__ import annotations

from datetime import UTC, datetime

from opsvault.dispatcher.fireplan import FirePlan
from opsvault.dispatcher.pullphase import (
    PullContext,
    PullsOutcome,
    RecordIntent,
)
from opsvault.dispatcher.reasons import ReasonCode
from opsvault.dispatcher.records import (
    Outcome,
    ResultRecord,
    archive_paths,
    parse_record,
    render_record,
    sha256,
)
from opsvault.dispatcher.rejection import closed_verdict, judge_rejection
from opsvault.dispatcher.report import Decision
from opsvault.errors import (
    FileTooLargeError,
    InvalidFileError,
)
from opsvault.forge.types import (
    PullRequest,
)
from opsvault.git.base import OpsRepo
from opsvault.layout import pull_record_stem
from opsvault.policy.classify import (
    BaseState,
    ChangeVerdict,
    is_action_path,
)
from opsvault.snapshot import CommitSnapshot, UsedIds, has_file
from opsvault.timefmt import parse_iso, render_iso
from opsvault.vault.request import action_id_for, id_problems
from opsvault.vault.schema import MAX_FILE_BYTES


def expire(
    ctx: PullContext,
    pr: PullRequest,
    verdict: ChangeVerdict,
    why: str,
    out: PullsOutcome,
) -> None:
    subject = f"pr#{pr.number}"
    out.decisions.append(Decision(subject, "expired", why))
    if ctx.dry_run:
        return
    ctx.forge.create_comment(pr.number, f"**opsvault**: closed as expired: {why}.")
    ctx.forge.close_pull_request(pr.number)
    ctx.cache.pulls.pop(str(pr.number), None)
    out.records.extend(
        pull_intents(ctx, pr, verdict, Outcome.EXPIRED, ReasonCode.DEADLINE_PASSED, why)
    )


def closed_pull(
    ctx: PullContext, main: str, base: BaseState, pr: PullRequest, out: PullsOutcome
) -> None:
    ctx.cache.pulls.pop(str(pr.number), None)
    if pr.merged:
        if pr.merge_commit_sha:
            ctx.cache.merges[pr.merge_commit_sha] = pr.number
        return
    if not ctx.mainline.fetch_pull_head(pr.number, pr.head_sha):
        return
    verdict = closed_verdict(ctx.repo, main, pr.head_sha, base)
    if verdict is None:
        out.decisions.append(
            Decision(
                f"pr#{pr.number}",
                "not recorded",
                f"its head shares no history with {ctx.mainline.branch}",
            )
        )
        return
    rejection = judge_rejection(
        ctx.forge, ctx.repo, ctx.identity, main, base, pr, verdict
    )
    intents = pull_intents(
        ctx,
        pr,
        verdict,
        Outcome.REJECTED,
        ReasonCode.CLOSED_UNMERGED,
        rejection.detail,
        approver=rejection.approver,
        reserves=rejection.reserves,
    )
    if intents:
        out.records.extend(intents)
        out.decisions.append(
            Decision(
                f"pr#{pr.number}", "rejected", ", ".join(i.record.id for i in intents)
            )
        )


def pull_intents(
    ctx: PullContext,
    pr: PullRequest,
    verdict: ChangeVerdict,
    outcome: Outcome,
    reason: ReasonCode,
    detail: str,
    *,
    approver: str | None = None,
    reserves: bool = False,
) -> list[RecordIntent]:
    intents = []
    for f in verdict.files:
        if not is_action_path(f.path) or f.kind.value != "added":
            continue
        action_id = action_id_for(f.path)
        try:
            content = ctx.repo.read_file(pr.head_sha, f.path, MAX_FILE_BYTES)
        except FileTooLargeError:
            content = None  # refused at classification for its size; never read (I5)
        if id_problems(action_id) or content is None:
            continue  # an invalid id never becomes a record path
        # Only a valid action (which is also within the size limit) is copied to main.
        kept = content if f.action is not None and not f.problems else None
        record = ResultRecord(
            id=action_id,
            outcome=outcome,
            reason=reason,
            detail=detail
            if kept is not None
            else f"{detail}; the file was not a valid action, so only its hash is kept",
            tier=verdict.tier.label,
            reasons=tuple(r.render() for r in verdict.reasons),
            action_sha256=sha256(content),
            pr=pr.number,
            proposer=pr.author,
            approver=approver,
            head_commit=pr.head_sha,
            dispatcher=ctx.identity,
            ended_at=render_iso(ctx.now),
        )
        intents.append(
            RecordIntent(pull_record_stem(pr.number, action_id), kept, record, reserves)
        )
    return intents


def add_intents(
    repo: OpsRepo, main: str, intents: list[RecordIntent], plan: FirePlan
) -> None:
    """Add the records of closed and expired PRs; they only ever add files to main.

    Each goes under its PR's namespace (``pr-<N>/<id>``), or, for a rejection
    that reserves its id, under the id when no record holds it yet (ADR 0005).
    Nothing an action id names can keep a PR's record from being written.
    """
    if not intents:
        return
    snapshot = CommitSnapshot(repo, main)
    recorded = UsedIds(snapshot)
    for intent in intents:
        action_id, number = intent.record.id, intent.record.pr
        if _result_exists(snapshot, intent, intent.stem) or _result_exists(
            snapshot, intent, action_id, number
        ):
            continue  # already recorded (by us earlier, or another replica)
        stem = intent.stem
        if intent.reserves and action_id not in recorded:
            stem = action_id
        toml_path, result_path = archive_paths(
            intent.record.outcome, stem, _recorded_at(intent)
        )
        if intent.content is not None:
            plan.changes[toml_path] = intent.content
        plan.changes[result_path] = render_record(intent.record)


def _result_exists(
    snapshot: CommitSnapshot, intent: RecordIntent, stem: str, pr: int | None = None
) -> bool:
    """Is a result filed under *stem* (and, given *pr*, one of that PR)?"""
    family = intent.record.outcome.archive
    for year in snapshot.list_dirs(family):
        for month in snapshot.list_dirs(f"{family}/{year}"):
            path = f"{family}/{year}/{month}/{stem}.result.json"
            if pr is None:
                if has_file(snapshot, path):
                    return True
                continue
            try:
                raw = snapshot.read_file(path)
                if raw is not None and parse_record(raw).pr == pr:
                    return True
            except InvalidFileError:
                continue  # not a record of this PR that we could have written
    return False


def _recorded_at(intent: RecordIntent) -> datetime:
    ended = intent.record.ended_at
    return parse_iso(ended) if ended else datetime.now(UTC)
