"""Where an action is in its life, and the result record written when it ends (pure).

Paths on main: ``vault/actions/<id>.toml`` (approved, waiting), ``vault/running/<id>.toml``
plus ``<id>.claim.json`` (claimed), ``vault/fired/YYYY/MM/<id>.toml`` plus
``<id>.result.json`` (executed or done), ``vault/rejected/YYYY/MM/...`` (refused,
rejected, expired). Archiving by month keeps a tick's work independent of history.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from opsvault.errors import InvalidFileError, InvalidRequestError, Problem
from opsvault.vault.bounded import parse_json_object

ACTIONS = "vault/actions"
RUNNING = "vault/running"
FIRED = "vault/fired"
REJECTED = "vault/rejected"
HALT = "vault/HALT"


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
        if self in (Outcome.REJECTED, Outcome.EXPIRED, Outcome.REFUSED):
            return REJECTED
        return FIRED


def record_stem(action_id: str) -> str:
    """Return *action_id* if it can name a record file; raise InvalidRequestError if not.

    Every record path is built from an id through here (security invariant I4):
    one path component, never empty, ``.``, ``..``, or holding ``/`` or NUL.
    Ids proposers write are checked as ids (``id_problems``) long before; a
    name listed from a git tree always passes.
    """
    if action_id in ("", ".", "..") or "/" in action_id or "\0" in action_id:
        raise InvalidRequestError(
            repr(action_id),
            [Problem("$", "not an id; a record path needs a file name")],
        )
    return action_id


def action_path(action_id: str) -> str:
    return f"{ACTIONS}/{record_stem(action_id)}.toml"


def running_path(action_id: str) -> str:
    return f"{RUNNING}/{record_stem(action_id)}.toml"


def claim_path(action_id: str) -> str:
    return f"{RUNNING}/{record_stem(action_id)}.claim.json"


PULL_DIR = re.compile(r"pr-[1-9][0-9]{0,18}")


def pull_record_stem(number: int, action_id: str) -> str:
    """Return where the record of *action_id* from unmerged PR *number* is filed in a month folder.

    ``pr-<N>/<id>``: a directory per pull request, which no action id can
    reach (ids hold no ``/``), so no action, whatever its id, can pre-empt or
    overwrite the record of another PR's proposal (invariant I7).
    """
    return f"pr-{number}/{record_stem(action_id)}"


def _archive_stem(stem: str) -> str:
    """Return *stem* if it names an archive record: ``<id>`` or ``pr-<N>/<id>``."""
    pull, sep, rest = stem.partition("/")
    if not sep:
        return record_stem(stem)
    if not PULL_DIR.fullmatch(pull):
        raise InvalidRequestError(
            repr(stem),
            [Problem("$", "not an id, nor pr-<N>/<id>; a record path needs one")],
        )
    record_stem(rest)
    return stem


def archive_paths(outcome: Outcome, action_id: str, when: datetime) -> tuple[str, str]:
    """Return (action file path, result path) for an outcome recorded at *when*.

    *action_id* is an id, or ``pull_record_stem``'s ``pr-<N>/<id>``.
    """
    _archive_stem(action_id)
    folder = f"{outcome.archive}/{when:%Y}/{when:%m}"
    return f"{folder}/{action_id}.toml", f"{folder}/{action_id}.result.json"


@dataclass(frozen=True, slots=True)
class ResultRecord:
    """Everything DESIGN.md asks a result to hold. Times are ISO 8601 UTC strings."""

    id: str
    outcome: Outcome
    reason: str  # reason code, see docs/lifecycle.md
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
    extra: dict[str, Any] = field(default_factory=dict, hash=False)


def render_record(record: ResultRecord) -> bytes:
    """Return the record as stable, human-diffable JSON bytes."""
    data = asdict(record)
    data["outcome"] = str(record.outcome)
    data["reasons"] = list(record.reasons)
    return (
        json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    ).encode()


MAX_RECORD_BYTES = 1024 * 1024

_NONE = type(None)
# What each annotation of ResultRecord accepts in JSON (bool is not an int here).
_ACCEPTS: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "str | None": (str, _NONE),
    "int": (int,),
    "int | None": (int, _NONE),
    "Outcome": (str,),
    "tuple[str, ...]": (list,),
    "dict[str, Any]": (dict,),
}


def parse_record(content: bytes, where: str = "result.json") -> ResultRecord:
    """Return the record in *content* (inverse of render_record).

    Total (security invariant I5): any bytes give a record or an
    InvalidFileError naming *where* and every field that is wrong.
    """
    data = parse_json_object(content, where, MAX_RECORD_BYTES)
    problems: list[Problem] = []
    known = {f.name: str(f.type) for f in fields(ResultRecord)}
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
    for key in ("id", "outcome", "reason"):
        if key not in data:
            problems.append(Problem(f"$.{key}", "required field is missing"))
    if isinstance(data.get("outcome"), str) and data["outcome"] not in set(Outcome):
        problems.append(
            Problem("$.outcome", f"unknown outcome {data['outcome'][:64]!r}")
        )
    reasons = data.get("reasons", [])
    if isinstance(reasons, list) and not all(isinstance(r, str) for r in reasons):
        problems.append(Problem("$.reasons", "expected an array of strings"))
    if problems:
        raise InvalidFileError(where, problems)
    data["outcome"] = Outcome(data["outcome"])
    data["reasons"] = tuple(reasons)
    return ResultRecord(**data)


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
    return (
        json.dumps(cleaned, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    ).encode()
