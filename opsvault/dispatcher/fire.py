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
import json
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from opsvault.dispatcher.execution import execution_request, lock_keys
from opsvault.dispatcher.integrity import MergeMismatch
from opsvault.dispatcher.provenance import Provenance, establish, introducing_commits
from opsvault.dispatcher.records import (
    ACTIONS,
    MAX_RECORD_BYTES,
    RUNNING,
    Outcome,
    ResultRecord,
    action_path,
    archive_paths,
    claim_path,
    render_record,
    running_path,
)
from opsvault.dispatcher.report import Decision
from opsvault.dispatcher.state import Refusal, verify_merge
from opsvault.dispatcher.types import RunResult
from opsvault.errors import InvalidFileError, OpsvaultError
from opsvault.git.base import OpsRepo
from opsvault.policy.assess import assess_action
from opsvault.ports import Forge, Runner
from opsvault.snapshot import CommitSnapshot, has_file, load_formulas
from opsvault.vault.bounded import parse_json_object
from opsvault.vault.formula import FORMULA_NAME, Formula
from opsvault.vault.request import Action, parse_action

log = logging.getLogger(__name__)

CLAIM_GRACE = timedelta(
    minutes=5
)  # beyond the formula timeout before a claim counts as stale
MAX_ATTEMPTS = 3  # executions of an idempotent action across interruptions


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True, slots=True)
class Claim:
    action: Action
    formula: Formula
    data: dict[str, Any] = field(hash=False)  # what goes into <id>.claim.json

    @property
    def pr(self) -> int | None:
        value = self.data.get("pr")
        return int(value) if value is not None else None


@dataclass(slots=True)
class FirePlan:
    changes: dict[str, bytes | None] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)
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
            held.update(_claim_data(snapshot.read_file(path)).get("locks", []))
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
    deadline = iso(ctx.now + longest * rounds + CLAIM_GRACE)
    for claim in plan.claims:
        claim.data["deadline"] = deadline
        plan.changes[claim_path(claim.action.id)] = (
            json.dumps(claim.data, indent=2, sort_keys=True) + "\n"
        ).encode()


def _plan_action(
    ctx: FireContext,
    main: str,
    path: str,
    content: bytes,
    plan: FirePlan,
    held: set[str],
    introduced: dict[str, str],
) -> None:
    action_id = path.rsplit("/", 1)[1].removesuffix(".toml")
    subject = f"action:{action_id}"

    def refuse(reason: str, detail: str, prov: Provenance | None = None) -> None:
        record = ResultRecord(
            outcome=Outcome.REFUSED,
            reason=reason,
            detail=detail,
            **_record_base(prov, action_id, content, ctx),
        )
        archive(plan, path, action_id, content, record, ctx.now)
        plan.decisions.append(Decision(subject, "refused", f"{reason}: {detail}"))
        plan.alerts.append(("refused", f"{action_id} was refused: {reason} ({detail})"))

    if len(plan.claims) >= ctx.queue_limit:
        # Decided before any provenance work, so deferred actions cost nothing this tick.
        plan.decisions.append(
            Decision(
                subject,
                "deferred",
                f"queue limit of {ctx.queue_limit} reached this tick",
            )
        )
        return
    found = establish(
        ctx.repo,
        ctx.forge,
        main,
        path,
        ctx.identity,
        ctx.known_merges,
        introduced if path in introduced else None,
    )
    if isinstance(found, MergeMismatch):
        plan.mismatches.append(found)  # the whole plan becomes a HALT: nothing fires
        return
    if isinstance(found, Refusal):
        refuse(
            str(found),
            "the action reached main without an eligible merged pull request",
        )
        return
    prov = found
    refusal = verify_merge(prov.facts, prov.base.policy)
    if refusal is not None:
        refuse(
            str(refusal),
            f"merged by {prov.pull.merged_by!r} as {prov.verdict.tier.label} tier",
            prov,
        )
        return
    try:
        action = parse_action(content, path)
    except InvalidFileError as exc:
        refuse(
            str(Refusal.INVALID), "; ".join(p.render(path) for p in exc.problems), prov
        )
        return
    base = _record_base(prov, action_id, content, ctx)
    if action.expires is not None and action.expires <= ctx.now:
        record = ResultRecord(
            outcome=Outcome.EXPIRED,
            reason="expires-passed",
            detail=action.expires.isoformat(),
            **base,
        )
        archive(plan, path, action_id, content, record, ctx.now)
        plan.decisions.append(
            Decision(
                subject, "expired", f"expires {action.expires.isoformat()} has passed"
            )
        )
        return
    if action.is_human_request:
        record = ResultRecord(
            outcome=Outcome.DONE,
            reason="human-request-merged",
            detail="an eligible admin merged the request: the work is done",
            started_at=iso(ctx.now),
            ended_at=iso(ctx.now),
            **base,
        )
        archive(plan, path, action_id, content, record, ctx.now)
        plan.decisions.append(
            Decision(subject, "done", f"human request merged by {prov.pull.merged_by}")
        )
        plan.results.append(
            (
                prov.pull.number,
                action_id,
                f"Recorded as **done** (merged by @{prov.pull.merged_by}).",
            )
        )
        return
    assessment = assess_action(action, prov.base.formulas, prov.base.policy, None)
    formula = prov.base.formulas.get(action.formula or "")
    if assessment.problems or formula is None:
        detail = (
            "; ".join(p.render(path) for p in assessment.problems) or "unknown formula"
        )
        refuse(str(Refusal.INVALID), detail, prov)
        return
    locks = lock_keys(action, formula)
    if held.intersection(locks):
        plan.decisions.append(
            Decision(
                subject, "deferred", f"lock held: {sorted(held.intersection(locks))}"
            )
        )
        return
    held.update(locks)
    formula_source = CommitSnapshot(ctx.repo, prov.base_commit).read_file(
        f"vault/formulas/{formula.name}.toml"
    )
    data = {
        **{k: v for k, v in base.items()},
        "reasons": list(base.get("reasons", ())),
        "formula": formula.name,
        "formula_sha256": sha256(formula_source)
        if formula_source
        else _builtin_sha(formula.name),
        "claimed_by": ctx.claim_token,
        "claimed_at": iso(ctx.now),
        "deadline": iso(ctx.now + formula.timeout + CLAIM_GRACE),
        "attempt": 1,
        "locks": list(locks),
        "idempotent": formula.idempotent,
    }
    _claim(plan, path, content, Claim(action, formula, data))
    plan.decisions.append(
        Decision(
            subject,
            "claimed",
            f"{prov.verdict.tier.label} tier, merged by {prov.pull.merged_by}",
        )
    )


