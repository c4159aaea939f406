"""The fire phase's plan: one commit deciding about every action on main.

Every state change is a commit on main pushed by compare-and-swap, so an
action is executed only by the dispatcher whose claim commit won the push.
Planning is redone from scratch whenever a push loses; execution
(``execution.execute_claims``) happens only after the claim is on main, and
its results are recorded by ``results.result_changes``. What is decided per
action lives in ``claims``; claims a dead dispatcher left behind are handled
by ``recovery``; the plan itself is a ``fireplan.FirePlan``.
"""

from __future__ import annotations

import logging

from opsvault.dispatcher.claims import batch_deadline, plan_action, read_claim
from opsvault.dispatcher.fireplan import FireContext, FirePlan
from opsvault.dispatcher.provenance import introducing_commits
from opsvault.dispatcher.recovery import plan_recovery
from opsvault.dispatcher.report import Decision
from opsvault.errors import OpsvaultError
from opsvault.layout import ACTIONS, RUNNING
from opsvault.snapshot import CommitSnapshot, has_file

log = logging.getLogger(__name__)


def plan_fire(ctx: FireContext, main: str) -> FirePlan:
    """Decide, for every action on *main*, whether it is refused, done, expired or claimed."""
    snapshot = CommitSnapshot(ctx.repo, main)
    plan = FirePlan(exists=lambda path: has_file(snapshot, path), planned_at=ctx.now)
    held: set[str] = set()
    for path in snapshot.list_files(RUNNING):
        if path.endswith(".claim.json"):
            claim = read_claim(snapshot.read_file(path), path)
            held.update(claim.locks if claim is not None else ())
    waiting = [
        p
        for p in snapshot.list_files(ACTIONS)
        if p.endswith(".toml") and p.count("/") == 2
    ]
    introduced = (
        introducing_commits(ctx.repo, main, waiting[: ctx.queue_limit * 2])
        if waiting
        else {}
    )
    for path in waiting:
        try:
            plan_action(
                ctx, main, path, snapshot.read_file(path) or b"", plan, held, introduced
            )
        except OpsvaultError as exc:
            if exc.exit_code == 75:  # ForgeUnavailable: the tick ends, retried next
                raise
            plan.decisions.append(Decision(f"action:{path}", "error", str(exc)))
        except Exception as exc:  # a bug must not keep other actions from firing (I5)
            log.exception("%s: unexpected error while planning it", path)
            plan.decisions.append(
                Decision(f"action:{path}", "error", f"unexpected {exc!r}")
            )
    if plan.mismatches:
        return plan  # the caller turns it into a HALT (halt.plan_halt): nothing fires
    plan_recovery(ctx, snapshot, plan)
    batch_deadline(ctx, plan)
    return plan
