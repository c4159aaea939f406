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
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from opsvault.app import App
from opsvault.dispatcher.cache import Cache, load_cache, write_cache
from opsvault.dispatcher.chain import anchor_of, seal_commit, with_anchor
from opsvault.dispatcher.fire import (
    CLAIM_GRACE,
    FireContext,
    FirePlan,
    execute_claims,
    plan_fire,
    result_changes,
)
from opsvault.dispatcher.halt import mismatch_recorded, plan_halt
from opsvault.dispatcher.integrity import MergeMismatch, find_mismatches
from opsvault.dispatcher.notify import sinks_named
from opsvault.dispatcher.pulls import (
    PullContext,
    PullsOutcome,
    RecordIntent,
    process_pulls,
)
from opsvault.dispatcher.reasons import ReasonCode
from opsvault.dispatcher.records import (
    archive_paths,
    parse_record,
    redact_record,
    render_record,
)
from opsvault.dispatcher.report import Decision, TickReport
from opsvault.errors import (
    ForgeUnavailable,
    GitError,
    InvalidFileError,
    OpsvaultError,
    PushRejected,
)
from opsvault.git.base import Identity
from opsvault.layout import HALT
from opsvault.messages import Notification, RunResult
from opsvault.snapshot import CommitSnapshot, UsedIds, has_file, load_base_state
from opsvault.timefmt import parse_iso, render_iso
from opsvault.vault.tier import Tier

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
    """Reconcile once and return what was decided and done. Never raises an OpsvaultError.

    *now* is when the tick started; later steps read the time as *now* plus
    what ``app.clock`` says has elapsed since, so a claim's deadline counts
    from the claim commit, not from the start of a slow tick (I8).
    """
    started = app.clock()

    def clock() -> datetime:
        return now + (app.clock() - started)

    decisions: list[Decision] = []
    errors: list[str] = []
    requests_before = _requests(app)
    state = _Progress()

    app.redact.refresh()  # pick up rotated secrets before anything is recorded

    def report() -> TickReport:
        redact = app.redact
        return TickReport(
            started_at=render_iso(now),
            ended_at=render_iso(datetime.now(UTC)),
            main_before=state.main_before,
            main_after=state.main_after,
            halted=state.halted,
            dry_run=dry_run,
            decisions=tuple(
                replace(d, detail=redact(d.detail), subject=redact(d.subject))
                for d in decisions
            ),
            errors=tuple(redact(e) for e in errors),
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
    try:
        earlier = _unchecked_mismatches(app, cache, main, snapshot)
    except OpsvaultError as exc:
        errors.append(f"main: merges since the last tick not checked: {exc}")
        return report()
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
    if earlier:
        # A merge since the last tick did not land as classified: halt at once (I1).
        pulls = PullsOutcome(mismatches=earlier)
        pulls.decisions.extend(
            Decision(f"pr#{m.pr}", ReasonCode.MERGE_MISMATCH, m.render())
            for m in earlier
        )
    else:
        try:
            pulls = process_pulls(pull_ctx, main, base)
        except (ForgeUnavailable, GitError) as exc:
            errors.append(f"forge: {exc}; the next tick retries")
            return report()
        except Exception as exc:  # a bug in the PR phase must not stop firing (I5)
            log.exception("the pull-request phase failed")
            errors.append(f"pull requests: unexpected {exc!r}; actions are still fired")
            pulls = PullsOutcome()
        cache.watermark = render_iso(now)
    decisions.extend(pulls.decisions)

    try:
        if pulls.merged:
            main = app.mainline.refresh()
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
        if pulls.mismatches:
            # A merge did not land as classified: record it, write HALT, fire nothing (I1).
            state.halted = True
            plan: FirePlan | None
            try:
                main, plan = _claim(
                    app,
                    ctx,
                    main,
                    pulls.records,
                    dry_run,
                    state,
                    decisions,
                    clock,
                    lambda c, m: plan_halt(c, m, pulls.mismatches),
                )
            except OpsvaultError as exc:  # the admins were alerted all the same
                errors.append(f"{HALT} not written: {exc}; halt by hand")
                return report()
            if plan is None:  # the push kept losing: alert now, the next tick retries
                plan = plan_halt(replace(ctx, now=clock()), main, pulls.mismatches)
            if not dry_run:
                _tell(app, plan, CommitSnapshot(app.repo, main), errors)
            return report()
        main, plan = _claim(
            app, ctx, main, pulls.records, dry_run, state, decisions, clock
        )
        if plan is not None and HALT in plan.changes:
            state.halted = True
        if plan is not None and plan.claims and not dry_run:
            app.checkpoint("claimed")
            claimed_at = plan.planned_at or now
            if clock() - claimed_at > CLAIM_GRACE:
                # The claim is on main, but less than its full timeout is left:
                # never start it; it is recovered after its deadline (I8).
                for claim in plan.claims:
                    decisions.append(
                        Decision(
                            f"action:{claim.action.id}",
                            "late",
                            f"claim pushed {clock() - claimed_at} after it was made; not started",
                        )
                    )
                    plan.alerts.append(
                        ("late", f"{claim.action.id}: claimed too late to start")
                    )
                plan.claims = []
            results = execute_claims(
                app.runner,
                plan.claims,
                app.settings.dispatcher.max_concurrency,
                app.checkpoint,
            )
            decisions.extend(
                Decision(
                    f"action:{claim.action.id}",
                    "error",
                    "its execution raised; it stays claimed and is recovered after its deadline",
                )
                for claim, result in zip(plan.claims, results, strict=True)
                if result is None
            )
            main = _record(app, ctx, main, plan, results, state, decisions, clock)
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


def _unchecked_mismatches(
    app: App, cache: Cache, main: str, snapshot: CommitSnapshot
) -> list[MergeMismatch]:
    """Check the dispatcher merges main gained since the last tick; return the new mismatches.

    Catches merges whose own tick died before checking them, and other
    replicas' merges. A replica without a cache starts checking from today's
    main (actions from older merges are still checked at fire time). A
    mismatch already recorded on main was dealt with: it does not halt again;
    one not yet recorded is found again by the next tick.
    """
    since, cache.checked = cache.checked, main
    if since is None or since == main:
        return []
    found = find_mismatches(app.repo, main, since)
    fresh = [m for m in found if not mismatch_recorded(snapshot, m)]
    if fresh:
        cache.checked = since  # checked again until its record (and HALT) is on main
    return fresh


def _commit(
    app: App, main: str, changes: dict[str, bytes | None], message: str
) -> tuple[str, dict[str, str]]:
    """Commit *changes* on *main*, redacted, then chained (ADR 0021); return it and the record hashes."""
    who = Identity(app.identity, f"{app.identity}@opsvault.invalid")
    changes = {
        path: redact_record(content, app.redact)
        if content is not None and path.endswith(".result.json")
        else content
        for path, content in changes.items()
    }
    changes, message, hashes = seal_commit(app.repo, main, changes, app.redact(message))
    return app.repo.commit_files(main, changes, message, who), hashes


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
    clock: Callable[[], datetime],
    planner: Callable[[FireContext, str], FirePlan] | None = None,
) -> tuple[str, FirePlan | None]:
    """Plan the fire phase and push its one commit; re-plan from the new main when the push loses.

    Each attempt plans at the current time: claims made in it carry that time
    and a deadline counted from it (I8).
    """
    for _attempt in range(CLAIM_ATTEMPTS):
        plan = (planner or _plan_or_halt)(replace(ctx, now=clock()), main)
        _add_intents(app, main, intents, plan)
        if dry_run or not plan.changes:
            decisions.extend(plan.decisions)
            return main, plan
        message = _message(plan)
        new, hashes = _commit(app, main, plan.changes, message)
        try:
            _publish(app, new, main)
        except PushRejected:
            main = (
                app.mainline.refresh()
            )  # another dispatcher won: its claims are on the new main
            continue
        except OpsvaultError:
            if (
                plan.mismatches
            ):  # HALT not written: the admins must still hear of it (I1)
                _tell(app, plan, CommitSnapshot(app.repo, main), [])
            raise
        state.commits += 1
        decisions.extend(plan.decisions)
        plan.results[:] = [
            (pr, action_id, with_anchor(text, anchor_of(hashes, action_id)))
            for pr, action_id, text in plan.results
        ]
        return new, plan
    decisions.append(
        Decision(
            "main",
            "contended",
            f"claim push lost {CLAIM_ATTEMPTS} times; next tick retries",
        )
    )
    return main, None


