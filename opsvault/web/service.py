"""The status page and metrics of a running dispatcher service: wiring only.

``ServiceSurface`` wraps the tick function: it times each tick, counts what it
decided, and after it reads the vault once through the status model
(``collect_status`` at the commit the tick left main at), in the tick's own
thread, so the page never touches the repository from a request thread and
shows exactly what the dispatcher last saw. The page and the gauges of
``/metrics`` are both made from that one read. Pushes of main are counted by
wrapping the ``Mainline``, forge requests through the Forgejo client's
observer, webhook deliveries from the receiver's counters.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from opsvault.dispatcher.cache import PullEntry, load_cache
from opsvault.dispatcher.records import MAX_RECORD_BYTES
from opsvault.dispatcher.report import TickReport
from opsvault.dispatcher.status import Status, collect_status
from opsvault.errors import FileTooLargeError, GitError, OpsvaultError, PushRejected
from opsvault.snapshot import CommitSnapshot, load_base_state
from opsvault.web.metrics import Metrics
from opsvault.web.server import StatusServer
from opsvault.web.view import Links, Observed, TickLine

if TYPE_CHECKING:
    from opsvault.app import App
    from opsvault.dispatcher.guard import GuardReport
    from opsvault.dispatcher.service import TickFunction
    from opsvault.dispatcher.webhooks import WebhookReceiver
    from opsvault.ports import Mainline

log = logging.getLogger(__name__)

KEEP_TICKS = 10  # the page lists this many recent ticks


class CountingMainline:
    """A ``Mainline`` that counts its pushes and the compare-and-swap losses among them."""

    def __init__(self, inner: Mainline, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    @property
    def branch(self) -> str:
        return self._inner.branch

    def refresh(self) -> str:
        return self._inner.refresh()

    def publish(self, new: str, expected_old: str) -> None:
        try:
            self._inner.publish(new, expected_old)
        except PushRejected:
            self._metrics.push("lost")
            raise
        except GitError:
            self._metrics.push("error")
            raise
        self._metrics.push("ok")

    def fetch_pull_head(self, number: int, sha: str) -> bool:
        return self._inner.fetch_pull_head(number, sha)


def _links(app: App) -> Links:
    from opsvault.config import ForgeKind

    forge = app.settings.forge
    if forge.kind is ForgeKind.FORGEJO:
        return Links(f"{forge.url.rstrip('/')}/{forge.repo}", forge.branch)
    return Links(None, forge.branch)


class ServiceSurface:
    """What the status page and ``/metrics`` of one dispatcher service show."""

    def __init__(self, app: App, metrics: Metrics | None = None) -> None:
        self.app = app
        self.metrics = metrics if metrics is not None else Metrics()
        self._links = _links(app)
        self._lock = threading.Lock()
        self._ticks: deque[TickLine] = deque(maxlen=KEEP_TICKS)
        self._observed = Observed(
            Status(source="(not read yet)", halted=False),
            app.clock(),
            self._served_by(),
            links=self._links,
            problem="no tick has finished yet; the page shows what the first one sees",
        )
        self.server: StatusServer | None = None
        self._notices: tuple[str, ...] = ()

    def _served_by(self) -> str:
        return f"dispatcher {self.app.identity!r}"

    # -- wiring ----------------------------------------------------------------------

    def instrument(self, webhook: WebhookReceiver | None = None) -> None:
        """Count pushes of main, forge requests and webhook deliveries of this App."""
        from opsvault.forge.client import ForgejoClient

        self.app.mainline = CountingMainline(self.app.mainline, self.metrics)
        if isinstance(self.app.forge, ForgejoClient):
            self.app.forge.observe_requests(self.metrics.forge_request)
        if webhook is not None:
            self.metrics.watch_webhook(lambda: (webhook.accepted, webhook.refused))

    def wrap(self, tick: TickFunction) -> TickFunction:
        """Return *tick*, timed and counted, followed by one read of the vault."""

        def observed_tick(
            app: App, now: datetime, *, dry_run: bool = False
        ) -> TickReport:
            before = _pull_tiers(app)
            started = time.monotonic()
            try:
                report = tick(app, now, dry_run=dry_run)
            except BaseException as exc:
                self.metrics.observe_tick(None, time.monotonic() - started, app.clock())
                self._remember(
                    TickLine(now.isoformat(), "raised", errors=(app.redact(str(exc)),))
                )
                raise
            seconds = time.monotonic() - started
            self._remember(TickLine.of(report))
            status = None
            try:
                status = self.refresh(report.main_after, now)
            except Exception:  # the page must never fail a tick that did its work
                log.exception("status page: the read after the tick failed")
            tiers = {**before, **_pull_tiers(app)}
            self.metrics.observe_tick(
                report, seconds, app.clock(), _tier_lookup(tiers, status)
            )
            return report

        return observed_tick

    def serve(self, bind: str, port: int) -> StatusServer:
        """Start serving the page and ``/metrics``; the caller closes the server."""
        self.server = StatusServer(
            self.observed, self.metrics, bind=bind, port=port, clock=self.app.clock
        ).start()
        return self.server

    def guard_result(self, report: GuardReport) -> None:
        """Show a guard check's findings on the page (one banner each) and in metrics."""
        self.metrics.set_guard(report)
        notices = tuple(
            self.app.redact(f"Guard drift: {f.render()}") for f in report.findings
        )
        with self._lock:
            self._notices = notices
            self._observed = replace(self._observed, notices=notices)

    # -- reading ---------------------------------------------------------------------

    def _remember(self, line: TickLine) -> None:
        with self._lock:
            self._ticks.appendleft(line)
            self._observed = replace(self._observed, ticks=tuple(self._ticks))

    def observed(self) -> Observed:
        """Return the last read (the page's source; called from request threads)."""
        with self._lock:
            return self._observed

    def refresh(self, main: str | None, now: datetime) -> Status | None:
        """Read the vault at *main* (None: keep the last read) and publish it; return its status."""
        if main is None:
            return None
        app = self.app
        problem = ""
        try:
            snapshot = CommitSnapshot(app.repo, main)
            base = load_base_state(snapshot)
            status = collect_status(snapshot, base, now)
            policy = base.policy
            records = _records(snapshot, status) if self._links.web is None else ()
        except OpsvaultError as exc:
            log.warning("status page: main %s not read: %s", main[:12], exc)
            problem = f"main {main[:12]} could not be read: {app.redact(str(exc))}"
            status, policy, records = (
                Status(source=main, halted=False),
                None,
                (),
            )
        if app.sandbox is not None:  # this process decided it at start
            status = replace(
                status, sandboxed=app.sandbox.active, sandbox_note=app.sandbox.detail
            )
        pulls = tuple(sorted(load_cache(app.state_dir).pulls.items()))
        self.metrics.set_state(status, dict(pulls), now)
        with self._lock:
            self._observed = Observed(
                status=status,
                read_at=now,
                served_by=self._served_by(),
                main=main,
                policy=policy,
                pulls=pulls,
                ticks=tuple(self._ticks),
                links=self._links,
                records=records,
                problem=problem,
                notices=self._notices,
            )
        return status


