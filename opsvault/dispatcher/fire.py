"""The fire phase: verify what is on main, claim it, execute it, record it.

Every state change is a commit on main pushed by compare-and-swap, so an
action is executed only by the dispatcher whose claim commit won the push.
Planning is redone from scratch whenever a push loses; execution happens only
after the claim is on main, and a claim left behind by a dead dispatcher is
recorded as ``interrupted`` (re-run only for idempotent formulas) once its
deadline passes — never executed a second time otherwise.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from opsvault.dispatcher.execution import execution_request, lock_keys
from opsvault.dispatcher.integrity import MergeMismatch
from opsvault.dispatcher.provenance import Provenance, establish, introducing_commits
from opsvault.dispatcher.reasons import ReasonCode
from opsvault.dispatcher.records import (
    ClaimRecord,
    Outcome,
    ResultRecord,
    archive_paths,
    parse_claim,
    render_claim,
    render_record,
)
from opsvault.dispatcher.report import Decision
from opsvault.dispatcher.state import (
    ActionFacts,
    Claim,
    Defer,
    Done,
    Expire,
    Refuse,
    decide_action,
)
from opsvault.errors import InvalidFileError, OpsvaultError
from opsvault.git.base import OpsRepo
from opsvault.layout import (
    ACTIONS,
    RUNNING,
    action_path,
    claim_path,
    formula_path,
    running_path,
)
from opsvault.messages import RunResult
from opsvault.policy.assess import assess_action
from opsvault.ports import Forge, Runner
from opsvault.snapshot import CommitSnapshot, has_file, load_formulas
from opsvault.timefmt import parse_iso, render_iso
from opsvault.vault.formula import FORMULA_NAME, Formula
from opsvault.vault.request import Action, parse_action

log = logging.getLogger(__name__)

CLAIM_GRACE = timedelta(
    minutes=5
)  # beyond the formula timeout before a claim counts as stale
MAX_ATTEMPTS = 3  # executions of an idempotent action across interruptions


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class Claimed:
    action: Action
    formula: Formula
    record: ClaimRecord  # what goes into <id>.claim.json

    @property
    def pr(self) -> int | None:
        return self.record.pr


@dataclass(slots=True)
class FirePlan:
    changes: dict[str, bytes | None] = field(default_factory=dict)
    claims: list[Claimed] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    alerts: list[tuple[str, str]] = field(
        default_factory=list
    )  # (event, text) for admins
    results: list[tuple[int, str, str]] = field(
        default_factory=list
    )  # (pr, action id, comment)
    exists: Callable[[str], bool] = field(
        default=lambda path: False
    )  # is this path on main
    mismatches: list[MergeMismatch] = field(default_factory=list)
    planned_at: datetime | None = None  # the time claims made in this plan count from


@dataclass(frozen=True, slots=True)
class FireContext:
    repo: OpsRepo
    forge: Forge
    runner: Runner
    identity: str
    claim_token: (
        str  # unique per tick and process: tells our claims from another replica's
    )
    now: datetime
    queue_limit: int
    known_merges: dict[str, int] = field(hash=False)
    max_concurrency: int = 1


def archive(
    plan: FirePlan,
    source: str,
    action_id: str,
    content: bytes,
    record: ResultRecord,
    when: datetime,
) -> None:
    """Move the action at *source* into its archive with *record* beside it.

    An archive path already taken on main (the same id refused twice, say) is
    never overwritten: the new record gets a numbered stem beside it.
    """
    stem, n = action_id, 1
    toml_path, result_path = archive_paths(record.outcome, stem, when)
    while (
        plan.exists(toml_path)
        or plan.exists(result_path)
        or result_path in plan.changes
    ):
        n += 1
        stem = f"{action_id}.{n}"
        toml_path, result_path = archive_paths(record.outcome, stem, when)
    plan.changes[source] = None
    plan.changes[toml_path] = content
    plan.changes[result_path] = render_record(record)


def _record_base(
    prov: Provenance | None, action_id: str, content: bytes, ctx: FireContext
) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": action_id,
        "action_sha256": sha256(content),
        "dispatcher": ctx.identity,
    }
    if prov is not None:
        base.update(
            tier=prov.verdict.tier.label,
            reasons=tuple(r.render() for r in prov.verdict.reasons),
            policy_commit=prov.base_commit,
            pr=prov.pull.number,
            proposer=prov.pull.author,
            approver=prov.pull.merged_by,
            head_commit=prov.head_commit,
            merge_commit=prov.introduced_by,
        )
    return base


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
            _plan_action(
                ctx, main, path, snapshot.read_file(path) or b"", plan, held, introduced
            )
        except OpsvaultError as exc:
            if (
                exc.exit_code == 75
            ):  # ForgeUnavailable: the whole tick ends, retried next time
                raise
            plan.decisions.append(Decision(f"action:{path}", "error", str(exc)))
        except Exception as exc:  # a bug must not keep other actions from firing (I5)
            log.exception("%s: unexpected error while planning it", path)
            plan.decisions.append(
                Decision(f"action:{path}", "error", f"unexpected {exc!r}")
            )
    if plan.mismatches:
        return plan  # the caller turns it into a HALT (halt.plan_halt): nothing fires
    _plan_recovery(ctx, main, snapshot, plan)
    _batch_deadline(ctx, plan)
    return plan


def _batch_deadline(ctx: FireContext, plan: FirePlan) -> None:
    """Give every claim of this tick the deadline of the whole batch (security review SR-3).

    Results are recorded together after the batch ran, so a short action's own
    timeout says nothing about when its result reaches main. With *c* workers
    taking *n* claims of at most *T* each in order, the batch ends within
    ``(ceil(n / c) + 1) * T``; until then no other dispatcher may call a claim
    of this batch stale.
    """
    if not plan.claims:
        return
    longest = max(claim.formula.timeout for claim in plan.claims)
    rounds = -(-len(plan.claims) // max(1, ctx.max_concurrency)) + 1
    deadline = render_iso(ctx.now + longest * rounds + CLAIM_GRACE)
    plan.claims[:] = [
        replace(claim, record=replace(claim.record, deadline=deadline))
        for claim in plan.claims
    ]
    for claim in plan.claims:
        plan.changes[claim_path(claim.action.id)] = render_claim(claim.record)


def _plan_action(
    ctx: FireContext,
    main: str,
    path: str,
    content: bytes,
    plan: FirePlan,
    held: set[str],
    introduced: dict[str, str],
) -> None:
    """Gather the facts about the action at *path*, decide (``decide_action``), apply."""
    action_id = path.rsplit("/", 1)[1].removesuffix(".toml")
    subject = f"action:{action_id}"
    queue_full = len(plan.claims) >= ctx.queue_limit
    found = (
        None
        if queue_full  # decided before any provenance work: deferring costs nothing
        else establish(
            ctx.repo,
            ctx.forge,
            main,
            path,
            ctx.identity,
            ctx.known_merges,
            introduced if path in introduced else None,
        )
    )
    if isinstance(found, MergeMismatch):
        plan.mismatches.append(found)  # the whole plan becomes a HALT: nothing fires
        return
    prov = found if isinstance(found, Provenance) else None
    action, formula, facts = _action_facts(ctx, path, content, plan, held, found)
    decision = decide_action(facts)
    base = _record_base(prov, action_id, content, ctx)
    match decision:
        case Defer(detail):
            plan.decisions.append(Decision(subject, "deferred", detail))
        case Refuse(reason, detail):
            record = ResultRecord(
                outcome=Outcome.REFUSED, reason=reason, detail=detail, **base
            )
            archive(plan, path, action_id, content, record, ctx.now)
            plan.decisions.append(Decision(subject, "refused", f"{reason}: {detail}"))
            plan.alerts.append(
                ("refused", f"{action_id} was refused: {reason} ({detail})")
            )
        case Expire(detail):
            assert action is not None and action.expires is not None
            record = ResultRecord(
                outcome=Outcome.EXPIRED,
                reason=ReasonCode.EXPIRES_PASSED,
                detail=action.expires.isoformat(),
                **base,
            )
            archive(plan, path, action_id, content, record, ctx.now)
            plan.decisions.append(Decision(subject, "expired", detail))
        case Done(detail):
            assert prov is not None
            record = ResultRecord(
                outcome=Outcome.DONE,
                reason=ReasonCode.HUMAN_REQUEST_MERGED,
                detail="an eligible admin merged the request: the work is done",
                started_at=render_iso(ctx.now),
                ended_at=render_iso(ctx.now),
                **base,
            )
            archive(plan, path, action_id, content, record, ctx.now)
            plan.decisions.append(Decision(subject, "done", detail))
            plan.results.append(
                (
                    prov.pull.number,
                    action_id,
                    f"Recorded as **done** (merged by @{prov.pull.merged_by}).",
                )
            )
        case Claim(locks, detail):
            assert prov is not None and action is not None and formula is not None
            held.update(locks)
            _add_claim(
                plan,
                path,
                content,
                Claimed(
                    action, formula, _claim_record(ctx, prov, formula, base, locks)
                ),
            )
            plan.decisions.append(Decision(subject, "claimed", detail))


def _action_facts(
    ctx: FireContext,
    path: str,
    content: bytes,
    plan: FirePlan,
    held: set[str],
    found: Provenance | ReasonCode | None,
) -> tuple[Action | None, Formula | None, ActionFacts]:
    """Return the action, its formula at the merge's base, and the facts ``decide_action`` needs."""
    facts = ActionFacts(
        now=ctx.now,
        queued=len(plan.claims),
        queue_limit=ctx.queue_limit,
        merge=found if not isinstance(found, Provenance) else None,
        held=frozenset(held),
    )
    if not isinstance(found, Provenance):
        return None, None, facts
    prov = found
    facts = replace(
        facts, merge=prov.facts, policy=prov.base.policy, merger=prov.pull.merged_by
    )
    try:
        action = parse_action(content, path)
    except InvalidFileError as exc:
        problems = tuple(p.render(path) for p in exc.problems)
        return None, None, replace(facts, parse_problems=problems)
    facts = replace(
        facts, expires=action.expires, human_request=action.is_human_request
    )
    if action.is_human_request:
        return action, None, facts
    assessment = assess_action(action, prov.base.formulas, prov.base.policy, None)
    formula = prov.base.formulas.get(action.formula or "")
    if assessment.problems or formula is None:
        problems = tuple(p.render(path) for p in assessment.problems) or (
            "unknown formula",
        )
        return action, None, replace(facts, assessment_problems=problems)
    locks = lock_keys(action, formula)
    return action, formula, replace(facts, locks=locks)


