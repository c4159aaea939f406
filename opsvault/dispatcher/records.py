"""Where an action is in its life, and the result record written when it ends (pure).

Paths on main: ``vault/actions/<id>.toml`` (approved, waiting), ``vault/running/<id>.toml``
plus ``<id>.claim.json`` (claimed), ``vault/fired/YYYY/MM/<id>.toml`` plus
``<id>.result.json`` (executed or done), ``vault/rejected/YYYY/MM/...`` (refused,
rejected, expired). Archiving by month keeps a tick's work independent of history.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from opsvault.dispatcher.reasons import ReasonCode
from opsvault.errors import InvalidFileError, Problem
from opsvault.layout import archive_family
from opsvault.layout import archive_paths as layout_archive_paths
from opsvault.timefmt import parse_aware
from opsvault.vault.bounded import parse_json_object


def sha256(data: bytes) -> str:
    """Return the hex SHA-256 of *data*, as records hold it (``action_sha256``)."""
    return hashlib.sha256(data).hexdigest()


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"
    DONE = "done"
    REJECTED = "rejected"
    EXPIRED = "expired"
    REFUSED = "refused"

    @property
    def archive(self) -> str:
        """Return the directory family this outcome is archived under."""
        return archive_family(self)


def archive_paths(outcome: Outcome, action_id: str, when: datetime) -> tuple[str, str]:
    """Return (action file path, result path) for an outcome recorded at *when*.

    *action_id* is an id, or ``pull_record_stem``'s ``pr-<N>/<id>``.
    """
    return layout_archive_paths(outcome, action_id, when)


@dataclass(frozen=True, slots=True)
class RecordOrigin:
    """Which action a record is about and how it was approved: what its claim and result repeat.

    Built once when the dispatcher decides about an action on main
    (``claims.record_origin``); a claim carries it and its result copies it.
    """

    id: str
    action_sha256: str | None = None
    dispatcher: str | None = None
    tier: str | None = None
    reasons: tuple[str, ...] = ()
    policy_commit: str | None = None
    pr: int | None = None
    proposer: str | None = None
    approver: str | None = None
    head_commit: str | None = None
    merge_commit: str | None = None
    # The rule that made the approver eligible (``state.approval_rule``), and the
    # formula the action names as it was at the policy commit, when known.
    approver_rule: str | None = None
    formula: str | None = None
    formula_sha256: str | None = None

    def result(
        self,
        outcome: Outcome,
        reason: ReasonCode,
        detail: str = "",
        *,
        formula: str | None = None,
        formula_sha256: str | None = None,
        started_at: str | None = None,
        ended_at: str | None = None,
        exit_code: int | None = None,
        output_tail: str = "",
        attempt: int = 1,
        sandbox: str | None = None,
    ) -> ResultRecord:
        """Return the result record of the action this origin describes."""
        return ResultRecord(
            id=self.id,
            outcome=outcome,
            reason=reason,
            tier=self.tier,
            reasons=self.reasons,
            action_sha256=self.action_sha256,
            policy_commit=self.policy_commit,
            formula=formula if formula is not None else self.formula,
            formula_sha256=formula_sha256
            if formula_sha256 is not None
            else self.formula_sha256,
            pr=self.pr,
            proposer=self.proposer,
            approver=self.approver,
            head_commit=self.head_commit,
            merge_commit=self.merge_commit,
            dispatcher=self.dispatcher,
            started_at=started_at,
            ended_at=ended_at,
            exit_code=exit_code,
            output_tail=output_tail,
            detail=detail,
            attempt=attempt,
            sandbox=sandbox,
            approver_rule=self.approver_rule,
        )


@dataclass(frozen=True, slots=True)
class ResultRecord:
    """Everything DESIGN.md asks a result to hold. Times are ISO 8601 UTC strings."""

    id: str
    outcome: Outcome
    reason: ReasonCode  # see docs/lifecycle.md
    tier: str | None = None
    reasons: tuple[str, ...] = ()
    action_sha256: str | None = None
    policy_commit: str | None = None
    formula: str | None = None
    formula_sha256: str | None = None
    pr: int | None = None
    proposer: str | None = None
    approver: str | None = None
    head_commit: str | None = None
    merge_commit: str | None = None
    dispatcher: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    exit_code: int | None = None
    output_tail: str = ""
    detail: str = ""
    attempt: int = 1
    # How the steps ran: "bwrap" (sandboxed), "none" (not); None when nothing ran.
    sandbox: str | None = None
    # Who approved, by which rule (``state.approval_rule``), for the audit's replay.
    approver_rule: str | None = None
    # The record chain (ADR 0021, dispatcher/chain.py): set when committed.
    chain_prev: str | None = None
    chain_base: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, hash=False)


# Fields added after records were first written (ADR 0021): left out while unset,
# so a record written before them renders byte for byte as it is on main.
LATER_FIELDS = ("approver_rule", "chain_prev", "chain_base")


def _without_unset(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if not (k in LATER_FIELDS and v is None)}


def render_record(record: ResultRecord) -> bytes:
    """Return the record as stable, human-diffable JSON bytes."""
    data = _without_unset(asdict(record))
    data["outcome"] = str(record.outcome)
    data["reason"] = str(record.reason)
    data["reasons"] = list(record.reasons)
    return _result_json(data)


def _result_json(data: Any) -> bytes:
    """The one spelling of a result record's JSON: what render_record and redact_record write."""
    return (
        json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    ).encode()


