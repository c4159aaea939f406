"""The fire phase in batches: claim what the free slots can start, run it, record it, again.

A replica claims at most its free execution slots (``max_concurrency``) in
one claim commit, runs that batch, records its results in one commit, and
claims the next batch, until nothing more can be started, the tick's
``queue_limit`` is reached, or a claim push keeps losing (ADR 0013). Every
commit is still a compare-and-swap push (``push``): the batches change how
much one replica holds at a time, never who may run an action.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from opsvault.dispatcher.candidates import claim_budget
from opsvault.dispatcher.claims import CLAIM_GRACE
from opsvault.dispatcher.execution import execute_claims
from opsvault.dispatcher.fireplan import FireContext, FirePlan
from opsvault.dispatcher.pullphase import RecordIntent
from opsvault.dispatcher.push import Progress, Pusher, push_plan, push_results
from opsvault.dispatcher.report import Decision
from opsvault.layout import HALT
from opsvault.ports import Runner


@dataclass(frozen=True, slots=True)
class BatchTools:
    """What running a batch needs besides the plan: the runner, checkpoints, telling."""

    runner: Runner
    checkpoint: Callable[[str], None]
    # Comment results and alert admins (after each batch).
    tell: Callable[[FirePlan, str], None]
    # Alert admins of a HALT that could not be pushed.
    alert: Callable[[FirePlan, str], None]


def fire_in_batches(
    pusher: Pusher,
    ctx: FireContext,
    tools: BatchTools,
    main: str,
    intents: list[RecordIntent],
    dry_run: bool,
    state: Progress,
    decisions: list[Decision],
    clock: Callable[[], datetime],
) -> str:
    """Claim, run and record batches of at most ``ctx.max_concurrency``; return main after them.

    The records of closed and expired PRs (*intents*) go into the first
    claim commit. An action deferred by one batch and decided by a later one
    is reported once, with what was decided.
    """
    limit, slots = ctx.queue_limit, max(1, ctx.max_concurrency)
    claimed = 0
    batches: list[list[Decision]] = []
    try:
        while not batches or claim_budget(limit, claimed, slots):
            budget = claim_budget(limit, claimed, slots)
            batch: list[Decision] = []
            batches.append(batch)
            main, plan = push_plan(
                pusher,
                replace(ctx, queue_limit=budget),
                main,
                intents,
                dry_run,
                state,
                batch,
                clock,
                alert=tools.alert,
            )
            intents = []
            if plan is None:
                break  # the claim push kept losing: the next tick retries
            if HALT in plan.changes:
                state.halted = True
            taken = len(plan.claims)
            if plan.claims and not dry_run:
                main = _run(pusher, ctx, tools, main, plan, state, batch, clock)
            if not dry_run:
                tools.tell(plan, main)
            if dry_run or state.halted or taken < budget:
                break  # nothing more can be started now
            claimed += taken
    finally:
        decisions.extend(_once(batches))
    return main


def _run(
    pusher: Pusher,
    ctx: FireContext,
    tools: BatchTools,
    main: str,
    plan: FirePlan,
    state: Progress,
    decisions: list[Decision],
    clock: Callable[[], datetime],
) -> str:
    """Execute the batch claimed on main by *plan*, then record its results."""
    tools.checkpoint("claimed")
    claimed_at = plan.planned_at or ctx.now
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
        tools.runner, plan.claims, ctx.max_concurrency, tools.checkpoint
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
    main = push_results(pusher, ctx, main, plan, results, state, decisions, clock)
    tools.checkpoint("recorded")
    return main


def _once(batches: list[list[Decision]]) -> list[Decision]:
    """Return the batches' decisions, dropping a deferral that a later decision replaced."""
    decided = {d.subject for batch in batches for d in batch if d.event != "deferred"}
    out: list[Decision] = []
    deferred: set[str] = set()
    for batch in batches:
        for d in batch:
            if d.event == "deferred":
                if d.subject in decided or d.subject in deferred:
                    continue
                deferred.add(d.subject)
            out.append(d)
    return out
