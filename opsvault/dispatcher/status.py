"""What the vault is doing, read from one snapshot of main (``vault status``).

Everything here is read from the snapshot: HALT, approved actions waiting in
``vault/actions/``, claims in ``vault/running/``, and the newest result records
in ``vault/fired/`` and ``vault/rejected/``. No clock, no environment: *now* is
passed in.

History is archived by month, and only the newest month folders are read. A
snapshot lists files, not directories, so month folders are probed newest first
from the month of *now* (plus one, for clock skew between dispatchers) back at
most ``history_months``; each probe is one tree lookup, so the cost grows with the
records shown, never with the size of history.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from opsvault.dispatcher.records import ResultRecord, parse_claim, parse_record
from opsvault.errors import FileTooLargeError, InvalidFileError
from opsvault.layout import ACTIONS, FIRED, HALT, REJECTED, RUNNING, claim_path
from opsvault.policy.assess import assess_action
from opsvault.policy.classify import BaseState
from opsvault.snapshot import Snapshot
from opsvault.timefmt import parse_aware
from opsvault.vault.request import parse_action

HISTORY_MONTHS = 120


@dataclass(frozen=True, slots=True)
class WaitingAction:
    """An approved action on main that no dispatcher has claimed yet."""

    id: str
    path: str
    tier: str | None  # None when the file cannot be parsed
    formula: str | None = None
    context: str = ""
    problems: tuple[str, ...] = ()  # why a dispatcher would refuse it

    @property
    def refused(self) -> bool:
        return bool(self.problems)


@dataclass(frozen=True, slots=True)
class RunningAction:
    """A claimed action; ``stale`` when its claim's deadline lies before *now*."""

    id: str
    path: str
    dispatcher: str | None = None
    claimed_at: str | None = None
    deadline: str | None = None
    stale: bool = False
    problem: str = ""  # the claim file is missing or unreadable


@dataclass(frozen=True, slots=True)
class FinishedAction:
    """One result record from ``vault/fired`` or ``vault/rejected``."""

    id: str
    path: str  # the result record (or the action file when the record is missing)
    outcome: str | None
    reason: str = ""
    tier: str | None = None
    proposer: str | None = None
    approver: str | None = None
    dispatcher: str | None = None
    pr: int | None = None
    started_at: str | None = None
    ended_at: str | None = None
    problem: str = ""
    sandbox: str | None = None  # "bwrap", "none"; None when no step ran


@dataclass(frozen=True, slots=True)
class PendingProposal:
    """A proposal branch (local mode) not merged into main, with the tier of its change."""

    branch: str
    head: str
    tier: str | None
    refused: bool = False
    action_ids: tuple[str, ...] = ()
    problem: str = ""


@dataclass(frozen=True, slots=True)
class Status:
    source: str  # what was read: a directory or a commit id
    halted: bool
    halt_note: str = ""
    waiting: tuple[WaitingAction, ...] = ()
    running: tuple[RunningAction, ...] = ()
    recent: tuple[FinishedAction, ...] = ()
    proposals: tuple[PendingProposal, ...] = ()
    # Whether steps run sandboxed (I6): None when unknown, with a one-line note
    # from the newest executed record or the dispatcher's own start-up state.
    sandboxed: bool | None = None
    sandbox_note: str = ""


def collect_status(
    snapshot: Snapshot,
    base_state: BaseState,
    now: datetime,
    recent: int = 20,
    *,
    history_months: int = HISTORY_MONTHS,
) -> Status:
    """Return the vault's state in *snapshot* at *now*.

    Waiting actions are classified against *base_state* (the snapshot's own
    policy and formulas, as the dispatcher would). At most *recent* finished
    records are returned, newest first by end time. Never raises for a
    malformed record or claim: the entry carries the problem instead.
    """
    try:
        halt = snapshot.read_file(HALT)
    except FileTooLargeError:
        halt = b"(HALT is too large to show)"
    finished = tuple(recent_records(snapshot, now, max(recent, 20), history_months))
    sandboxed, note = sandbox_from_records(finished)
    return Status(
        source=snapshot.label,
        halted=halt is not None,
        halt_note=_first_line(halt) if halt is not None else "",
        waiting=tuple(_waiting(snapshot, base_state, now)),
        running=tuple(_running(snapshot, now)),
        recent=finished[:recent],
        sandboxed=sandboxed,
        sandbox_note=note,
    )


def sandbox_from_records(
    finished: Iterable[FinishedAction],
) -> tuple[bool | None, str]:
    """Return whether the newest executed action ran sandboxed, and a line saying so."""
    for entry in finished:  # newest first
        if entry.sandbox == "none":
            return False, (
                f"steps are NOT sandboxed: the newest executed action ({entry.id}, "
                f"{entry.ended_at or '?'}) ran without bubblewrap"
            )
        if entry.sandbox is not None:
            return True, (
                f"steps run sandboxed ({entry.sandbox}; newest executed action "
                f"{entry.id})"
            )
    return None, ""


