"""The fire phase in rounds: claim what the free slots can start, run it, record it with the next claim.

A round's push claims at most as many actions as the replica has execution
slots. While that batch runs, the next push records the batch before it and
claims the next one, so the push's round trip hides behind execution and a
replica never holds more than the batch it runs and the one it starts next
(ADR 0022). Other replicas claim the rest of the queue meanwhile, so
execution capacity adds up across replicas; correctness still rests on the
compare-and-swap push alone (ADR 0002, 0003).

When a batch ran in a quarter of the time its uncontended push took,
claiming is what limits throughput, not execution: the next push claims four
times as many (up to the tick's queue limit), so that a lone replica with
quick actions is not held to one push per few actions (``next_size``).
Otherwise, and after a push that lost to another replica, the size goes back
to the free slots.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from opsvault.dispatcher.claims import CLAIM_GRACE, batch_span
from opsvault.dispatcher.execution import execute_claims
from opsvault.dispatcher.fireplan import FireContext, FirePlan
from opsvault.dispatcher.pullphase import RecordIntent
from opsvault.dispatcher.push import (
    CLAIM_ATTEMPTS,
    Executed,
    Progress,
    Pusher,
    push_plan,
    push_results,
)
from opsvault.dispatcher.report import Decision
from opsvault.errors import OpsvaultError
from opsvault.layout import HALT
from opsvault.messages import RunResult
from opsvault.ports import Runner
from opsvault.timefmt import parse_aware

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FireRounds:
    """What the rounds need beyond the plan: who runs, the crash checkpoints, how to tell."""

    runner: Runner
    checkpoint: Callable[[str], None]
    tell: Callable[[FirePlan, str], None]  # post a pushed plan's comments and alerts
    alert: Callable[[FirePlan, str], None]  # when a HALT could not be pushed
    seconds: Callable[[], float] = time.monotonic  # to time pushes and batches


def fire_rounds(
    rounds: FireRounds,
    pusher: Pusher,
    ctx: FireContext,
    main: str,
    intents: list[RecordIntent],
    state: Progress,
    decisions: list[Decision],
    clock: Callable[[], datetime],
) -> str:
    """Claim, run and record batch after batch until nothing more is claimed; return main.

    While a batch runs, the next round's push records the batch before it
    and claims the next one, so a replica's slots do not wait for main. The
    tick claims at most ``ctx.queue_limit`` actions over all its rounds.
    """
    slots = max(1, ctx.max_concurrency)
    said = _Said(decisions)
    ahead = _Round(rounds, pusher, ctx, state, said, clock)
    try:
        # A tick's first claim meets every replica that woke with it: it may
        # lose more often before this replica is in step (ADR 0022).
        main, ready = ahead.push(
            main, intents, None, slots, 0, timedelta(0), attempts=2 * CLAIM_ATTEMPTS
        )
        if ready is None:
            return main
        queued = 0
        pending: Executed | None = None
        with ThreadPoolExecutor(1, thread_name_prefix="vault-batch") as batches:
            while ready.claims:
                _drop_overdue(ready, slots, decisions, clock)
                if not ready.claims:
                    break
                queued += len(ready.claims)
                running = batches.submit(ahead.execute, ready)
                began = rounds.seconds()
                try:
                    main, following = ahead.push(
                        main,
                        [],
                        pending,
                        ahead.size,
                        queued,
                        _longest(ready),
                        running=running,
                    )
                except OpsvaultError:
                    # Main did not take the push: what ran is still recorded if it can be.
                    results, _ = running.result()
                    ahead.salvage(main, pending, Executed(ready, results))
                    raise
                pushed_in = rounds.seconds() - began
                results, ran_in = running.result()
                said.raised(ready, results)
                if following is not None:
                    pending = Executed(ready, results)
                else:
                    # The claim push kept losing: record what ran alone, then
                    # claim afresh once; a second contended push ends the tick.
                    for batch in (pending, Executed(ready, results)):
                        main = ahead.record(main, batch)
                    pending = None
                    main, following = ahead.push(
                        main, [], None, slots, queued, timedelta(0)
                    )
                    if following is None:
                        return main
                ready = following
                ahead.grow(ran_in, pushed_in, slots)
        if pending is not None:
            main = ahead.record(main, pending)
        return main
    finally:
        said.close()


class _Said:
    """The tick's decisions from every round: each said once, and only the last deferrals.

    Every round re-plans what it did not claim, and an earlier round defers
    what later rounds claim.
    """

    def __init__(self, decisions: list[Decision]) -> None:
        self.decisions = decisions
        self.told: set[Decision] = set()
        self.deferred: list[Decision] = []

    def round(self, said: list[Decision]) -> None:
        fresh = [d for d in said if d.event != "deferred" and d not in self.told]
        self.decisions.extend(fresh)
        self.told.update(fresh)
        self.deferred = [d for d in said if d.event == "deferred"]

    def raised(self, plan: FirePlan, results: list[RunResult | None]) -> None:
        self.decisions.extend(
            Decision(
                f"action:{claim.action.id}",
                "error",
                "its execution raised; it stays claimed and is recovered after its deadline",
            )
            for claim, result in zip(plan.claims, results, strict=True)
            if result is None
        )

    def close(self) -> None:
        self.decisions.extend(self.deferred)


class _Round:
    """One replica's pushes in a tick, and how many the next one claims."""

    def __init__(
        self,
        rounds: FireRounds,
        pusher: Pusher,
        ctx: FireContext,
        state: Progress,
        said: _Said,
        clock: Callable[[], datetime],
    ) -> None:
        self.rounds, self.pusher, self.ctx = rounds, pusher, ctx
        self.state, self.said, self.clock = state, said, clock
        self.size = max(1, ctx.max_concurrency)
        self.contended = False  # whether the last push lost to another replica first

    def push(
        self,
        main: str,
        intents: list[RecordIntent],
        pending: Executed | None,
        size: int,
        queued: int,
        waits: timedelta,
        running: Future[tuple[list[RunResult | None], float]] | None = None,
        attempts: int = CLAIM_ATTEMPTS,
    ) -> tuple[str, FirePlan | None]:
        """Record *pending* and claim up to *size* more, to start within *waits*; return main and the plan."""
        heard: list[Decision] = []
        lost = self.state.lost
        if lost:
            # Other replicas push too: start from their latest main, not a
            # push that is bound to lose (this push runs beside a batch).
            main = self.pusher.mainline.refresh()
        main, plan = push_plan(
            self.pusher,
            replace(self.ctx, queued=queued, round_slots=size, waits=waits),
            main,
            intents,
            False,
            self.state,
            heard,
            self.clock,
            alert=self.rounds.alert,
            pending=pending,
            busy=lambda: running is not None and not running.done(),
            attempts=attempts,
        )
        self.said.round(heard)
        self.contended = self.state.lost > lost
        if self.contended:
            self.size = max(1, self.ctx.max_concurrency)  # start small again
        if plan is None:
            return main, None
        if pending is not None:
            self.rounds.checkpoint("recorded")
        if HALT in plan.changes:
            self.state.halted = True
        if plan.claims:
            self.rounds.checkpoint("claimed")
        self.rounds.tell(plan, main)
        return main, plan

    def execute(self, plan: FirePlan) -> tuple[list[RunResult | None], float]:
        """Run the batch of *plan*; return its results and how long it took."""
        began = self.rounds.seconds()
        results = execute_claims(
            self.rounds.runner,
            plan.claims,
            max(1, self.ctx.max_concurrency),
            self.rounds.checkpoint,
        )
        return results, self.rounds.seconds() - began

    def record(self, main: str, done: Executed | None) -> str:
        """Push the results of *done* alone (the last batch, or after a contended round)."""
        if done is None:
            return main
        main = push_results(
            self.pusher, main, done, self.state, self.said.decisions, self.clock
        )
        self.rounds.checkpoint("recorded")
        self.rounds.tell(done.plan, main)
        return main

    def salvage(self, main: str, *batches: Executed | None) -> None:
        """Record *batches* on the way out of a failed round; a failure here is only logged."""
        for batch in batches:
            try:
                main = self.record(main, batch)
            except OpsvaultError as exc:
                log.error("results not recorded (%s): their claims are recovered", exc)

    def grow(self, ran_in: float, pushed_in: float, slots: int) -> None:
        """Size the next push; a contended push says nothing about how fast pushes land."""
        if not self.contended:
            self.size = next_size(
                self.size, slots, self.ctx.queue_limit, ran_in, pushed_in
            )


