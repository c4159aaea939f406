"""Every commit the tick pushes: plan, commit, compare-and-swap push; re-planned when it loses.

A fire round's push (claims, refusals, the records of closed PRs, HALT, and
the results of the round before: ADR 0022) is planned afresh on top of
whatever main became after a lost push; a results-only push is rebuilt the
same way. A push whose outcome is unknown is settled by reading main again.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from opsvault.dispatcher.chain import anchor_of, seal_commit, with_anchor
from opsvault.dispatcher.fire import plan_fire
from opsvault.dispatcher.fireplan import Claimed, FireContext, FirePlan
from opsvault.dispatcher.halt import mismatch_recorded, plan_halt
from opsvault.dispatcher.pullphase import RecordIntent
from opsvault.dispatcher.records import ResultRecord, redact_record
from opsvault.dispatcher.report import Decision
from opsvault.dispatcher.results import result_changes, result_comment
from opsvault.dispatcher.unmerged import add_intents
from opsvault.errors import GitError, OpsvaultError, PushRejected
from opsvault.git.base import Identity, OpsRepo
from opsvault.messages import RunResult
from opsvault.ports import Mainline
from opsvault.snapshot import CommitSnapshot

CLAIM_ATTEMPTS = 4
RESULT_ATTEMPTS = 16  # results matter most: a lost one means a recovery


@dataclass(frozen=True, slots=True)
class Pusher:
    """What pushing a commit to main needs: the repo, main's remote, who commits, the redactor."""

    repo: OpsRepo
    mainline: Mainline
    identity: str
    redact: Callable[[str], str]
    # After a lost push, an idle replica waits about as long as the attempt
    # took, jittered, so that replicas racing for main fall out of step and
    # the one that won goes on (ADR 0022).
    pause: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random

    def back_off(self, attempt_seconds: float) -> None:
        self.pause(attempt_seconds * (0.5 + self.jitter()))


@dataclass(frozen=True, slots=True)
class Executed:
    """A batch that ran and whose results are not on main yet: its plan and, per claim, the result."""

    plan: FirePlan
    results: list[RunResult | None]


@dataclass(slots=True)
class Progress:
    """What the tick did to main so far (its report says it)."""

    main_before: str | None = None
    main_after: str | None = None
    commits: int = 0
    halted: bool = False
    unavailable: bool = False  # an error was the forge being unreachable (exit 75)
    merges: int = 0  # merge commits of the pull-request phase
    names: dict[int, str] = field(default_factory=dict)  # PR number -> head branch
    lost: int = 0  # pushes another replica's commit beat


def commit(
    pusher: Pusher, main: str, changes: dict[str, bytes | None], message: str
) -> tuple[str, dict[str, str]]:
    """Commit *changes* on *main*: redacted, then chained (ADR 0021); return it and its record hashes.

    The chain is sealed last, on the bytes committed, with the head read from
    *main*: the commit this push is based on. A lost push is planned and
    committed again on the new main, so the chain stays linear.
    """
    who = Identity(pusher.identity, f"{pusher.identity}@opsvault.invalid")
    changes = {
        path: redact_record(content, pusher.redact)
        if content is not None and path.endswith(".result.json")
        else content
        for path, content in changes.items()
    }
    changes, message, hashes = seal_commit(
        pusher.repo, main, changes, pusher.redact(message)
    )
    return pusher.repo.commit_files(main, changes, message, who), hashes


def publish(pusher: Pusher, new: str, old: str) -> None:
    """Push *new* over *old*; a push whose outcome is unknown is settled by reading main again."""
    try:
        pusher.mainline.publish(new, old)
    except PushRejected:
        raise
    except GitError:
        if pusher.mainline.refresh() != new:
            raise


