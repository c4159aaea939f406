"""What one tick decided and did, for people (text) and scripts (JSON)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opsvault.layout import PROPOSAL_PREFIX


@dataclass(frozen=True, slots=True)
class Decision:
    subject: str  # "pr#12", "action:<id>", or the base branch (forge.branch)
    event: str  # e.g. "classified", "merged", "notified", "claimed", "fired", "refused", "expired"
    detail: str = ""


@dataclass(frozen=True, slots=True)
class TickReport:
    started_at: str
    ended_at: str
    main_before: str | None
    main_after: str | None
    halted: bool
    dry_run: bool
    decisions: tuple[Decision, ...]
    errors: tuple[str, ...] = ()
    forge_requests: int = 0
    commits: int = 0
    unavailable: bool = False  # an error was the forge being unreachable
    merges: int = 0  # merge commits the tick made on the forge (not in ``commits``)
    # PR number -> head branch, of the PRs the tick looked at (how the text names them)
    names: tuple[tuple[int, str], ...] = ()

    @property
    def exit_code(self) -> int:
        """``vault dispatcher run --once``: 0 ok, 75 the forge was unreachable, 1 other errors."""
        if not self.errors:
            return 0
        return 75 if self.unavailable else 1

    @property
    def ok(self) -> bool:
        return not self.errors


def report_data(report: TickReport) -> dict[str, Any]:
    return {
        "started_at": report.started_at,
        "ended_at": report.ended_at,
        "main_before": report.main_before,
        "main_after": report.main_after,
        "halted": report.halted,
        "dry_run": report.dry_run,
        "forge_requests": report.forge_requests,
        "commits": report.commits,
        "merges": report.merges,
        "unavailable": report.unavailable,
        "pulls": {str(n): branch for n, branch in report.names},
        "decisions": [
            {"subject": d.subject, "event": d.event, "detail": d.detail}
            for d in report.decisions
        ],
        "errors": list(report.errors),
    }


# What the report shows of one subject: its (event, detail) pairs in tick order.
Seen = Mapping[str, tuple[tuple[str, str], ...]]


def subject_events(report: TickReport) -> dict[str, tuple[tuple[str, str], ...]]:
    """Return each subject's (event, detail) pairs, in the order the tick decided them."""
    found: dict[str, list[tuple[str, str]]] = {}
    for d in report.decisions:
        found.setdefault(d.subject, []).append((str(d.event), d.detail))
    return {subject: tuple(events) for subject, events in found.items()}


def _order(subject: str) -> tuple[int, int, str]:
    """main first, then pull requests by number, then actions by id: a stable order."""
    if subject.startswith("pr#") and subject[3:].isdigit():
        return (1, int(subject[3:]), "")
    if subject.startswith("action:"):
        return (2, 0, subject)
    return (0, 0, subject)


def subject_name(subject: str, names: Mapping[int, str]) -> str:
    """Name *subject* as an operator does: ``noop-1 (#12)``, ``plan/prereqs (#3)``, ``action noop-1``."""
    if subject.startswith("pr#") and subject[3:].isdigit():
        number = int(subject[3:])
        branch = names.get(number)
        if branch is None:
            return f"#{number}"
        return f"{branch.removeprefix(PROPOSAL_PREFIX)} (#{number})"
    if subject.startswith("action:"):
        what = subject.removeprefix("action:")
        if what.endswith(".toml"):
            what = what.rsplit("/", 1)[-1].removesuffix(".toml")
        return f"action {what}"
    return subject


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def render_report(
    report: TickReport, seen: Seen | None = None, verbose: bool = False
) -> str:
    """The report as text: one line per decision, grouped by subject in a stable order.

    *seen* holds what earlier reports showed per subject (``subject_events``):
    a pull request whose decisions are exactly those again is left out (only
    counted) unless *verbose*; actions and main are always shown. The head
    counts the commits on main, merge commits included.
    """
    seen = seen or {}
    names = dict(report.names)
    events = subject_events(report)
    shown = []
    unchanged = 0
    for subject in sorted(events, key=_order):
        repeated = subject.startswith("pr#") and seen.get(subject) == events[subject]
        if repeated and not verbose:
            unchanged += 1
            continue
        shown.append(subject)
    head = f"tick {report.started_at}: "
    if report.halted:
        head += "HALTED (vault/HALT exists on main): nothing merged or fired"
    else:
        pulls = sum(1 for s in shown if s.startswith("pr#"))
        actions = sum(1 for s in shown if s.startswith("action:"))
        parts = [_count(pulls, "proposal"), _count(actions, "action")]
        if unchanged:
            parts.append(f"{unchanged} unchanged not shown")
        commits = report.commits + report.merges
        merges = f" ({_count(report.merges, 'merge')})" if report.merges else ""
        head += (
            f"{', '.join(parts)}; {_count(commits, 'commit')}{merges}; "
            f"{_count(report.forge_requests, 'forge request')}"
        )
    if report.dry_run:
        head += " [dry run: nothing written]"
    lines = [head]
    for subject in shown:
        name = subject_name(subject, names)
        lines.extend(
            f"  {name}: {event}{' — ' + detail if detail else ''}"
            for event, detail in events[subject]
        )
    lines.extend(f"  error: {e}" for e in report.errors)
    return "\n".join(lines)