def next_size(
    size: int, slots: int, queue_limit: int, ran_in: float, pushed_in: float
) -> int:
    """Return how many the next push claims: more while batches run faster than pushes land.

    A batch that ran in a quarter of the time the push made beside it took
    leaves the slots idle waiting for main: claim four times as many (at most
    the queue limit), a batch that still runs within one push. Otherwise the
    free slots are what can start.
    """
    return min(size * 4, queue_limit) if ran_in * 4 <= pushed_in else slots


def _drop_overdue(
    plan: FirePlan,
    max_concurrency: int,
    decisions: list[Decision],
    clock: Callable[[], datetime],
) -> None:
    """Start the batch only if it can end, with time left to record it, before its deadline (I8).

    The claim is on main either way: a batch not started is recovered after
    its deadline like a crash. This catches a claim push that landed late
    (the deadline counts from the plan) and a batch claimed while the one
    before it ran that waited longer than its deadline allows
    (``claims.batch_deadline``).
    """
    if not plan.claims:
        return
    deadline = parse_aware(plan.claims[0].record.deadline or "")
    span = batch_span(plan, max_concurrency) - CLAIM_GRACE
    if deadline is not None and clock() + span <= deadline:
        return
    for claim in plan.claims:
        decisions.append(
            Decision(
                f"action:{claim.action.id}",
                "late",
                f"its batch could no longer end before the claim's deadline {claim.record.deadline}; not started",
            )
        )
        plan.alerts.append(("late", f"{claim.action.id}: claimed too late to start"))
    plan.claims = []


def _longest(plan: FirePlan) -> timedelta:
    return max((claim.formula.timeout for claim in plan.claims), default=timedelta(0))
