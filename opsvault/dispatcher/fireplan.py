"""What one fire-phase plan holds: the commit's changes, the claims, decisions and alerts.

``fire.plan_fire`` builds it (with ``claims`` and ``recovery``), ``halt.plan_halt``
builds the plan that answers a merge mismatch, and the tick pushes it.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from opsvault.dispatcher.integrity import MergeMismatch
from opsvault.dispatcher.provenance import Provenance
from opsvault.dispatcher.reasons import ReasonCode
from opsvault.dispatcher.records import (
    ClaimRecord,
    ResultRecord,
    archive_paths,
    render_record,
)
from opsvault.dispatcher.report import Decision
from opsvault.git.base import OpsRepo
from opsvault.layout import DEFAULT_BRANCH
from opsvault.policy.freeze import Freeze
from opsvault.ports import Forge, Runner
from opsvault.vault.formula import Formula
from opsvault.vault.request import Action


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
    # (event, text) for admins
    alerts: list[tuple[str, str]] = field(default_factory=list)
    # (pr, action id, comment)
    results: list[tuple[int, str, str]] = field(default_factory=list)
    # is this path on main
    exists: Callable[[str], bool] = field(default=lambda path: False)
    mismatches: list[MergeMismatch] = field(default_factory=list)
    planned_at: datetime | None = None  # the time claims made in this plan count from


@dataclass(slots=True)
class Introductions:
    """The commits that introduced waiting actions, found this tick on *main* (ADR 0022).

    Main only grows within a tick (claims, results, other replicas' commits),
    so a later round walks only the commits added since *main*.
    """

    main: str | None = None
    found: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FireContext:
    repo: OpsRepo
    forge: Forge
    runner: Runner
    identity: str
    # unique per tick and process: tells our claims from another replica's
    claim_token: str
    now: datetime
    queue_limit: int
    known_merges: MutableMapping[str, int] = field(hash=False)
    max_concurrency: int = 1
    branch: str = DEFAULT_BRANCH  # the base branch (settings: [forge] branch)
    # [[freeze]] windows of the policy on main at this tick (not the merge's base:
    # a freeze merged after an approval still holds the action)
    freezes: tuple[Freeze, ...] = ()
    # the fire rounds (ADR 0022): claims earlier rounds of this tick made, and
    # how many this round may make (None: no round cap, as in a dry run)
    queued: int = 0
    round_slots: int | None = None
    # how long this round's claims may wait for the batch running before them
    waits: timedelta = timedelta(0)
    # provenance established this tick, by (action path, introducing commit,
    # the action's blob on main): every round and re-plan of one tick judges an
    # action on the same forge answers, as one plan did before rounds (ADR 0022)
    introductions: Introductions = field(default_factory=Introductions, hash=False)
    established: MutableMapping[
        tuple[str, str, str | None], Provenance | ReasonCode | MergeMismatch
    ] = field(default_factory=dict, hash=False)


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