def _claim_record(
    ctx: FireContext,
    prov: Provenance,
    formula: Formula,
    base: dict[str, Any],
    locks: tuple[str, ...],
) -> ClaimRecord:
    formula_source = CommitSnapshot(ctx.repo, prov.base_commit).read_file(
        formula_path(formula.name)
    )
    return ClaimRecord(
        **base,
        formula=formula.name,
        formula_sha256=sha256(formula_source)
        if formula_source
        else _builtin_sha(formula.name),
        claimed_by=ctx.claim_token,
        claimed_at=render_iso(ctx.now),
        deadline=render_iso(ctx.now + formula.timeout + CLAIM_GRACE),
        attempt=1,
        locks=locks,
        idempotent=formula.idempotent,
    )


def _builtin_sha(name: str) -> str | None:
    from opsvault._resources import data_dir

    source = data_dir("formulas") / f"{name}.toml"
    return sha256(source.read_bytes()) if source.is_file() else None


def _add_claim(plan: FirePlan, source: str, content: bytes, claim: Claimed) -> None:
    """Move the action at *source* to running, with its claim record beside it."""
    action_id = claim.action.id
    plan.changes[source] = None
    plan.changes[running_path(action_id)] = content
    plan.changes[claim_path(action_id)] = render_claim(claim.record)
    plan.claims.append(claim)