def _plan_or_halt(ctx: FireContext, main: str) -> FirePlan:
    """Return the fire plan, or the HALT plan when an action's merge did not land as classified."""
    plan = plan_fire(ctx, main)
    if not plan.mismatches:
        return plan
    halt = plan_halt(ctx, main, plan.mismatches)
    snapshot = CommitSnapshot(ctx.repo, main)
    if any(not mismatch_recorded(snapshot, m) for m in plan.mismatches):
        return halt  # nothing is claimed in a commit that halts
    # Every mismatch was dealt with before (its HALT lifted): refuse what is left, fire the rest.
    plan.changes.update(halt.changes)
    plan.decisions.extend(halt.decisions)
    plan.alerts.extend(halt.alerts)
    return plan


def _add_intents(
    app: App, main: str, intents: list[RecordIntent], plan: FirePlan
) -> None:
    """Add the records of closed and expired PRs; they only ever add files to main.

    Each goes under its PR's namespace (``pr-<N>/<id>``), or, for a rejection
    that reserves its id, under the id when no record holds it yet (ADR 0005).
    Nothing an action id names can keep a PR's record from being written.
    """
    if not intents:
        return
    snapshot = CommitSnapshot(app.repo, main)
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
    results: list[RunResult | None],
    state: _Progress,
    decisions: list[Decision],
    clock: Callable[[], datetime],
) -> str:
    """Push one commit recording every result; retry on top of whatever main became."""
    for _attempt in range(RESULT_ATTEMPTS):
        snapshot = CommitSnapshot(app.repo, main)
        changes, recorded = result_changes(
            snapshot, plan.claims, results, app.identity, clock()
        )
        if not changes:
            return main
        new, hashes = _commit(
            app, main, changes, f"vault: record {len(recorded)} result(s)"
        )
        try:
            _publish(app, new, main)
        except PushRejected:
            main = app.mainline.refresh()
            continue
        state.commits += 1
        for claim, record in recorded:
            anchor = anchor_of(hashes, claim.action.id)
            decisions.append(
                Decision(
                    f"action:{claim.action.id}",
                    str(record.outcome),
                    with_anchor(f"{record.reason}, exit {record.exit_code}", anchor),
                )
            )
            if claim.pr is not None:
                plan.results.append(
                    (
                        claim.pr,
                        claim.action.id,
                        with_anchor(_result_comment(record), anchor),
                    )
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
                app.redact(f"**opsvault** `{action_id}`: {text}"),
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
                event=event,
                title=f"opsvault: {event}",
                body=app.redact(text),
                tier="high",
            ),
        )


def run_tick(
    app: App, clock: Callable[[], datetime], dry_run: bool = False
) -> TickReport:
    """Run one tick at the clock's now (the service's job function)."""
    return tick(app, clock(), dry_run=dry_run)
