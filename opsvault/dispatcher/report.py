"""What one tick decided and did, for people (text) and scripts (JSON)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Decision:
    subject: str  # "pr#12", "action:<id>", or the base branch ("main")
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
        "decisions": [
            {"subject": d.subject, "event": d.event, "detail": d.detail}
            for d in report.decisions
        ],
        "errors": list(report.errors),
    }


def render_report(report: TickReport) -> str:
    head = f"tick {report.started_at}: "
    if report.halted:
        head += "HALTED (vault/HALT exists on main): nothing merged or fired"
    else:
        head += f"{len(report.decisions)} decision(s), {report.commits} commit(s), {report.forge_requests} forge request(s)"
    if report.dry_run:
        head += " [dry run: nothing written]"
    lines = [head]
    lines.extend(
        f"  {d.subject}: {d.event}{' — ' + d.detail if d.detail else ''}"
        for d in report.decisions
    )
    lines.extend(f"  error: {e}" for e in report.errors)
    return "\n".join(lines)
