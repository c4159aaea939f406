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

from opsvault.dispatcher.candidates import claim_order
from opsvault.dispatcher.claims import batch_deadline, plan_action, read_claim
from opsvault.dispatcher.fireplan import FireContext, FirePlan
from opsvault.dispatcher.provenance import MAX_WALK, introducing_commits
from opsvault.dispatcher.recovery import plan_recovery
from opsvault.dispatcher.report import Decision
from opsvault.errors import OpsvaultError
from opsvault.git.base import OpsRepo
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
    # Each replica reaches for the waiting actions in an order of its own (ADR 0013).
    waiting = claim_order(
        [
            p
            for p in snapshot.list_files(ACTIONS)
            if p.endswith(".toml") and p.count("/") == 2
        ],
        ctx.claim_token,
    )
    introduced = (
        introduced_on(ctx, main, waiting[: ctx.queue_limit * 2]) if waiting else {}
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


def introduced_on(ctx: FireContext, main: str, paths: list[str]) -> dict[str, str]:
    """Return the commit that introduced each of *paths* on *main* (absent: not found).

    What an earlier plan of this tick found still holds for a path that none
    of the commits added since then (re)introduced: only those are walked.
    The earlier plan may have been made on commits of ours that lost their
    push; main is then walked back to where it meets their line. A main that
    meets none of it is walked in full.
    """
    memo = ctx.introductions
    known: dict[str, str] = {}
    met = _meeting(ctx.repo, main, memo.main) if memo.main is not None else None
    if met is not None:
        steps, lost = met
        again = set(memo.found) | set(paths)
        fresh = introducing_commits(ctx.repo, main, again, limit=steps) if steps else {}
        kept = {p: c for p, c in memo.found.items() if c not in lost}
        known = {p: fresh.get(p) or kept[p] for p in again if p in fresh or p in kept}
    missing = [p for p in paths if p not in known]
    if missing:
        known.update(introducing_commits(ctx.repo, main, missing))
    memo.main, memo.found = main, known
    return {p: known[p] for p in paths if p in known}


LINE = 3  # an earlier plan's commit and its first parents (a results and a claims commit of ours)


def _meeting(repo: OpsRepo, main: str, earlier: str) -> tuple[int, set[str]] | None:
    """Return the first-parent steps from *main* to the line of *earlier*, and what of that line main lacks.

    None when main meets none of the line within ``MAX_WALK`` steps.
    """
    line = [earlier]
    while len(line) < LINE and (parents := repo.commit_info(line[-1]).parents):
        line.append(parents[0])
    commit = main
    for steps in range(MAX_WALK):
        if commit in line:
            return steps, set(line[: line.index(commit)])
        parents = repo.commit_info(commit).parents
        if not parents:
            return None
        commit = parents[0]
    return None