MAX_RECORD_BYTES = 1024 * 1024

_NONE = type(None)
# What each field annotation accepts in JSON (bool is not an int here).
_ACCEPTS: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "str | None": (str, _NONE),
    "int": (int,),
    "int | None": (int, _NONE),
    "bool": (bool,),
    "Outcome": (str,),
    "ReasonCode": (str,),
    "tuple[str, ...]": (list,),
    "dict[str, Any]": (dict,),
}


def _field_problems(data: dict[str, Any], known: dict[str, str]) -> list[Problem]:
    """Return what is wrong with the types of *data*'s fields (*known*: name -> annotation)."""
    problems: list[Problem] = []
    for key, value in sorted(data.items()):
        annotation = known.get(key)
        if annotation is None:
            problems.append(Problem(f"$[{key[:64]!r}]", "unknown field"))
            continue
        accepts = _ACCEPTS.get(annotation, (object,))
        if (isinstance(value, bool) and bool not in accepts) or not isinstance(
            value, accepts
        ):
            problems.append(
                Problem(
                    f"$.{key}", f"expected {annotation}, got {type(value).__name__}"
                )
            )
        elif isinstance(value, list) and not all(isinstance(v, str) for v in value):
            problems.append(Problem(f"$.{key}", "expected an array of strings"))
    return problems


def parse_record(content: bytes, where: str = "result.json") -> ResultRecord:
    """Return the record in *content* (inverse of render_record).

    Total (security invariant I5): any bytes give a record or an
    InvalidFileError naming *where* and every field that is wrong.
    """
    data = parse_json_object(content, where, MAX_RECORD_BYTES)
    problems = _field_problems(
        data, {f.name: str(f.type) for f in fields(ResultRecord)}
    )
    for key in ("id", "outcome", "reason"):
        if key not in data:
            problems.append(Problem(f"$.{key}", "required field is missing"))
    if isinstance(data.get("outcome"), str) and data["outcome"] not in set(Outcome):
        problems.append(
            Problem("$.outcome", f"unknown outcome {data['outcome'][:64]!r}")
        )
    if isinstance(data.get("reason"), str) and data["reason"] not in set(ReasonCode):
        problems.append(
            Problem("$.reason", f"unknown reason code {data['reason'][:64]!r}")
        )
    if problems:
        raise InvalidFileError(where, problems)
    data["outcome"] = Outcome(data["outcome"])
    data["reason"] = ReasonCode(data["reason"])
    data["reasons"] = tuple(data.get("reasons", ()))
    return ResultRecord(**data)


