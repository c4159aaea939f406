"""Claims: decide about each action waiting on main, and write the claim of those that fire.

For each ``vault/actions/<id>.toml`` the shell gathers the facts (provenance,
the action parsed and assessed at the merge's base, the locks held), the pure
``state.decide_action`` decides, and this module applies the decision to the
plan: a refusal, expiry or done record in the archive, or a move to
``vault/running/`` with ``<id>.claim.json`` beside it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from opsvault.dispatcher.execution import lock_keys
from opsvault.dispatcher.fireplan import Claimed, FireContext, FirePlan, archive
from opsvault.dispatcher.integrity import MergeMismatch
from opsvault.dispatcher.provenance import Provenance, establish
from opsvault.dispatcher.reasons import ReasonCode
from opsvault.dispatcher.records import (
    ClaimRecord,
    Outcome,
    RecordOrigin,
    parse_claim,
    render_claim,
    sha256,
)
from opsvault.dispatcher.report import Decision
from opsvault.dispatcher.state import (
    ActionFacts,
    Claim,
    Defer,
    Done,
    Expire,
    Refuse,
    approval_rule,
    decide_action,
)
from opsvault.errors import InvalidFileError
from opsvault.git.base import OpsRepo
from opsvault.layout import claim_path, formula_path, running_path
from opsvault.policy.assess import assess_action
from opsvault.policy.freeze import frozen_at
from opsvault.snapshot import CommitSnapshot
from opsvault.timefmt import render_iso
from opsvault.vault.formula import Formula
from opsvault.vault.request import Action, parse_action

# Beyond the formula timeout before a claim counts as stale.
CLAIM_GRACE = timedelta(minutes=5)


def plan_action(
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
    queue_full = _queued(ctx, plan) >= ctx.queue_limit or _round_full(ctx, plan)
    # A full queue is decided before any provenance work: deferring costs nothing.
    found = None if queue_full else _establish(ctx, main, path, introduced)
    if isinstance(found, MergeMismatch):
        plan.mismatches.append(found)  # the whole plan becomes a HALT: nothing fires
        return
    prov = found if isinstance(found, Provenance) else None
    action, formula, facts = _action_facts(ctx, path, content, plan, held, found)
    origin = record_origin(prov, action_id, content, ctx.identity, ctx.repo)
    match decide_action(facts):
        case Defer(detail):
            plan.decisions.append(Decision(subject, "deferred", detail))
        case Refuse(reason, detail):
            record = origin.result(Outcome.REFUSED, reason, detail)
            archive(plan, path, action_id, content, record, ctx.now)
            plan.decisions.append(Decision(subject, "refused", f"{reason}: {detail}"))
            plan.alerts.append(
                ("refused", f"{action_id} was refused: {reason} ({detail})")
            )
        case Expire(detail):
            assert action is not None and action.expires is not None
            record = origin.result(
                Outcome.EXPIRED, ReasonCode.EXPIRES_PASSED, action.expires.isoformat()
            )
            archive(plan, path, action_id, content, record, ctx.now)
            plan.decisions.append(Decision(subject, "expired", detail))
        case Done(detail):
            assert prov is not None
            record = origin.result(
                Outcome.DONE,
                ReasonCode.HUMAN_REQUEST_MERGED,
                "an eligible admin merged the request: the work is done",
                started_at=render_iso(ctx.now),
                ended_at=render_iso(ctx.now),
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
            claim = claim_record(ctx, prov.base_commit, formula, origin, locks)
            _add_claim(plan, path, content, Claimed(action, formula, claim))
            plan.decisions.append(Decision(subject, "claimed", detail))


def _establish(
    ctx: FireContext, main: str, path: str, introduced: dict[str, str]
) -> Provenance | ReasonCode | MergeMismatch:
    """Return the action's provenance, established once per tick (``FireContext.established``)."""
    commit = introduced.get(path)
    key = (path, commit or "", ctx.repo.blob_id(main, path))
    if commit is not None and key in ctx.established:
        return ctx.established[key]
    found = establish(
        ctx.repo,
        ctx.forge,
        main,
        path,
        ctx.identity,
        ctx.known_merges,
        introduced if path in introduced else None,
    )
    if commit is not None:
        ctx.established[key] = found
    return found


def _queued(ctx: FireContext, plan: FirePlan) -> int:
    """Return how many actions this tick claimed so far, over all its rounds."""
    return ctx.queued + len(plan.claims)