def _records(snapshot: CommitSnapshot, status: Status) -> tuple[tuple[str, bytes], ...]:
    found = []
    for entry in status.recent:
        try:
            raw = snapshot.read_file(entry.path)
        except FileTooLargeError:
            continue
        if raw is not None and len(raw) <= MAX_RECORD_BYTES:
            found.append((entry.path, raw))
    return tuple(found)


def _pull_tiers(app: App) -> dict[str, str]:
    pulls: dict[str, PullEntry] = load_cache(app.state_dir).pulls
    return {f"pr#{number}": entry.tier for number, entry in pulls.items()}


def _tier_lookup(tiers: dict[str, str], status: Status | None) -> Callable[[str], str]:
    """Return the tier of a decision's subject (``pr#3``, ``action:<id>``), as far as known."""
    by_id: dict[str, str] = {}
    if status is not None:
        for finished in status.recent:
            if finished.tier:
                by_id[f"action:{finished.id}"] = finished.tier
        for waiting in status.waiting:
            if waiting.tier:
                by_id[f"action:{waiting.id}"] = waiting.tier
    known = {**by_id, **tiers}

    def tier_of(subject: str) -> str:
        if subject == "main":
            return "none"
        if subject.startswith("action:") and subject.endswith(".toml"):
            subject = "action:" + PurePosixPath(subject).stem  # a path, not an id
        return known.get(subject, "unknown")

    return tier_of
