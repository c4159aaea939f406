"""Recovery: what becomes of a claim a dead dispatcher left behind in ``vault/running/``.

Once a claim's deadline passed without a result, it is recorded as
``interrupted`` — or, for an idempotent formula still approved exactly as it
was (SR-6), claimed again for another attempt. Never executed a second time
otherwise.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from opsvault.dispatcher.claims import CLAIM_GRACE, builtin_formula_sha, read_claim
from opsvault.dispatcher.fireplan import Claimed, FireContext, FirePlan, archive
from opsvault.dispatcher.reasons import ReasonCode
from opsvault.dispatcher.records import ClaimRecord, Outcome, render_claim, sha256
from opsvault.dispatcher.report import Decision
from opsvault.errors import InvalidFileError, OpsvaultError
from opsvault.layout import RUNNING, action_path, claim_path, formula_path
from opsvault.snapshot import CommitSnapshot, load_formulas
from opsvault.timefmt import parse_iso, render_iso
from opsvault.vault.formula import FORMULA_NAME, Formula
from opsvault.vault.request import parse_action

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # executions of an idempotent action across interruptions


def plan_recovery(ctx: FireContext, snapshot: CommitSnapshot, plan: FirePlan) -> None:
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
    formula = approved_formula(ctx, claim)
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
    origin = replace(
        claim.origin,
        id=action_id,
        action_sha256=sha256(content),
        dispatcher=ctx.identity,
    )
    record = origin.result(
        Outcome.INTERRUPTED,
        ReasonCode.CLAIM_EXPIRED,
        f"claimed by {claim.claimed_by or 'unknown'} at "
        f"{claim.claimed_at or 'unknown'}; no result by {deadline or 'its deadline'}",
        formula=claim.formula,
        formula_sha256=claim.formula_sha256,
        attempt=claim.attempt,
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


def approved_formula(ctx: FireContext, claim: ClaimRecord) -> Formula | None:
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
    actual = sha256(source) if source is not None else builtin_formula_sha(name)
    return formula if formula is not None and actual == digest else None
