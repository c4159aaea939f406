"""One dispatcher tick: reconcile the forge and main once (DESIGN.md "The dispatcher").

1. Refresh main; if ``vault/HALT`` exists there, only report.
2. Pull requests that changed or are due: classify at their head against
   main's policy, publish, merge low / notify / expire (``pulls.py``).
3. Actions on main, in rounds (``rounds.py``, ADR 0022): verify provenance,
   then one commit claims what the free execution slots can start (and
   records refusals, human requests done, expiries, closed PRs, interrupted
   claims), pushed by compare-and-swap (``push.py``); a lost push re-plans
   from the new main (``fire.py``, ``claims.py``, ``recovery.py``).
4. Execute the round's claims in a bounded pool; the next round's push
   records their results first, and the last round's push records only them.
5. Comment results on their PRs and alert admins as each round lands.

``tick`` is idempotent: it reads where every action is from git on each call.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from datetime import UTC, datetime

from opsvault.app import App
from opsvault.dispatcher.cache import Cache, load_cache, write_cache
from opsvault.dispatcher.fireplan import FireContext, FirePlan
from opsvault.dispatcher.halt import mismatch_recorded, plan_halt
from opsvault.dispatcher.integrity import MergeMismatch, find_mismatches
from opsvault.dispatcher.notify import sinks_named
from opsvault.dispatcher.pullphase import PullContext, PullsOutcome
from opsvault.dispatcher.pulls import process_pulls
from opsvault.dispatcher.push import Progress, Pusher, push_plan
from opsvault.dispatcher.reasons import ReasonCode
from opsvault.dispatcher.report import Decision, TickReport
from opsvault.dispatcher.rounds import FireRounds, fire_rounds
from opsvault.errors import ForgeUnavailable, GitError, OpsvaultError
from opsvault.layout import HALT
from opsvault.messages import Notification
from opsvault.snapshot import CommitSnapshot, has_file, load_base_state
from opsvault.timefmt import render_iso
from opsvault.vault.tier import Tier

log = logging.getLogger(__name__)


def _requests(app: App) -> int:
    return app.forge.requests_made


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
    state = Progress()

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
            unavailable=state.unavailable,
            merges=state.merges,
            names=tuple(sorted(state.names.items())),
        )

    branch = app.mainline.branch
    try:
        main = app.mainline.refresh()
        state.main_before = state.main_after = main
        snapshot = CommitSnapshot(app.repo, main)
        if has_file(snapshot, HALT):
            state.halted = True
            decisions.append(
                Decision(
                    branch,
                    "halted",
                    f"{HALT} exists on {branch}: nothing is merged or fired",
                )
            )
            return report()
        base = load_base_state(snapshot)
    except OpsvaultError as exc:
        # An invalid policy fails closed: nothing happens.
        errors.append(f"{branch}: {exc}")
        state.unavailable = isinstance(exc, ForgeUnavailable)
        return report()

    cache = load_cache(app.state_dir)
    try:
        earlier = _unchecked_mismatches(app, cache, main, snapshot)
    except OpsvaultError as exc:
        errors.append(f"{branch}: merges since the last tick not checked: {exc}")
        cache.close()
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
            cache.close()
            state.unavailable = isinstance(exc, ForgeUnavailable)
            return report()
        except Exception as exc:  # a bug in the PR phase must not stop firing (I5)
            log.exception("the pull-request phase failed")
            errors.append(f"pull requests: unexpected {exc!r}; actions are still fired")
            pulls = PullsOutcome()
        cache.watermark = render_iso(now)
    decisions.extend(pulls.decisions)
    state.merges, state.names = pulls.merged, pulls.names

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
            branch,
            freezes=base.policy.freezes,
        )
        pusher = Pusher(app.repo, app.mainline, app.identity, app.redact)

        def alert(plan: FirePlan, main: str) -> None:
            # The HALT was not written: the admins must still hear of it (I1).
            _tell(app, plan, CommitSnapshot(app.repo, main), [])

        if pulls.mismatches:
            # A merge did not land as classified: record it, write HALT, fire nothing (I1).
            state.halted = True
            plan: FirePlan | None
            try:
                main, plan = push_plan(
                    pusher,
                    ctx,
                    main,
                    pulls.records,
                    dry_run,
                    state,
                    decisions,
                    clock,
                    lambda c, m: plan_halt(c, m, pulls.mismatches),
                    alert,
                )
            except OpsvaultError as exc:  # the admins were alerted all the same
                errors.append(f"{HALT} not written: {exc}; halt by hand")
                return report()
            if plan is None:  # the push kept losing: alert now, the next tick retries
                plan = plan_halt(replace(ctx, now=clock()), main, pulls.mismatches)
            if not dry_run:
                _tell(app, plan, CommitSnapshot(app.repo, main), errors)
            return report()
        # A dry run shows what one round would decide, up to the whole queue.
        if dry_run:
            _, plan = push_plan(
                pusher, ctx, main, pulls.records, True, state, decisions, clock
            )
            state.halted = plan is not None and HALT in plan.changes
        else:
            rounds = FireRounds(
                app.runner,
                app.checkpoint,
                lambda plan, main: _tell(
                    app, plan, CommitSnapshot(app.repo, main), errors
                ),
                alert,
                # batch sizing only: a step of the clock at worst mis-sizes one batch
                lambda: app.clock().timestamp(),
            )
            main = fire_rounds(
                rounds, pusher, ctx, main, pulls.records, state, decisions, clock
            )
    except (ForgeUnavailable, GitError) as exc:
        errors.append(f"{exc}; the next tick retries")
        state.unavailable = isinstance(exc, ForgeUnavailable)
    except OpsvaultError as exc:
        errors.append(str(exc))
    finally:
        state.main_after = main
        if not dry_run:
            write_cache(app.state_dir, cache)
        cache.close()
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


def _tell(
    app: App, plan: FirePlan, snapshot: CommitSnapshot, errors: list[str]
) -> None:
    """Comment results on their PRs and alert the admins' sinks; failures never undo a record.

    What was told is taken off *plan*, so that telling it again says only what is new.
    """
    results, alerts = list(plan.results), list(plan.alerts)
    plan.results.clear()
    plan.alerts.clear()
    for pr, action_id, text in results:
        try:
            app.forge.upsert_comment(
                pr,
                f"<!-- opsvault:result:{action_id} -->",
                app.redact(f"**opsvault** `{action_id}`: {text}"),
            )
        except OpsvaultError as exc:
            errors.append(f"pr#{pr}: result comment not posted: {exc}")
    if not alerts:
        return
    try:
        policy = load_base_state(snapshot).policy
    except OpsvaultError:
        return
    sinks = sinks_named(policy, policy.settings(Tier.HIGH).notify)
    for event, text in alerts:
        app.notifier.notify(
            sinks,
            Notification(
                event=event,
                title=f"opsvault: {event}",
                body=app.redact(text),
                tier="high",
            ),
        )