def read_claim(content: bytes | None, where: str = "claim") -> ClaimRecord | None:
    """Return a claim record read back from main, or None when any part of it is unusable.

    Total (security invariant I5): an unreadable claim counts as a dead one
    that is never re-run (it has no ``idempotent``), and nothing raises.
    """
    try:
        return parse_claim(content or b"", where)
    except InvalidFileError:
        return None


def _approved_formula(ctx: FireContext, claim: ClaimRecord) -> Formula | None:
    """Return the formula a claim was approved with, or None if it cannot be trusted to re-run.

    Re-running after an interruption uses the claim's own record: the formula as
    it was at the merge's base (``policy_commit``) and only if its bytes still
    hash to ``formula_sha256`` — never main's current version, which an admin
    may have changed since (security review SR-6).
    """
    name, base, digest = claim.formula, claim.policy_commit, claim.formula_sha256
    if (
        name is None
        or not FORMULA_NAME.fullmatch(name)  # a name, before it becomes a path (I4)
        or base is None
        or digest is None
    ):
        return None
    try:
        snapshot = CommitSnapshot(ctx.repo, base)
        formula = load_formulas(snapshot).get(name)
        source = snapshot.read_file(formula_path(name))
    except OpsvaultError:
        return None
    actual = sha256(source) if source is not None else _builtin_sha(name)
    return formula if formula is not None and actual == digest else None


def _plan_recovery(
    ctx: FireContext, main: str, snapshot: CommitSnapshot, plan: FirePlan
) -> None:
    """Record claims a dead dispatcher left behind; re-claim them only for idempotent formulas."""
    for path in snapshot.list_files(RUNNING):
        if not path.endswith(".toml"):
            continue
        try:
            _recover(ctx, snapshot, plan, path)
        except Exception as exc:  # one broken claim never stops the others (I5)
            if isinstance(exc, OpsvaultError) and exc.exit_code == 75:
                raise
            log.exception("%s: unexpected error while recovering it", path)
            plan.decisions.append(
                Decision(f"action:{path}", "error", f"unexpected {exc!r}")
            )