def push_plan(
    pusher: Pusher,
    ctx: FireContext,
    main: str,
    intents: list[RecordIntent],
    dry_run: bool,
    state: Progress,
    decisions: list[Decision],
    clock: Callable[[], datetime],
    planner: Callable[[FireContext, str], FirePlan] | None = None,
    alert: Callable[[FirePlan, str], None] = lambda plan, main: None,
    pending: Executed | None = None,
    busy: Callable[[], bool] = lambda: False,
    attempts: int = CLAIM_ATTEMPTS,
) -> tuple[str, FirePlan | None]:
    """Plan the fire phase and push it; re-plan from the new main when the push loses.

    Each attempt plans at the current time: claims made in it carry that time
    and a deadline counted from it (I8). With *pending*, its results are
    committed first and the plan is made on top of them (their locks are
    free again), and both commits land in the one push. After a lost push the
    replica backs off (``Pusher.back_off``) unless it is *busy* running a
    batch: then the next claim is wanted before that batch ends.
    """
    for _attempt in range(attempts):
        began = time.monotonic()
        base = main
        recorded: list[tuple[Claimed, ResultRecord]] = []
        result_hashes: dict[str, str] = {}
        if pending is not None:
            base, recorded, result_hashes = _commit_results(
                pusher, main, pending, clock()
            )
        plan = (planner or _plan_or_halt)(replace(ctx, now=clock()), base)
        add_intents(pusher.repo, base, intents, plan)
        if dry_run or (not plan.changes and base == main):
            decisions.extend(plan.decisions)
            return main, plan
        new, hashes = base, dict[str, str]()
        if plan.changes:
            new, hashes = commit(pusher, base, plan.changes, _message(plan))
        try:
            publish(pusher, new, main)
        except PushRejected:
            # Another dispatcher won: its claims are on the new main.
            main = pusher.mainline.refresh()
            state.lost += 1
            if ctx.round_slots is not None:
                # Contended: a smaller batch plans and commits sooner (ADR 0022).
                ctx = replace(ctx, round_slots=ctx.max_concurrency)
            if not busy():
                pusher.back_off(time.monotonic() - began)
            continue
        except OpsvaultError:
            if plan.mismatches:
                # HALT not written: the admins must still hear of it (I1).
                alert(plan, main)
            raise
        state.commits += (base != main) + (new != base)
        decisions.extend(plan.decisions)
        plan.results[:] = [
            (pr, action_id, with_anchor(text, anchor_of(hashes, action_id)))
            for pr, action_id, text in plan.results
        ]
        _announce(recorded, result_hashes, decisions, plan)
        return new, plan
    decisions.append(
        Decision(
            pusher.mainline.branch,
            "contended",
            f"claim push lost {attempts} times; next tick retries",
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


def _message(plan: FirePlan) -> str:
    counts: dict[str, int] = {}
    for d in plan.decisions:
        counts[d.event] = counts.get(d.event, 0) + 1
    summary = (
        ", ".join(f"{n} {event}" for event, n in sorted(counts.items())) or "records"
    )
    return f"vault: {summary}"


def push_results(
    pusher: Pusher,
    main: str,
    pending: Executed,
    state: Progress,
    decisions: list[Decision],
    clock: Callable[[], datetime],
) -> str:
    """Push one commit recording every result of *pending*; retry on top of whatever main became.

    What the results say (PR comments, alerts) is added to ``pending.plan``.
    """
    for _attempt in range(RESULT_ATTEMPTS):
        began = time.monotonic()
        new, recorded, hashes = _commit_results(pusher, main, pending, clock())
        if new == main:
            return main
        try:
            publish(pusher, new, main)
        except PushRejected:
            main = pusher.mainline.refresh()
            pusher.back_off(time.monotonic() - began)
            continue
        state.commits += 1
        _announce(recorded, hashes, decisions, pending.plan)
        return new
    raise GitError(
        pusher.mainline.branch,
        f"could not record results after {RESULT_ATTEMPTS} attempts; they stay claimed and will be recovered",
    )


def _commit_results(
    pusher: Pusher, main: str, pending: Executed, now: datetime
) -> tuple[str, list[tuple[Claimed, ResultRecord]], dict[str, str]]:
    """Commit the results of *pending* on *main* (not pushed); return it, what it records, the hashes.

    Nothing to record returns *main* itself.
    """
    changes, recorded = result_changes(
        CommitSnapshot(pusher.repo, main),
        pending.plan.claims,
        pending.results,
        pusher.identity,
        now,
    )
    if not changes:
        return main, [], {}
    new, hashes = commit(
        pusher, main, changes, f"vault: record {len(recorded)} result(s)"
    )
    return new, recorded, hashes


def _announce(
    recorded: list[tuple[Claimed, ResultRecord]],
    hashes: dict[str, str],
    decisions: list[Decision],
    plan: FirePlan,
) -> None:
    """Report results now on main, and add their PR comments and failure alerts to *plan*."""
    for claim, record in recorded:
        # The record's hash in the report line and the PR comment: anchors outside the repo.
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
                    with_anchor(result_comment(record), anchor),
                )
            )
        if record.outcome != "succeeded":
            plan.alerts.append(
                ("failed", f"{claim.action.id}: {record.outcome} ({record.reason})")
            )
