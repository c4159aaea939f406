"""Bring a plan in line with issue and vault facts (pure).

What the updater may change, and nothing else (docs/planner.md):

* an item's box: checked when every issue it references is closed; unchecked
  only when an issue it references was reopened, which the file shows as a
  ``— closed`` annotation on an issue that is open again;
* ``— open`` / ``— closed`` annotation words, to the state of their issue;
* ``blocked-on-vault`` markers whose vault action fired or whose path is gone
  (see :func:`judge_marker`);
* an objective's ``Status:`` word, when the facts contradict it;
* the ``Last updated`` date, only when something else changed.

Issues absent from the mapping are unknown: they never cause a change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from enum import StrEnum

from opsvault.planner.model import (
    Change,
    DateLine,
    EditKind,
    IssueRef,
    IssueState,
    ItemLine,
    Line,
    Objective,
    Plan,
    StatusLine,
    StatusWord,
    VaultFacts,
    VaultMarker,
    VaultState,
    join_refs,
    objectives,
)
from opsvault.planner.render import (
    item_annotations,
    with_annotations,
    with_checked,
    with_date,
    with_status,
    without_markers,
)


class MarkerVerdict(StrEnum):
    """What the vault says about one ``blocked-on-vault`` marker."""

    FIRED = "fired"  # cleared: the action ran
    GONE = "gone"  # cleared: the path is gone and the action is not pending or running
    WAITING = "waiting"  # kept: the action is pending or running, or the path exists
    REJECTED = "rejected"  # kept: a person must re-propose or drop it
    UNKNOWN = (
        "unknown"  # kept: an id the vault has never seen (maybe an unmerged proposal)
    )
    NO_TARGET = "no-target"  # kept: nothing to verify, so never guess

    @property
    def clears(self) -> bool:
        return self in (MarkerVerdict.FIRED, MarkerVerdict.GONE)


def judge_marker(marker: VaultMarker, vault: VaultFacts) -> MarkerVerdict:
    """Return the verdict on *marker*; only FIRED and GONE clear it.

    A path target (``vault/actions/x.toml``, ``vault/pending/x.md``) names the
    action by its file stem; a bare target is the action id. The action's state
    decides first (fired clears; pending or running keeps; rejected keeps), then,
    for a path, whether the path still exists. A bare id the vault does not know
    is kept: it may be a proposal that has not been merged yet.
    """
    action_id = marker.action_id
    if marker.target is None or action_id is None:
        return MarkerVerdict.NO_TARGET
    state = vault.state_of(action_id)
    if state is VaultState.FIRED:
        return MarkerVerdict.FIRED
    if state in (VaultState.PENDING, VaultState.RUNNING):
        return MarkerVerdict.WAITING
    if state is VaultState.REJECTED:
        return MarkerVerdict.REJECTED
    if marker.is_path:
        return (
            MarkerVerdict.WAITING
            if marker.target in vault.existing_paths
            else MarkerVerdict.GONE
        )
    return MarkerVerdict.UNKNOWN


def update_plan(
    plan: Plan, issues: Mapping[IssueRef, IssueState], vault: VaultFacts, today: date
) -> tuple[Plan, tuple[Change, ...]]:
    """Return *plan* brought in line with *issues* and *vault*, and the changes made.

    Only items, annotations, markers, statuses and the first ``Last updated``
    line change; no line is added or removed, so line numbers stay valid. The
    date moves to *today* only if something else changed. Idempotent:
    ``update_plan(update_plan(p)...)`` changes nothing more.
    """
    updated, changes = apply_facts(plan, issues, vault)
    if not changes:
        return plan, ()
    lines = list(updated.lines)
    for index, line in enumerate(lines):
        if isinstance(line, DateLine):
            new = with_date(line, today)
            if new != line:
                lines[index] = new
                changes += (
                    Change(
                        index + 1,
                        EditKind.DATE,
                        f"last updated {line.date} → {new.date}",
                    ),
                )
            break
    return Plan(tuple(lines)), tuple(sorted(changes, key=lambda change: change.line))


def apply_facts(
    plan: Plan, issues: Mapping[IssueRef, IssueState], vault: VaultFacts
) -> tuple[Plan, tuple[Change, ...]]:
    """Return :func:`update_plan` without the date bump (what ``check_plan`` compares)."""
    lines: list[Line] = list(plan.lines)
    changes: list[Change] = []
    cleared: set[int] = set()
    for index, line in enumerate(lines):
        if isinstance(line, ItemLine):
            new, item_changes = _update_item(index + 1, line, issues, vault)
            lines[index] = new
            changes.extend(item_changes)
            if any(change.kind is EditKind.MARKER for change in item_changes):
                cleared.add(index + 1)
    plan = Plan(tuple(lines))
    for objective in objectives(plan):
        change = _update_status(plan, objective, cleared)
        if change is not None:
            number, new_status, reason = change
            lines[number - 1] = new_status
            changes.append(Change(number, EditKind.STATUS, reason))
    changes.sort(key=lambda change: change.line)
    return replace(plan, lines=tuple(lines)), tuple(changes)


def _update_item(
    number: int,
    line: ItemLine,
    issues: Mapping[IssueRef, IssueState],
    vault: VaultFacts,
) -> tuple[ItemLine, list[Change]]:
    # Removing a marker can reshape the text around it (a reference or another
    # marker may appear or vanish), so repeat until a pass changes nothing: that
    # is what makes the update idempotent. Only marker removals (which shorten
    # the text) can make a further pass do work, so this bound always suffices.
    changes: list[Change] = []
    for _ in range(2 * len(line.text) + 3):
        line, step = _update_item_once(number, line, issues, vault)
        if not step:
            break
        changes.extend(step)
    return line, changes


def _update_item_once(
    number: int,
    line: ItemLine,
    issues: Mapping[IssueRef, IssueState],
    vault: VaultFacts,
) -> tuple[ItemLine, list[Change]]:
    states = {ref: issues[ref] for ref in line.refs if ref in issues}
    changes: list[Change] = []
    new = line
    if line.checked:
        annotated_closed = {
            ref for ref, words in item_annotations(line) if "closed" in words
        }
        reopened = [
            ref
            for ref in line.refs
            if ref in annotated_closed and states.get(ref) is IssueState.OPEN
        ]
        if reopened:
            new = with_checked(new, False)
            changes.append(
                Change(
                    number,
                    EditKind.UNCHECK,
                    f"unchecked: {join_refs(reopened)} reopened",
                )
            )
    elif line.refs and all(states.get(ref) is IssueState.CLOSED for ref in line.refs):
        new = with_checked(new, True)
        changes.append(
            Change(number, EditKind.CHECK, f"checked: {join_refs(line.refs)} closed")
        )

    annotated = with_annotations(new, states)
    if annotated != new:
        pairs = zip(item_annotations(new), item_annotations(annotated), strict=True)
        moved = [
            f"{ref} {_state_word(old)} → {states[ref]}"
            for (ref, old), (_, words) in pairs
            if old != words
        ]
        changes.append(
            Change(number, EditKind.ANNOTATION, "annotation " + ", ".join(moved))
        )
        new = annotated

    verdicts = [judge_marker(marker, vault) for marker in new.markers]
    clear = [i for i, verdict in enumerate(verdicts) if verdict.clears]
    for i in clear:
        changes.append(
            Change(
                number,
                EditKind.MARKER,
                "cleared blocked-on-vault: "
                + marker_reason(new.markers[i], verdicts[i]),
            )
        )
    return without_markers(new, clear), changes


def _state_word(words: tuple[str, ...]) -> str:
    return next((word for word in words if word in ("open", "closed")), "?")


def marker_reason(marker: VaultMarker, verdict: MarkerVerdict) -> str:
    """Return why *verdict* holds for *marker*, in words."""
    target = marker.target
    action = repr(marker.action_id)
    reasons = {
        MarkerVerdict.FIRED: f"vault action {action} fired",
        MarkerVerdict.GONE: f"{target} is gone and action {action} is not pending or running",
        MarkerVerdict.WAITING: f"vault action {action} is still pending or running",
        MarkerVerdict.REJECTED: f"vault action {action} was rejected",
        MarkerVerdict.UNKNOWN: f"no vault action {action} (not pending, running, fired or rejected)",
        MarkerVerdict.NO_TARGET: "no target to verify",
    }
    return reasons[verdict]


def open_items_phrase(numbers: list[int]) -> str:
    """Return ``open item on line 5`` or ``open items on lines 5, 9``."""
    plural = "s" if len(numbers) > 1 else ""
    return f"open item{plural} on line{plural} " + ", ".join(str(n) for n in numbers)


def _update_status(
    plan: Plan, objective: Objective, cleared: set[int]
) -> tuple[int, StatusLine, str] | None:
    number = objective.status
    if number is None or not objective.items:
        return None
    status = plan.line(number)
    assert isinstance(status, StatusLine)
    if status.word is None:
        return None  # not a word the planner understands: a person's text, kept
    items = [(n, plan.line(n)) for n in objective.items]
    open_items = [
        n for n, item in items if isinstance(item, ItemLine) and not item.checked
    ]
    blocked = [
        n
        for n, item in items
        if isinstance(item, ItemLine) and not item.checked and item.markers
    ]
    word = status.word
    if not open_items:
        target, why = StatusWord.DONE, "every item checked"
    elif blocked:
        target, why = (
            StatusWord.BLOCKED,
            f"open item on line {blocked[0]} is blocked on the vault",
        )
    elif word is StatusWord.DONE:
        target, why = StatusWord.IN_PROGRESS, open_items_phrase(open_items)
    elif word is StatusWord.BLOCKED and cleared.intersection(objective.items):
        target, why = StatusWord.IN_PROGRESS, "last vault marker cleared"
    else:
        return None
    if target is word:
        return None
    return number, with_status(status, target), f"status {word} → {target}: {why}"
