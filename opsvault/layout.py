"""Where everything lives in an ops repo: paths, record families, proposal branches (pure).

The one place that knows the ops repo's layout (docs/lifecycle.md, DESIGN.md):
``vault/policy.toml``, ``vault/formulas/``, ``vault/policy-tests/``,
``vault/actions/<id>.toml`` (approved, waiting), ``vault/running/<id>.toml`` plus
``<id>.claim.json`` (claimed), ``vault/fired/YYYY/MM/<id>.toml`` plus
``<id>.result.json`` (executed or done), ``vault/rejected/YYYY/MM/...`` (refused,
rejected, expired; unmerged proposals under ``pr-<N>/``), ``vault/HALT``, and
``prerequisites.md`` at the top. Proposals arrive on ``vault/<id>`` branches
(``plan/...`` for the planner). The base branch is a setting
(``forge.branch``), never a literal: ``DEFAULT_BRANCH`` is only its default.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import PurePath, PurePosixPath

from opsvault.errors import InvalidRequestError, Problem

DEFAULT_BRANCH = "main"

VAULT = "vault"
POLICY = f"{VAULT}/policy.toml"
FORMULAS = f"{VAULT}/formulas"
POLICY_TESTS = f"{VAULT}/policy-tests"
ACTIONS = f"{VAULT}/actions"
RUNNING = f"{VAULT}/running"
FIRED = f"{VAULT}/fired"
REJECTED = f"{VAULT}/rejected"
HALT = f"{VAULT}/HALT"
PLAN = "prerequisites.md"

# Directories that hold an action id's file, in life order (the ids an ops repo uses).
RECORD_DIRS = (ACTIONS, RUNNING, FIRED, REJECTED)

PROPOSAL_PREFIX = f"{VAULT}/"
PLAN_PREFIX = "plan/"
PROPOSAL_PREFIXES = (PROPOSAL_PREFIX, PLAN_PREFIX)

# Outcomes filed under REJECTED; every other outcome is filed under FIRED.
_REJECTED_OUTCOMES = frozenset({"rejected", "expired", "refused"})

PULL_DIR = re.compile(r"pr-[1-9][0-9]{0,18}")


def file_kind(path: PurePath) -> str | None:
    """Return what file *path* is by where it sits, or None when its place says nothing.

    policy (``vault/policy.toml``), formula (in a ``formulas/`` directory),
    policy-test (in ``policy-tests/``) or action (in ``actions/``,
    ``running/``, or below ``fired/`` or ``rejected/``).
    """
    tail = "/".join(path.parts[-2:])
    if tail == POLICY:
        return "policy"
    parent = path.parent.name
    if parent == PurePosixPath(FORMULAS).name:
        return "formula"
    if parent == PurePosixPath(POLICY_TESTS).name:
        return "policy-test"
    names = {PurePosixPath(d).name for d in RECORD_DIRS}
    archives = {PurePosixPath(FIRED).name, PurePosixPath(REJECTED).name}
    if parent in names or archives & set(path.parts[:-1]):
        return "action"
    return None


def branch_ref(branch: str) -> str:
    """Return the full ref name of local *branch* (``refs/heads/<branch>``)."""
    return f"refs/heads/{branch}"


def proposal_branch(action_id: str) -> str:
    """Return the branch an action's proposal is pushed to: ``vault/<id>``."""
    return f"{PROPOSAL_PREFIX}{record_stem(action_id)}"


def formula_path(name: str) -> str:
    """Return where the ops repo's own formula *name* lives."""
    return f"{FORMULAS}/{name}.toml"


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


def pull_record_stem(number: int, action_id: str) -> str:
    """Return where the record of *action_id* from unmerged PR *number* is filed in a month folder.

    ``pr-<N>/<id>``: a directory per pull request, which no action id can
    reach (ids hold no ``/``), so no action, whatever its id, can pre-empt or
    overwrite the record of another PR's proposal (invariant I7).
    """
    return f"pr-{number}/{record_stem(action_id)}"


def archive_stem(stem: str) -> str:
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


def archive_family(outcome: str) -> str:
    """Return the directory family an *outcome* ("succeeded", "expired"...) is archived under."""
    return REJECTED if outcome in _REJECTED_OUTCOMES else FIRED


def archive_dir(outcome: str, when: datetime) -> str:
    """Return the month folder an *outcome* recorded at *when* is filed in."""
    return f"{archive_family(outcome)}/{when:%Y}/{when:%m}"


def archive_paths(outcome: str, stem: str, when: datetime) -> tuple[str, str]:
    """Return (action file path, result path) for an outcome recorded at *when*.

    *stem* is an id, or ``pull_record_stem``'s ``pr-<N>/<id>``.
    """
    archive_stem(stem)
    folder = archive_dir(outcome, when)
    return f"{folder}/{stem}.toml", f"{folder}/{stem}.result.json"