@dataclass(frozen=True, slots=True)
class ClaimRecord:
    """What ``vault/running/<id>.claim.json`` holds while an action is claimed.

    Who claimed it and until when (``deadline``, ISO 8601 UTC), which locks it
    holds, whether it may be re-run after an interruption, and the provenance
    its result record repeats. Every field has a default so a claim lacking
    one still reads; a field of the wrong type makes the whole claim unreadable.
    """

    id: str = ""
    action_sha256: str | None = None
    dispatcher: str | None = None
    tier: str | None = None
    reasons: tuple[str, ...] = ()
    policy_commit: str | None = None
    pr: int | None = None
    proposer: str | None = None
    approver: str | None = None
    head_commit: str | None = None
    merge_commit: str | None = None
    formula: str | None = None
    formula_sha256: str | None = None
    claimed_by: str | None = None
    claimed_at: str | None = None
    deadline: str | None = None
    attempt: int = 1
    locks: tuple[str, ...] = ()
    idempotent: bool = False
    approver_rule: str | None = None
    chain_prev: str | None = None
    chain_base: str | None = None

    @classmethod
    def of(
        cls,
        origin: RecordOrigin,
        *,
        formula: str,
        formula_sha256: str | None,
        claimed_by: str,
        claimed_at: str,
        deadline: str,
        locks: tuple[str, ...],
        idempotent: bool,
        attempt: int = 1,
    ) -> ClaimRecord:
        """Return the claim of the action *origin* describes."""
        return cls(
            id=origin.id,
            action_sha256=origin.action_sha256,
            dispatcher=origin.dispatcher,
            tier=origin.tier,
            reasons=origin.reasons,
            policy_commit=origin.policy_commit,
            pr=origin.pr,
            proposer=origin.proposer,
            approver=origin.approver,
            head_commit=origin.head_commit,
            merge_commit=origin.merge_commit,
            formula=formula,
            formula_sha256=formula_sha256,
            approver_rule=origin.approver_rule,
            claimed_by=claimed_by,
            claimed_at=claimed_at,
            deadline=deadline,
            attempt=attempt,
            locks=locks,
            idempotent=idempotent,
        )

    @property
    def origin(self) -> RecordOrigin:
        """Return the provenance this claim carries, for the result that ends it."""
        return RecordOrigin(
            id=self.id,
            action_sha256=self.action_sha256,
            dispatcher=self.dispatcher,
            tier=self.tier,
            reasons=self.reasons,
            policy_commit=self.policy_commit,
            pr=self.pr,
            proposer=self.proposer,
            approver=self.approver,
            head_commit=self.head_commit,
            merge_commit=self.merge_commit,
            approver_rule=self.approver_rule,
            formula=self.formula,
            formula_sha256=self.formula_sha256,
        )


def render_claim(claim: ClaimRecord) -> bytes:
    """Return the claim as the JSON bytes written to main (every field, keys sorted)."""
    data = _without_unset(asdict(claim))
    data["reasons"] = list(claim.reasons)
    data["locks"] = list(claim.locks)
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def parse_claim(content: bytes, where: str = "claim.json") -> ClaimRecord:
    """Return the claim in *content* (inverse of render_claim).

    Total (security invariant I5): any bytes give a claim or an
    InvalidFileError naming *where* and every field that is wrong. A naive or
    unreadable time is wrong: it cannot be compared with now.
    """
    data = parse_json_object(content, where, MAX_RECORD_BYTES)
    problems = _field_problems(data, {f.name: str(f.type) for f in fields(ClaimRecord)})
    for key in ("deadline", "claimed_at"):
        value = data.get(key)
        if isinstance(value, str) and parse_aware(value) is None:
            problems.append(
                Problem(f"$.{key}", "expected an ISO 8601 time with a time zone")
            )
    if problems:
        raise InvalidFileError(where, problems)
    data["reasons"] = tuple(data.get("reasons", ()))
    data["locks"] = tuple(data.get("locks", ()))
    return ClaimRecord(**data)


def redact_record(content: bytes, redact: Callable[[str], str]) -> bytes:
    """Return a result record with every known secret value redacted in each of its strings.

    Every record the dispatcher commits passes here, whatever wrote it (step
    output, a refusal's detail, a forge error): the last line of I6.
    """
    try:
        data = json.loads(content)
    except (ValueError, RecursionError):  # not ours to parse: redact it as text
        return redact(content.decode("utf-8", "replace")).encode()

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return redact(value)
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {redact(k): clean(v) for k, v in value.items()}
        return value

    cleaned = clean(data)
    if cleaned == data:
        return content
    return _result_json(cleaned)