def _recover(
    ctx: FireContext, snapshot: CommitSnapshot, plan: FirePlan, path: str
) -> None:
    action_id = path.rsplit("/", 1)[1].removesuffix(".toml")
    where = claim_path(action_id)
    claim = read_claim(snapshot.read_file(where), where) or ClaimRecord()
    deadline = claim.deadline
    if deadline and parse_iso(deadline) > ctx.now:
        return  # still someone's live claim
    content = snapshot.read_file(path) or b""
    formula = _approved_formula(ctx, claim)
    if formula is not None and claim.idempotent and claim.attempt < MAX_ATTEMPTS:
        try:
            action = parse_action(content, action_path(action_id))
        except InvalidFileError:
            action = None
        if action is not None:
            renewed = replace(
                claim,
                claimed_by=ctx.claim_token,
                claimed_at=render_iso(ctx.now),
                deadline=render_iso(ctx.now + formula.timeout + CLAIM_GRACE),
                attempt=claim.attempt + 1,
            )
            plan.changes[claim_path(action_id)] = render_claim(renewed)
            plan.claims.append(Claimed(action, formula, renewed))
            plan.decisions.append(
                Decision(
                    f"action:{action_id}",
                    "reclaimed",
                    f"idempotent; attempt {renewed.attempt}",
                )
            )
            return
    record = ResultRecord(
        id=action_id,
        outcome=Outcome.INTERRUPTED,
        reason=ReasonCode.CLAIM_EXPIRED,
        detail=f"claimed by {claim.claimed_by or 'unknown'} at {claim.claimed_at or 'unknown'}; no result by {deadline or 'its deadline'}",
        reasons=claim.reasons,
        action_sha256=sha256(content),
        dispatcher=ctx.identity,
        attempt=claim.attempt,
        tier=claim.tier,
        policy_commit=claim.policy_commit,
        pr=claim.pr,
        proposer=claim.proposer,
        approver=claim.approver,
        head_commit=claim.head_commit,
        merge_commit=claim.merge_commit,
        formula=claim.formula,
        formula_sha256=claim.formula_sha256,
    )
    plan.changes[claim_path(action_id)] = None
    archive(plan, path, action_id, content, record, ctx.now)
    plan.decisions.append(Decision(f"action:{action_id}", "interrupted", record.detail))
    plan.alerts.append(
        (
            "interrupted",
            f"{action_id} was interrupted and is not re-run: {record.detail}",
        )
    )


def execute_claims(
    runner: Runner,
    claims: list[Claimed],
    max_concurrency: int,
    checkpoint: Callable[[str], None],
) -> list[RunResult | None]:
    """Run *claims* in a bounded pool, first claimed first started; results in claim order.

    A claim whose execution raised (a runner that broke its contract) has no
    result (None): it stays claimed on main and is recovered after its
    deadline like a crash, while the other claims' results are recorded (I5).
    """

    def run(claim: Claimed) -> RunResult:
        metadata = (("VAULT_PR", str(claim.pr)),) if claim.pr is not None else ()
        return runner.execute(execution_request(claim.action, claim.formula, metadata))

    def isolated(claim: Claimed) -> RunResult | None:
        try:
            return run(claim)
        except Exception:
            log.exception("%s: execution raised; it stays claimed", claim.action.id)
            return None

    if not claims:
        return []
    with ThreadPoolExecutor(
        max_workers=max(1, max_concurrency), thread_name_prefix="vault-run"
    ) as pool:
        results = list(pool.map(isolated, claims))
    checkpoint("executed")
    return results


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
            record = _result_record(claim, result, identity)
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


def _result_record(claim: Claimed, result: RunResult, identity: str) -> ResultRecord:
    data = claim.record
    return ResultRecord(
        id=claim.action.id,
        outcome=Outcome(result.outcome),
        reason=ReasonCode(result.reason),
        tier=data.tier,
        reasons=data.reasons,
        action_sha256=data.action_sha256,
        policy_commit=data.policy_commit,
        formula=data.formula,
        formula_sha256=data.formula_sha256,
        pr=data.pr,
        proposer=data.proposer,
        approver=data.approver,
        head_commit=data.head_commit,
        merge_commit=data.merge_commit,
        dispatcher=identity,
        started_at=render_iso(datetime.fromtimestamp(result.started_at, UTC)),
        ended_at=render_iso(datetime.fromtimestamp(result.ended_at, UTC)),
        exit_code=result.exit_code,
        output_tail=result.output_tail,
        detail=f"failed at step {result.failed_step!r}" if result.failed_step else "",
        attempt=data.attempt,
        sandbox=result.sandbox or None,
    )