def _builtin_sha(name: str) -> str | None:
    from opsvault._resources import data_dir

    source = data_dir("formulas") / f"{name}.toml"
    return sha256(source.read_bytes()) if source.is_file() else None


def _claim(plan: FirePlan, source: str, content: bytes, claim: Claim) -> None:
    action_id = claim.action.id
    plan.changes[source] = None
    plan.changes[running_path(action_id)] = content
    plan.changes[claim_path(action_id)] = (
        json.dumps(claim.data, indent=2, sort_keys=True) + "\n"
    ).encode()
    plan.claims.append(claim)


_CLAIM_TYPES: dict[str, tuple[type, ...]] = {
    "locks": (list,),
    "deadline": (str,),
    "claimed_at": (str,),
    "claimed_by": (str,),
    "attempt": (int,),
    "idempotent": (bool,),
    "formula": (str,),
    "policy_commit": (str,),
    "formula_sha256": (str,),
}


def _claim_data(content: bytes | None) -> dict[str, Any]:
    """Return a claim record read back from main, or {} when any part of it is unusable.

    Total (security invariant I5): whatever the bytes, the fields used below
    have their types, so an unreadable claim counts as a dead one that is
    never re-run (no ``idempotent``), and nothing raises.
    """
    try:
        data = parse_json_object(content or b"", "claim", MAX_RECORD_BYTES)
    except InvalidFileError:
        return {}
    for key, types in _CLAIM_TYPES.items():
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, types) or (
            isinstance(value, bool) and bool not in types
        ):
            return {}
    if not all(isinstance(lock, str) for lock in data.get("locks") or ()):
        return {}
    for key in ("deadline", "claimed_at"):
        if key in data:
            try:
                if parse_iso(data[key]).tzinfo is None:
                    return {}  # a naive time cannot be compared with now
            except ValueError:
                return {}
    return data


