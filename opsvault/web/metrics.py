"""The dispatcher's Prometheus metrics (``/metrics``), one registry per service.

Every metric lives in the ``CollectorRegistry`` of one ``Metrics``, never in
prometheus-client's global default registry: two services in one process (the
tests) count apart. Counters move as things happen (a tick, a forge request, a
push); gauges are set from what the status page last read (``set_state``), so
the page and the metrics never disagree. docs/operating.md "Metrics" lists the
names; its alert rules are checked against them by a test.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from opsvault.dispatcher.cache import PullEntry
from opsvault.dispatcher.guard import GuardCheck, GuardReport
from opsvault.dispatcher.records import Outcome
from opsvault.dispatcher.report import TickReport
from opsvault.dispatcher.status import Status
from opsvault.timefmt import parse_aware

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TIERS = ("low", "medium", "high")
TICK_RESULTS = ("ok", "errors", "raised")
PUSH_RESULTS = ("ok", "lost", "error")
OUTCOMES = tuple(str(o) for o in Outcome)
# Seconds; a tick is usually well under a second, a slow forge makes it minutes.
TICK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

# The words of Forgejo API paths the client uses: a request's endpoint class is
# made of these only (numbers become {n}, anything else *), so a branch or file
# name in a path can never create a new time series.
_WORDS = frozenset(
    {
        "pulls",
        "issues",
        "comments",
        "labels",
        "reviews",
        "merge",
        "files",
        "commits",
        "statuses",
        "status",
        "timeline",
        "branches",
        "branch_protections",
        "collaborators",
        "permission",
        "contents",
        "teams",
        "members",
        "orgs",
        "user",
        "users",
        "settings",
        "api",
        "hooks",
        "requested_reviewers",
        "repos",
        "git",
        "refs",
        "raw",
        "version",
    }
)
_REPO_PATH = re.compile(r"^/repos/[^/]+/[^/]+(?=/|$)")


def endpoint_class(method: str, path: str) -> str:
    """Return a bounded name for one forge API request: ``GET pulls/{n}/files``."""
    repo = _REPO_PATH.match(path)
    rest = path[repo.end() :] if repo else path
    parts = []
    for segment in rest.split("?", 1)[0].strip("/").split("/")[:3]:
        if not segment:
            continue
        if segment.isdigit():
            parts.append("{n}")
        elif segment in _WORDS:
            parts.append(segment)
        else:
            parts.append("*")
            break
    scope = "repo/" if repo else ""
    return f"{method.upper()} {scope}{'/'.join(parts)}"


class _WebhookCounts(Collector):
    """Read the webhook receiver's own counters at scrape time."""

    def __init__(self, counts: Callable[[], tuple[int, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterable[Metric]:
        accepted, refused = self._counts()
        family = CounterMetricFamily(
            "opsvault_webhook_deliveries",
            "Webhook deliveries, by result: accepted (a PR nudged) or refused (401, 400, 404, 413)",
            labels=["result"],
        )
        family.add_metric(["accepted"], accepted)
        family.add_metric(["refused"], refused)
        yield family


class Metrics:
    """The metrics of one dispatcher service (or one ``vault status --serve``)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.ticks = Counter(
            "opsvault_ticks",
            "Ticks run, by result: ok, errors (the report lists errors), raised",
            ["result"],
            registry=r,
        )
        self.tick_duration = Histogram(
            "opsvault_tick_duration_seconds",
            "How long each tick took",
            buckets=TICK_BUCKETS,
            registry=r,
        )
        self.last_success = Gauge(
            "opsvault_last_successful_tick_timestamp_seconds",
            "Unix time at which the last tick without errors ended",
            registry=r,
        )
        self.decisions = Counter(
            "opsvault_decisions",
            "Tick decisions, by event (merged, notified, claimed, ...) and tier",
            ["event", "tier"],
            registry=r,
        )
        self.outcomes = Counter(
            "opsvault_outcomes",
            "Results recorded in git, by outcome",
            ["outcome"],
            registry=r,
        )
        self.forge_requests = Counter(
            "opsvault_forge_requests",
            "Forge API requests, by endpoint class and HTTP status (error: no answer)",
            ["endpoint", "status"],
            registry=r,
        )
        self.forge_requests_last_tick = Gauge(
            "opsvault_forge_requests_last_tick",
            "Forge requests the last tick made (its request budget used)",
            registry=r,
        )
        self.git_pushes = Counter(
            "opsvault_git_pushes",
            "Pushes of main (claims, results, HALT), by result: ok, lost, error",
            ["result"],
            registry=r,
        )
        self.cas_losses = Counter(
            "opsvault_git_push_cas_losses",
            "Pushes refused because main had moved (compare-and-swap lost to another writer)",
            registry=r,
        )
        self.waiting = Gauge(
            "opsvault_actions_waiting",
            "Waiting, by tier and stage: approval (open proposals) or fire (approved, on main)",
            ["tier", "stage"],
            registry=r,
        )
        self.running = Gauge(
            "opsvault_actions_running",
            "Claims in vault/running/",
            registry=r,
        )
        self.queue_depth = Gauge(
            "opsvault_queue_depth",
            "Approved actions on main no dispatcher has claimed yet",
            registry=r,
        )
        self.past_deadline = Gauge(
            "opsvault_actions_past_deadline",
            "Proposals past their next deadline, and claims past theirs (stale), by stage",
            ["stage"],
            registry=r,
        )
        self.halted = Gauge(
            "opsvault_halted", "1 while vault/HALT exists on main", registry=r
        )
        self.sandboxed = Gauge(
            "opsvault_steps_sandboxed",
            "1 when steps run in the bubblewrap sandbox, 0 when not, -1 unknown",
            registry=r,
        )
        self.guard_drift = Gauge(
            "opsvault_guard_drift",
            "1 while the last guard self-check found drift in this check, else 0",
            ["check"],
            registry=r,
        )
        self.guard_checked = Gauge(
            "opsvault_guard_last_check_timestamp_seconds",
            "Unix time of the last guard self-check that ran (0: none yet)",
            registry=r,
        )
        for check in GuardCheck:
            self.guard_drift.labels(str(check))
        for result in TICK_RESULTS:
            self.ticks.labels(result)
        for result in PUSH_RESULTS:
            self.git_pushes.labels(result)
        for outcome in OUTCOMES:
            self.outcomes.labels(outcome)
        for tier in TIERS:
            for stage in ("approval", "fire"):
                self.waiting.labels(tier, stage)
        for stage in ("approval", "running"):
            self.past_deadline.labels(stage)
        self.sandboxed.set(-1)

    def render(self) -> bytes:
        """Return the Prometheus text exposition of every metric."""
        return bytes(generate_latest(self.registry))

    # -- events ----------------------------------------------------------------------

    def observe_tick(
        self,
        report: TickReport | None,
        seconds: float,
        ended: datetime,
        tier_of: Callable[[str], str] = lambda subject: "unknown",
    ) -> None:
        """Count one tick (None: it raised) and what it decided.

        A decision's tier is its PR's classification in the same tick, else
        what *tier_of* knows of its subject (``pr#3``, ``action:<id>``), else
        ``unknown``; ``main`` has tier ``none``.
        """
        self.tick_duration.observe(seconds)
        if report is None:
            self.ticks.labels("raised").inc()
            return
        self.ticks.labels("ok" if report.ok else "errors").inc()
        if report.ok:
            self.last_success.set(ended.timestamp())
        self.forge_requests_last_tick.set(report.forge_requests)
        # A PR's "classified" decision comes first and names its tier ("low",
        # "medium (refused)"): its other decisions in this tick share that tier.
        classified = {
            d.subject: d.detail.split(" ", 1)[0]
            for d in report.decisions
            if d.event == "classified" and d.detail.split(" ", 1)[0] in TIERS
        }
        for decision in report.decisions:
            event = str(decision.event)
            tier = classified.get(decision.subject) or tier_of(decision.subject)
            self.decisions.labels(event, tier).inc()
            if event in OUTCOMES:
                self.outcomes.labels(event).inc()

    def forge_request(self, method: str, path: str, status: int | None) -> None:
        """Count one forge API request (*status* None: no answer arrived)."""
        self.forge_requests.labels(
            endpoint_class(method, path), "error" if status is None else str(status)
        ).inc()

    def push(self, result: str) -> None:
        """Count one push of main: ``ok``, ``lost`` (compare-and-swap) or ``error``."""
        self.git_pushes.labels(result).inc()
        if result == "lost":
            self.cas_losses.inc()

    def watch_webhook(self, counts: Callable[[], tuple[int, int]]) -> None:
        """Export the webhook receiver's (accepted, refused) counts."""
        self.registry.register(_WebhookCounts(counts))

    def set_guard(self, report: GuardReport) -> None:
        """Set ``opsvault_guard_drift`` from one guard check (every check label, 0 or 1)."""
        failing = report.failing()
        for check in GuardCheck:
            self.guard_drift.labels(str(check)).set(1 if check in failing else 0)
        self.guard_checked.set(report.checked_at.timestamp())

    # -- state -----------------------------------------------------------------------

    def set_state(
        self, status: Status, pulls: Mapping[str, PullEntry], now: datetime
    ) -> None:
        """Set the gauges from one read of main and of the dispatcher's open PRs."""
        for tier in TIERS:
            self.waiting.labels(tier, "approval").set(
                sum(1 for p in pulls.values() if p.tier == tier)
            )
            self.waiting.labels(tier, "fire").set(
                sum(1 for w in status.waiting if w.tier == tier)
            )
        self.running.set(len(status.running))
        self.queue_depth.set(len(status.waiting))
        self.past_deadline.labels("approval").set(
            sum(1 for p in pulls.values() if _before(p.due, now))
        )
        self.past_deadline.labels("running").set(
            sum(1 for r in status.running if r.stale)
        )
        self.halted.set(1 if status.halted else 0)
        self.sandboxed.set(
            -1 if status.sandboxed is None else (1 if status.sandboxed else 0)
        )


def _before(text: str, now: datetime) -> bool:
    when = parse_aware(text)
    return when is not None and when < now