def _first_line(content: bytes) -> str:
    text = content.decode("utf-8", errors="replace").strip()
    return text.splitlines()[0] if text else ""


def _ids(files: Iterable[str], directory: str) -> list[tuple[str, str]]:
    """Return (id, path) of the ``<id>.toml`` files directly in *directory*."""
    found = []
    for path in files:
        name = path.removeprefix(directory + "/")
        if "/" not in name and name.endswith(".toml"):
            found.append((name.removesuffix(".toml"), path))
    return found


def _waiting(snapshot: Snapshot, base: BaseState, now: datetime) -> list[WaitingAction]:
    waiting = []
    for action_id, path in _ids(snapshot.list_files(ACTIONS), ACTIONS):
        content = snapshot.read_file(path) or b""
        try:
            action = parse_action(content, path)
        except InvalidFileError as exc:
            waiting.append(
                WaitingAction(
                    action_id,
                    path,
                    None,
                    problems=tuple(f"{p.path}: {p.message}" for p in exc.problems),
                )
            )
            continue
        assessment = assess_action(action, base.formulas, base.policy, now)
        waiting.append(
            WaitingAction(
                action_id,
                path,
                assessment.classification.tier.label,
                action.formula,
                action.context,
                tuple(f"{p.path}: {p.message}" for p in assessment.problems),
            )
        )
    return waiting


def _running(snapshot: Snapshot, now: datetime) -> list[RunningAction]:
    running = []
    for action_id, path in _ids(snapshot.list_files(RUNNING), RUNNING):
        claim_file = claim_path(action_id)
        raw = snapshot.read_file(claim_file)
        if raw is None:
            running.append(RunningAction(action_id, path, problem="no claim file"))
            continue
        try:
            claim = parse_claim(raw, claim_file)
        except InvalidFileError:
            # The dispatcher reads it the same way (claims.read_claim): a dead claim.
            running.append(
                RunningAction(action_id, path, problem="unreadable claim file")
            )
            continue
        when = parse_aware(claim.deadline) if claim.deadline else None
        running.append(
            RunningAction(
                action_id,
                path,
                dispatcher=claim.dispatcher or None,
                claimed_at=claim.claimed_at or None,
                deadline=claim.deadline or None,
                stale=when is not None and when < now,
            )
        )
    return running


def recent_records(
    snapshot: Snapshot,
    now: datetime,
    limit: int = 20,
    history_months: int = HISTORY_MONTHS,
) -> list[FinishedAction]:
    """Return up to *limit* result records, newest first, reading month folders newest first.

    Stops at the first month that brings the count to *limit*; a month is read
    whole so that its records can be ordered by end time.
    """
    if limit <= 0:
        return []
    found: list[FinishedAction] = []
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    for _ in range(history_months + 1):
        batch = [
            entry
            for family in (FIRED, REJECTED)
            for entry in _month(snapshot, f"{family}/{year:04d}/{month:02d}")
        ]
        batch.sort(key=lambda e: (e.ended_at or e.started_at or "", e.id), reverse=True)
        found.extend(batch)
        if len(found) >= limit:
            break
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return found[:limit]


def _month(snapshot: Snapshot, folder: str) -> list[FinishedAction]:
    files = snapshot.list_files(folder)
    present = set(files)
    entries = []
    for action_id, path in _ids(files, folder):
        result_path = f"{folder}/{action_id}.result.json"
        if result_path not in present:
            entries.append(
                FinishedAction(action_id, path, None, problem="no result record")
            )
            continue
        entries.append(
            _finished(action_id, result_path, snapshot.read_file(result_path))
        )
    # Records of unmerged PRs: pr-<N>/<id>.result.json (records.pull_record_stem).
    for path in files:
        pull, _, name = path.removeprefix(folder + "/").partition("/")
        if pull.startswith("pr-") and name.endswith(".result.json") and "/" not in name:
            action_id = name.removesuffix(".result.json")
            entries.append(_finished(action_id, path, snapshot.read_file(path)))
    return entries


def _finished(action_id: str, path: str, raw: bytes | None) -> FinishedAction:
    try:
        record: ResultRecord = parse_record(raw or b"", path)
    except InvalidFileError:
        return FinishedAction(action_id, path, None, problem="unreadable result record")
    return FinishedAction(
        record.id,
        path,
        str(record.outcome),
        reason=record.reason,
        tier=record.tier,
        proposer=record.proposer,
        approver=record.approver,
        dispatcher=record.dispatcher,
        pr=record.pr,
        started_at=record.started_at,
        ended_at=record.ended_at,
        sandbox=record.sandbox,
    )