def _approved_formula(ctx: FireContext, claim: Mapping[str, Any]) -> Formula | None:
    """Return the formula a claim was approved with, or None if it cannot be trusted to re-run.

    Re-running after an interruption uses the claim's own record: the formula as
    it was at the merge's base (``policy_commit``) and only if its bytes still
    hash to ``formula_sha256`` — never main's current version, which an admin
    may have changed since (security review SR-6).
    """
    name, base, digest = (
        claim.get("formula"),
        claim.get("policy_commit"),
        claim.get("formula_sha256"),
    )
    if (
        not isinstance(name, str)
        or not FORMULA_NAME.fullmatch(name)  # a name, before it becomes a path (I4)
        or not isinstance(base, str)
        or not isinstance(digest, str)
    ):
        return None
    try:
        snapshot = CommitSnapshot(ctx.repo, base)
        formula = load_formulas(snapshot).get(name)
        source = snapshot.read_file(f"vault/formulas/{name}.toml")
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
    data = _claim_data(snapshot.read_file(claim_path(action_id)))
    deadline = data.get("deadline")
    if deadline and parse_iso(deadline) > ctx.now:
        return  # still someone's live claim
    content = snapshot.read_file(path) or b""
    formula = _approved_formula(ctx, data)
    attempt = int(data.get("attempt", 1))
    if (
        formula is not None
        and data.get("idempotent") is True
        and attempt < MAX_ATTEMPTS
    ):
        try:
            action = parse_action(content, action_path(action_id))
        except InvalidFileError:
            action = None
        if action is not None:
            renewed = {
                **data,
                "claimed_by": ctx.claim_token,
                "claimed_at": iso(ctx.now),
                "deadline": iso(ctx.now + formula.timeout + CLAIM_GRACE),
                "attempt": attempt + 1,
            }
            plan.changes[claim_path(action_id)] = (
                json.dumps(renewed, indent=2, sort_keys=True) + "\n"
            ).encode()
            plan.claims.append(Claim(action, formula, renewed))
            plan.decisions.append(
                Decision(
                    f"action:{action_id}",
                    "reclaimed",
                    f"idempotent; attempt {attempt + 1}",
                )
            )
            return
    fields = {
        k: data[k]
        for k in (
            "tier",
            "policy_commit",
            "pr",
            "proposer",
            "approver",
            "head_commit",
            "merge_commit",
            "formula",
            "formula_sha256",
        )
        if k in data
    }
    record = ResultRecord(
        id=action_id,
        outcome=Outcome.INTERRUPTED,
        reason="claim-expired",
        detail=f"claimed by {data.get('claimed_by', 'unknown')} at {data.get('claimed_at', 'unknown')}; no result by {deadline or 'its deadline'}",
        reasons=tuple(data.get("reasons", ())),
        action_sha256=sha256(content),
        dispatcher=ctx.identity,
        attempt=attempt,
        **fields,
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
    claims: list[Claim],
    max_concurrency: int,
    checkpoint: Callable[[str], None],
) -> list[RunResult | None]:
    """Run *claims* in a bounded pool, first claimed first started; results in claim order.

    A claim whose execution raised (a runner that broke its contract) has no
    result (None): it stays claimed on main and is recovered after its
    deadline like a crash, while the other claims' results are recorded (I5).
    """

    def run(claim: Claim) -> RunResult:
        metadata = (("VAULT_PR", str(claim.pr)),) if claim.pr is not None else ()
        return runner.execute(execution_request(claim.action, claim.formula, metadata))

    def isolated(claim: Claim) -> RunResult | None:
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
    claims: list[Claim],
    results: list[RunResult | None],
    identity: str,
    now: datetime,
) -> tuple[dict[str, bytes | None], list[tuple[Claim, ResultRecord]]]:
    """Return the changes recording *results* on top of *snapshot*, for claims still ours there.

    A None result (the execution raised) is not recorded: the claim stays.
    """
    changes: dict[str, bytes | None] = {}
    recorded: list[tuple[Claim, ResultRecord]] = []
    for claim, result in zip(claims, results, strict=True):
        if result is None:
            continue
        action_id = claim.action.id
        current = _claim_data(snapshot.read_file(claim_path(action_id)))
        content = snapshot.read_file(running_path(action_id))
        if content is None or current.get("claimed_by") != claim.data["claimed_by"]:
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


def _result_record(claim: Claim, result: RunResult, identity: str) -> ResultRecord:
    data = claim.data
    record = ResultRecord(
        id=claim.action.id,
        outcome=Outcome(result.outcome),
        reason=result.reason,
        tier=data.get("tier"),
        reasons=tuple(data.get("reasons", ())),
        action_sha256=data.get("action_sha256"),
        policy_commit=data.get("policy_commit"),
        formula=data.get("formula"),
        formula_sha256=data.get("formula_sha256"),
        pr=data.get("pr"),
        proposer=data.get("proposer"),
        approver=data.get("approver"),
        head_commit=data.get("head_commit"),
        merge_commit=data.get("merge_commit"),
        dispatcher=identity,
        started_at=iso(datetime.fromtimestamp(result.started_at, UTC)),
        ended_at=iso(datetime.fromtimestamp(result.ended_at, UTC)),
        exit_code=result.exit_code,
        output_tail=result.output_tail,
        detail=f"failed at step {result.failed_step!r}" if result.failed_step else "",
        attempt=int(data.get("attempt", 1)),
        sandbox=result.sandbox or None,
    )
    return record