def _round_full(ctx: FireContext, plan: FirePlan) -> bool:
    return ctx.round_slots is not None and len(plan.claims) >= ctx.round_slots


def record_origin(
    prov: Provenance | None,
    action_id: str,
    content: bytes,
    identity: str,
    repo: OpsRepo | None = None,
) -> RecordOrigin:
    """Return what every record of this action repeats: its hash, and how it was approved.

    With *repo*, also the formula the action names as it was at the policy
    commit (its name and hash), whatever is decided: a refusal replays too.
    """
    origin = RecordOrigin(
        id=action_id, action_sha256=sha256(content), dispatcher=identity
    )
    if prov is None:
        return origin
    origin = replace(
        origin,
        tier=prov.verdict.tier.label,
        reasons=tuple(r.render() for r in prov.verdict.reasons),
        policy_commit=prov.base_commit,
        pr=prov.pull.number,
        proposer=prov.pull.author,
        approver=prov.pull.merged_by,
        head_commit=prov.head_commit,
        merge_commit=prov.introduced_by,
        approver_rule=approval_rule(prov.facts, prov.base.policy),
    )
    name = next(
        (
            a.formula
            for f in prov.verdict.files
            if (a := f.action) is not None and a.id == action_id
        ),
        None,
    )
    if repo is None or name is None or name not in prov.base.formulas:
        return origin
    source = CommitSnapshot(repo, prov.base_commit).read_file(formula_path(name))
    digest = sha256(source) if source else builtin_formula_sha(name)
    return replace(origin, formula=name, formula_sha256=digest)


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
        queued=_queued(ctx, plan),
        queue_limit=ctx.queue_limit,
        merge=found if not isinstance(found, Provenance) else None,
        held=frozenset(held),
        round_full=_round_full(ctx, plan),
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
    freeze = frozen_at(ctx.freezes, ctx.now, {formula.name})
    return action, formula, replace(facts, locks=locks, freeze=freeze)


def claim_record(
    ctx: FireContext,
    policy_commit: str,
    formula: Formula,
    origin: RecordOrigin,
    locks: tuple[str, ...],
) -> ClaimRecord:
    """Return the claim of a fresh action: ours, from now until its formula's deadline."""
    source = CommitSnapshot(ctx.repo, policy_commit).read_file(
        formula_path(formula.name)
    )
    return ClaimRecord.of(
        origin,
        formula=formula.name,
        formula_sha256=sha256(source) if source else builtin_formula_sha(formula.name),
        claimed_by=ctx.claim_token,
        claimed_at=render_iso(ctx.now),
        deadline=render_iso(ctx.now + formula.timeout + CLAIM_GRACE),
        locks=locks,
        idempotent=formula.idempotent,
    )


def builtin_formula_sha(name: str) -> str | None:
    """Return the hash of the built-in formula *name* (not in the ops repo), or None."""
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


def batch_deadline(ctx: FireContext, plan: FirePlan) -> None:
    """Give every claim of this round the deadline of the whole batch (security review SR-3).

    Results are recorded together after the batch ran, so a short action's own
    timeout says nothing about when its result reaches main. With *c* workers
    taking *n* claims of at most *T* each in order, the batch ends within
    ``ceil(n / c) * T`` of its start, which is at most ``ctx.waits`` after the
    claim (the batch running before it); one more *T* and the grace cover
    recording. Until then no other dispatcher may call a claim of this batch
    stale; ``rounds`` starts no batch that could end past it.
    """
    if not plan.claims:
        return
    deadline = render_iso(ctx.now + ctx.waits + batch_span(plan, ctx.max_concurrency))
    plan.claims[:] = [
        replace(claim, record=replace(claim.record, deadline=deadline))
        for claim in plan.claims
    ]
    for claim in plan.claims:
        plan.changes[claim_path(claim.action.id)] = render_claim(claim.record)


def batch_span(plan: FirePlan, max_concurrency: int) -> timedelta:
    """Return how long the batch of *plan* may take, from its start until its results are due."""
    longest = max(claim.formula.timeout for claim in plan.claims)
    rounds = -(-len(plan.claims) // max(1, max_concurrency)) + 1
    return longest * rounds + CLAIM_GRACE


def read_claim(content: bytes | None, where: str = "claim") -> ClaimRecord | None:
    """Return a claim record read back from main, or None when any part of it is unusable.

    Total (security invariant I5): an unreadable claim counts as a dead one
    that is never re-run (it has no ``idempotent``), and nothing raises.
    """
    try:
        return parse_claim(content or b"", where)
    except InvalidFileError:
        return None
