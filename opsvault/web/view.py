"""What the status page shows, as plain values: built from one read of the vault, no I/O.

``Observed`` is what a page source read at one moment: the status model of
``vault status`` (``opsvault.dispatcher.status.Status``), the policy on main
(who may approve), the PRs the dispatcher watches (its cache: age and next
deadline, no forge request) and the last ticks. ``build_page`` turns it into a
``Page`` of rows for the template. Everything a proposer wrote stays a plain
string here; the template escapes it (jinja2 autoescape).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote

from opsvault.dispatcher.cache import PullEntry
from opsvault.dispatcher.report import TickReport
from opsvault.dispatcher.status import Status
from opsvault.policy.model import MergeMode, Policy, Principals
from opsvault.timefmt import parse_aware
from opsvault.vault.tier import Tier

REFRESH_SECONDS = 10
RECORDS_ROUTE = "/records/"


@dataclass(frozen=True, slots=True)
class TickLine:
    """One tick as the page lists it (newest first)."""

    started_at: str
    result: str  # ok, errors, raised
    decisions: int = 0
    commits: int = 0
    forge_requests: int = 0
    errors: tuple[str, ...] = ()

    @classmethod
    def of(cls, report: TickReport) -> TickLine:
        return cls(
            report.started_at,
            "ok" if report.ok else "errors",
            len(report.decisions),
            report.commits,
            report.forge_requests,
            report.errors,
        )


@dataclass(frozen=True, slots=True)
class Links:
    """Where a PR and a record can be opened: the forge's web pages, or this server."""

    web: str | None = None  # https://forge/owner/repo; None in local mode
    branch: str = "main"

    def pull(self, number: int | None) -> str | None:
        if number is None or self.web is None:
            return None
        return f"{self.web}/pulls/{number}"

    def record(self, path: str) -> str:
        if self.web is None:  # local mode: this server shows the record itself
            return RECORDS_ROUTE + quote(path)
        return f"{self.web}/src/branch/{quote(self.branch)}/{quote(path)}"


@dataclass(frozen=True, slots=True)
class Observed:
    """One read of the vault by a page source, at *read_at*."""

    status: Status
    read_at: datetime
    served_by: str
    main: str | None = None
    policy: Policy | None = None
    pulls: tuple[tuple[str, PullEntry], ...] = ()  # PR number -> the cache's entry
    ticks: tuple[TickLine, ...] = ()  # newest first
    links: Links = field(default_factory=Links)
    records: tuple[tuple[str, bytes], ...] = ()  # local mode: what /records/ serves
    request_limit: int | None = None  # the per-tick forge request budget, if any
    problem: str = ""  # what could not be read this time
    # e.g. guard drift (dispatcher/guard.py): one banner each
    notices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ApprovalRow:
    pr: str
    link: str | None
    tier: str
    since: str
    age: str
    deadline: str
    overdue: bool
    approvers: str


@dataclass(frozen=True, slots=True)
class ProposalRow:
    branch: str
    tier: str
    refused: bool
    actions: str
    problem: str
    approvers: str


@dataclass(frozen=True, slots=True)
class FireRow:
    id: str
    tier: str
    formula: str
    context: str
    problems: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RunningRow:
    id: str
    replica: str
    since: str
    deadline: str
    stale: bool
    problem: str


@dataclass(frozen=True, slots=True)
class OutcomeRow:
    when: str
    id: str
    outcome: str
    reason: str
    tier: str
    approver: str
    pr: str
    pr_link: str | None
    record: str
    record_link: str
    problem: str


@dataclass(frozen=True, slots=True)
class Page:
    served_by: str
    read_at: str
    main: str
    halted: bool
    halt_note: str
    # A "frozen until …" line (issue 13 §4) goes here, under the HALT banner.
    notices: tuple[str, ...]
    sandbox: str  # "sandboxed", "NOT sandboxed", "unknown"
    sandbox_note: str
    approval: tuple[ApprovalRow, ...]
    proposals: tuple[ProposalRow, ...]
    fire: tuple[FireRow, ...]
    running: tuple[RunningRow, ...]
    outcomes: tuple[OutcomeRow, ...]
    ticks: tuple[TickLine, ...]
    budget: str
    tier_counts: str
    problem: str
    refresh: int = REFRESH_SECONDS


def _tier_rank(label: str | None) -> int:
    order = {t.label: int(t) for t in Tier}
    return -order.get(label or "", 99)  # invalid first, then high to low


def parse_time(text: str | None) -> datetime | None:
    """Return the aware time *text* names, or None."""
    return parse_aware(text) if text else None


def render_age(since: datetime | None, now: datetime) -> str:
    """Return how long ago *since* was, to the minute (``3d 4h``, ``2h 5m``, ``40s``)."""
    if since is None:
        return "?"
    seconds = int((now - since).total_seconds())
    if seconds < 0:
        return "in the future"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


