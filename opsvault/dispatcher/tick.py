"""One dispatcher tick: reconcile the forge and main once (DESIGN.md "The dispatcher").

1. Refresh main; if ``vault/HALT`` exists there, only report.
2. Pull requests that changed or are due: classify at their head against
   main's policy, publish, merge low / notify / expire (``pulls.py``).
3. Actions on main: verify provenance, then one commit claims them (and
   records refusals, human requests done, expiries, closed PRs, interrupted
   claims), pushed by compare-and-swap; a lost push re-plans from the new main.
4. Execute the claims in a bounded pool, then one commit records the results.
5. Comment results on their PRs and alert admins.

``tick`` is idempotent: it reads where every action is from git on each call.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from opsvault.app import App
from opsvault.dispatcher.cache import load_cache, write_cache
from opsvault.dispatcher.fire import (
    FireContext,
    FirePlan,
    execute_claims,
    iso,
    plan_fire,
    result_changes,
)
from opsvault.dispatcher.notify import sinks_named
from opsvault.dispatcher.pulls import PullContext, RecordIntent, process_pulls
from opsvault.dispatcher.records import HALT, archive_paths, render_record
from opsvault.dispatcher.report import Decision, TickReport
from opsvault.dispatcher.types import Notification, RunResult
from opsvault.errors import ForgeUnavailable, GitError, OpsvaultError, PushRejected
from opsvault.git.base import Identity
from opsvault.policy.model import Tier
from opsvault.snapshot import CommitSnapshot, UsedIds, has_file, load_base_state

log = logging.getLogger(__name__)

CLAIM_ATTEMPTS = 4
RESULT_ATTEMPTS = 8


def _requests(app: App) -> int:
    return app.forge.requests_made


@dataclass(slots=True)
class _Progress:
    main_before: str | None = None
    main_after: str | None = None
    commits: int = 0
    halted: bool = False


def tick(app: App, now: datetime, *, dry_run: bool = False) -> TickReport:
    """Reconcile once and return what was decided and done. Never raises an OpsvaultError."""
    decisions: list[Decision] = []
    errors: list[str] = []
    requests_before = _requests(app)
    state = _Progress()

    def report() -> TickReport:
        return TickReport(
            started_at=iso(now),
            ended_at=iso(datetime.now(UTC)),
            main_before=state.main_before,
            main_after=state.main_after,
            halted=state.halted,
            dry_run=dry_run,
            decisions=tuple(decisions),
            errors=tuple(errors),
            forge_requests=_requests(app) - requests_before,
            commits=state.commits,
        )

    try:
        main = app.mainline.refresh()
        state.main_before = state.main_after = main
        snapshot = CommitSnapshot(app.repo, main)
        if has_file(snapshot, HALT):
            state.halted = True
            decisions.append(
                Decision(
                    "main",
                    "halted",
                    f"{HALT} exists on main: nothing is merged or fired",
                )
            )
            return report()
        base = load_base_state(snapshot)
    except OpsvaultError as exc:
        errors.append(f"main: {exc}")  # an invalid policy fails closed: nothing happens
        return report()

    cache = load_cache(app.state_dir)
    pull_ctx = PullContext(
        app.forge,
        app.repo,
        app.mainline,
        app.notifier,
        app.identity,
        now,
        dry_run,
        cache,
        nudged=app.nudges.drain(),
    )
    try:
        pulls = process_pulls(pull_ctx, main, base)
    except (ForgeUnavailable, GitError) as exc:
        errors.append(f"forge: {exc}; the next tick retries")
        return report()
    decisions.extend(pulls.decisions)
    cache.watermark = iso(now)

    try:
        main = app.mainline.refresh() if pulls.merged else main
        ctx = FireContext(
            app.repo,
            app.forge,
            app.runner,
            app.identity,
            f"{app.identity}/{uuid.uuid4().hex[:12]}",
            now,
            app.settings.dispatcher.queue_limit,
            cache.merges,
            app.settings.dispatcher.max_concurrency,
        )
        main, plan = _claim(app, ctx, main, pulls.records, dry_run, state, decisions)
        if plan is not None and plan.claims and not dry_run:
            app.checkpoint("claimed")
            results = execute_claims(
                app.runner,
                plan.claims,
                app.settings.dispatcher.max_concurrency,
                app.checkpoint,
            )
            main = _record(app, ctx, main, plan, results, state, decisions)
            app.checkpoint("recorded")
        if plan is not None and not dry_run:
            _tell(app, plan, CommitSnapshot(app.repo, main), errors)
    except (ForgeUnavailable, GitError) as exc:
        errors.append(f"{exc}; the next tick retries")
    except OpsvaultError as exc:
        errors.append(str(exc))
    finally:
        state.main_after = main
        if not dry_run:
            write_cache(app.state_dir, cache)
    return report()


def _commit(app: App, main: str, changes: dict[str, bytes | None], message: str) -> str:
    who = Identity(app.identity, f"{app.identity}@opsvault.invalid")
    return app.repo.commit_files(main, changes, message, who)


def _publish(app: App, new: str, old: str) -> None:
    """Push *new* over *old*; a push whose outcome is unknown is settled by reading main again."""
    try:
        app.mainline.publish(new, old)
    except PushRejected:
        raise
    except GitError:
        if app.mainline.refresh() != new:
            raise


def _claim(
    app: App,
    ctx: FireContext,
    main: str,
    intents: list[RecordIntent],
    dry_run: bool,
    state: _Progress,
    decisions: list[Decision],
) -> tuple[str, FirePlan | None]:
    """Plan the fire phase and push its one commit; re-plan from the new main when the push loses."""
    for _attempt in range(CLAIM_ATTEMPTS):
        plan = plan_fire(ctx, main)
        _add_intents(app, main, intents, plan)
        if dry_run or not plan.changes:
            decisions.extend(plan.decisions)
            return main, plan
        message = _message(plan)
        new = _commit(app, main, plan.changes, message)
        try:
            _publish(app, new, main)
        except PushRejected:
            main = (
                app.mainline.refresh()
            )  # another dispatcher won: its claims are on the new main
            continue
        state.commits += 1
        decisions.extend(plan.decisions)
        return new, plan
    decisions.append(
        Decision(
            "main",
            "contended",
            f"claim push lost {CLAIM_ATTEMPTS} times; next tick retries",
        )
    )
    return main, None


def _add_intents(
    app: App, main: str, intents: list[RecordIntent], plan: FirePlan
) -> None:
    """Add the records of closed and expired PRs; they only ever add files to main."""
    if not intents:
        return
    snapshot = CommitSnapshot(app.repo, main)
    recorded = UsedIds(snapshot)
    for intent in intents:
        if intent.stem in recorded or _result_exists(snapshot, intent):
            continue  # already recorded (by us earlier, or another replica)
        toml_path, result_path = archive_paths(
            intent.record.outcome, intent.stem, _recorded_at(intent)
        )
        if intent.content is not None:
            plan.changes[toml_path] = intent.content
        plan.changes[result_path] = render_record(intent.record)


def _result_exists(snapshot: CommitSnapshot, intent: RecordIntent) -> bool:
    family = intent.record.outcome.archive
    return any(
        has_file(snapshot, f"{family}/{year}/{month}/{intent.stem}.result.json")
        for year in snapshot.list_dirs(family)
        for month in snapshot.list_dirs(f"{family}/{year}")
    )


def _recorded_at(intent: RecordIntent) -> datetime:
    ended = intent.record.ended_at
    return (
        datetime.fromisoformat(ended.replace("Z", "+00:00"))
        if ended
        else datetime.now(UTC)
    )


def _message(plan: FirePlan) -> str:
    counts: dict[str, int] = {}
    for d in plan.decisions:
        counts[d.event] = counts.get(d.event, 0) + 1
    summary = (
        ", ".join(f"{n} {event}" for event, n in sorted(counts.items())) or "records"
    )
    return f"vault: {summary}"


def _record(
    app: App,
    ctx: FireContext,
    main: str,
    plan: FirePlan,
    results: list[RunResult],
    state: _Progress,
    decisions: list[Decision],
) -> str:
    """Push one commit recording every result; retry on top of whatever main became."""
    for _attempt in range(RESULT_ATTEMPTS):
        snapshot = CommitSnapshot(app.repo, main)
        changes, recorded = result_changes(
            snapshot, plan.claims, results, app.identity, ctx.now
        )
        if not changes:
            return main
        new = _commit(app, main, changes, f"vault: record {len(recorded)} result(s)")
        try:
            _publish(app, new, main)
        except PushRejected:
            main = app.mainline.refresh()
            continue
        state.commits += 1
        for claim, record in recorded:
            decisions.append(
                Decision(
                    f"action:{claim.action.id}",
                    str(record.outcome),
                    f"{record.reason}, exit {record.exit_code}",
                )
            )
            if claim.pr is not None:
                plan.results.append(
                    (claim.pr, claim.action.id, _result_comment(record))
                )
            if record.outcome != "succeeded":
                plan.alerts.append(
                    ("failed", f"{claim.action.id}: {record.outcome} ({record.reason})")
                )
        return new
    raise GitError(
        "main",
        f"could not record results after {RESULT_ATTEMPTS} attempts; they stay claimed and will be recovered",
    )


def _result_comment(record: object) -> str:
    from opsvault.dispatcher.records import ResultRecord

    assert isinstance(record, ResultRecord)
    tail = record.output_tail.strip()[-1500:]
    text = f"Executed: **{record.outcome}** ({record.reason}), exit code {record.exit_code}, {record.started_at} → {record.ended_at}."
    if tail:
        text += f"\n\n```\n{tail}\n```"
    return text


def _tell(
    app: App, plan: FirePlan, snapshot: CommitSnapshot, errors: list[str]
) -> None:
    """Comment results on their PRs and alert the admins' sinks; failures never undo a record."""
    for pr, action_id, text in plan.results:
        try:
            app.forge.upsert_comment(
                pr,
                f"<!-- opsvault:result:{action_id} -->",
                f"**opsvault** `{action_id}`: {text}",
            )
        except OpsvaultError as exc:
            errors.append(f"pr#{pr}: result comment not posted: {exc}")
    if not plan.alerts:
        return
    try:
        policy = load_base_state(snapshot).policy
    except OpsvaultError:
        return
    sinks = sinks_named(policy, policy.settings(Tier.HIGH).notify)
    for event, text in plan.alerts:
        app.notifier.notify(
            sinks,
            Notification(
                event=event, title=f"opsvault: {event}", body=text, tier="high"
            ),
        )


def run_tick(
    app: App, clock: Callable[[], datetime], dry_run: bool = False
) -> TickReport:
    """Run one tick at the clock's now (the service's job function)."""
    return tick(app, clock(), dry_run=dry_run)