def _names(who: Principals) -> str:
    names = sorted(who.users) + [f"team {t}" for t in sorted(who.teams)]
    return ", ".join(names) if names else "nobody listed"


def approvers(policy: Policy | None, tier: str | None) -> str:
    """Return who may approve (merge) a change of *tier* under *policy*."""
    if policy is None or tier is None:
        return "unknown (the policy could not be read)"
    try:
        settings = policy.settings(Tier[tier.upper()])
    except KeyError:
        return "unknown tier"
    if settings.merge is MergeMode.AUTO:
        return "nobody needed: the dispatcher merges it"
    admins = _names(policy.admins)
    if settings.merge is MergeMode.ADMIN:
        return f"an admin ({admins}), not the proposer"
    text = f"a reviewer ({_names(policy.reviewers)}) or an admin ({admins}), not the proposer"
    if settings.veto_window is not None:
        text += "; else merged when the veto window ends unless held"
    return text


def _budget(observed: Observed) -> str:
    limit = (
        "no per-tick limit configured"
        if observed.request_limit is None
        else f"limit {observed.request_limit} per tick"
    )
    if not observed.ticks:
        return f"no tick seen yet; {limit}"
    used = observed.ticks[0].forge_requests
    total = sum(t.forge_requests for t in observed.ticks)
    return f"last tick {used}, last {len(observed.ticks)} ticks {total}; {limit}"


def build_page(observed: Observed, now: datetime) -> Page:
    """Return the page for *observed*, ages counted at *now*."""
    status, policy, links = observed.status, observed.policy, observed.links
    approval = sorted(
        (
            ApprovalRow(
                pr=f"#{number}",
                link=links.pull(int(number)) if number.isdigit() else None,
                tier=entry.tier,
                since=entry.head_seen_at,
                age=render_age(parse_time(entry.head_seen_at), now),
                deadline=entry.due,
                overdue=(due := parse_time(entry.due)) is not None and due < now,
                approvers=approvers(policy, entry.tier),
            )
            for number, entry in observed.pulls
        ),
        key=lambda r: (_tier_rank(r.tier), r.since),
    )
    proposals = sorted(
        (
            ProposalRow(
                branch=p.branch,
                tier=p.tier or "invalid",
                refused=p.refused,
                actions=", ".join(p.action_ids),
                problem=p.problem,
                approvers=approvers(policy, p.tier),
            )
            for p in status.proposals
        ),
        key=lambda r: (_tier_rank(r.tier), r.branch),
    )
    fire = sorted(
        (
            FireRow(w.id, w.tier or "invalid", w.formula or "-", w.context, w.problems)
            for w in status.waiting
        ),
        key=lambda r: (_tier_rank(r.tier), r.id),
    )
    running = tuple(
        RunningRow(
            r.id,
            r.dispatcher or "?",
            r.claimed_at or "?",
            r.deadline or "?",
            r.stale,
            r.problem,
        )
        for r in status.running
    )
    outcomes = tuple(
        OutcomeRow(
            when=f.ended_at or f.started_at or "-",
            id=f.id,
            outcome=f.outcome or "?",
            reason=f.reason,
            tier=f.tier or "-",
            approver=f.approver or "-",
            pr=f"#{f.pr}" if f.pr is not None else "-",
            pr_link=links.pull(f.pr),
            record=f.path,
            record_link=links.record(f.path),
            problem=f.problem,
        )
        for f in status.recent
    )
    counts: dict[str, int] = {}
    for tier in [r.tier for r in approval] + [r.tier for r in proposals]:
        counts[tier] = counts.get(tier, 0) + 1
    sandbox = {None: "unknown", True: "sandboxed", False: "NOT sandboxed"}[
        status.sandboxed
    ]
    return Page(
        served_by=observed.served_by,
        read_at=observed.read_at.isoformat(timespec="seconds"),
        main=(observed.main or status.source)[:12],
        halted=status.halted,
        halt_note=status.halt_note,
        notices=observed.notices,
        sandbox=sandbox,
        sandbox_note=status.sandbox_note,
        approval=tuple(approval),
        proposals=tuple(proposals),
        fire=tuple(fire),
        running=running,
        outcomes=outcomes,
        ticks=observed.ticks,
        budget=_budget(observed),
        tier_counts=", ".join(
            f"{tier} {counts[tier]}"
            for tier in sorted(counts, key=lambda t: _tier_rank(t))
        ),
        problem=observed.problem,
    )


def record_bytes(observed: Observed, path: str) -> bytes | None:
    """Return the record at *path* if this read holds it (``/records/`` serves only these)."""
    return dict(observed.records).get(path)
