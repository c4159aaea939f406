"""The dispatcher service: scheduler wiring around ``tick`` and nothing else.

One APScheduler interval job runs the tick (``max_instances=1``, ``coalesce=True``:
a slow tick delays the next one, never overlaps it, and missed runs collapse
into one). SIGTERM or SIGINT stops scheduling; a tick already running may
finish within ``grace``, after which the service returns and reports that it
abandoned the tick (the caller exits; the next start recovers what the tick
left in ``vault/running/``, exactly as after a crash).

A tick that raises is logged and the next tick retries: ``ForgeUnavailable``
and ``GitError`` as warnings, other expected errors as errors, anything else
with its traceback. The service itself never dies of a tick.
"""

from __future__ import annotations

import importlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING, Protocol

from opsvault.errors import ForgeUnavailable, GitError, OpsvaultError

if TYPE_CHECKING:
    from opsvault.app import App
    from opsvault.dispatcher.report import TickReport
    from opsvault.dispatcher.webhooks import WebhookReceiver

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_POLL_SECONDS = 0.2  # how often the main thread looks at the stop event


class TickFunction(Protocol):
    def __call__(
        self, app: App, now: datetime, *, dry_run: bool = False
    ) -> TickReport: ...


@dataclass(frozen=True, slots=True)
class ServiceResult:
    """How the service ended: ticks run, ticks failed, and whether one was abandoned."""

    ticks: int
    failures: int
    consecutive_failures: int
    abandoned: bool = False  # a tick (or the planner) still ran when grace ran out
    last_report: TickReport | None = None


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _ignore(report: TickReport) -> None:
    return None


class _Activity:
    """Which jobs are running; once closed, no job starts any more."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._running = 0
        self._closed = False

    @contextmanager
    def running(self) -> Iterator[bool]:
        """Yield whether the job may run (False once closed); count it while it does."""
        with self._changed:
            if self._closed:  # submitted just before the stop: do not start it
                allowed = False
            else:
                allowed = True
                self._running += 1
        try:
            yield allowed
        finally:
            if allowed:
                with self._changed:
                    self._running -= 1
                    self._changed.notify_all()

    def close_and_wait(self, timeout: float) -> bool:
        """Refuse every later run, wait up to *timeout* for running ones; return whether none is left."""
        with self._changed:
            self._closed = True
            return self._changed.wait_for(lambda: self._running == 0, timeout)


class _TickJob:
    """Run one tick at a time, catching and counting what it raises."""

    def __init__(
        self,
        app: App,
        tick: TickFunction,
        dry_run: bool,
        on_report: Callable[[TickReport], None],
        clock: Callable[[], datetime],
        activity: _Activity,
    ) -> None:
        self.app = app
        self.tick = tick
        self.dry_run = dry_run
        self.on_report = on_report
        self.clock = clock
        self.activity = activity
        self.ticks = 0
        self.failures = 0
        self.consecutive_failures = 0
        self.last_report: TickReport | None = None
        self._wake_lock = threading.Lock()
        self._woken = False  # a wake arrived: run (again) as soon as possible
        self._busy = False

    def run(self) -> None:
        """Run ticks until no wake is pending; return at once if another thread runs them."""
        with self.activity.running() as allowed:
            if not allowed:
                return
            with self._wake_lock:
                if self._busy:  # that thread runs one more tick for us
                    self._woken = True
                    return
                self._busy = True
            while True:
                with self._wake_lock:
                    self._woken = False
                try:
                    self._run()
                finally:
                    with self._wake_lock:
                        again = self._woken
                        self._busy = again
                if not again:
                    return

    def wake(self) -> None:
        """Run a tick now: in a new thread if none runs, else once the running one ends.

        Called from the webhook receiver's threads. Wakes during a tick collapse
        into one more tick, so a burst of deliveries costs at most two ticks.
        """
        with self._wake_lock:
            self._woken = True
            if self._busy:
                return
        threading.Thread(target=self.run, name="woken tick", daemon=True).start()

    def _run(self) -> None:
        self.ticks += 1
        try:
            report = self.tick(self.app, self.clock(), dry_run=self.dry_run)
            self.last_report = report
            self.on_report(report)
        except (ForgeUnavailable, GitError) as exc:
            self._failed()
            log.warning(
                "tick failed (%d in a row): %s; the next tick retries",
                self.consecutive_failures,
                exc,
            )
        except OpsvaultError as exc:
            self._failed()
            log.error(
                "tick failed (%d in a row): %s; the next tick retries",
                self.consecutive_failures,
                exc,
            )
        except Exception:
            self._failed()
            log.exception(
                "tick failed with an unexpected error (%d in a row); the next tick retries",
                self.consecutive_failures,
            )
        else:
            if self.consecutive_failures:
                log.info(
                    "tick succeeded after %d failed tick(s)", self.consecutive_failures
                )
            self.consecutive_failures = 0

    def _failed(self) -> None:
        self.failures += 1
        self.consecutive_failures += 1

    def result(self, abandoned: bool) -> ServiceResult:
        return ServiceResult(
            self.ticks,
            self.failures,
            self.consecutive_failures,
            abandoned,
            self.last_report,
        )


def _guarded(
    name: str, job: Callable[[], None], activity: _Activity
) -> Callable[[], None]:
    def run() -> None:
        with activity.running() as allowed:
            if not allowed:
                return
            try:
                job()
            except OpsvaultError as exc:
                log.error(
                    "%s failed: %s; it runs again at its next interval", name, exc
                )
            except Exception:
                log.exception("%s failed with an unexpected error", name)

    return run


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        log.info(
            "%s: no new ticks; a running tick may finish", signal.Signals(signum).name
        )
        stop.set()

    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _load_tick() -> TickFunction:
    # Imported when first needed: the tick pulls in the whole dispatcher.
    tick: TickFunction = importlib.import_module("opsvault.dispatcher.tick").tick
    return tick


def run_service(
    app: App,
    interval: timedelta,
    *,
    once: bool = False,
    dry_run: bool = False,
    on_report: Callable[[TickReport], None] = _ignore,
    planner_job: Callable[[], None] | None = None,
    tick: TickFunction | None = None,
    stop: threading.Event | None = None,
    grace: timedelta | None = None,
    install_signals: bool = True,
    clock: Callable[[], datetime] = _utcnow,
    webhook: WebhookReceiver | None = None,
) -> ServiceResult:
    """Tick every *interval* until *stop* is set (or SIGTERM/SIGINT arrives); return how it went.

    *once*: run one tick in this thread, let its exceptions propagate, return.
    *planner_job* runs every ``planner.interval`` as a second job. *tick*
    defaults to ``opsvault.dispatcher.tick.tick``; *grace* to
    ``dispatcher.grace``. Signal handlers are installed only with
    *install_signals*, which needs the main thread. *webhook* (not with
    *once*) is started beside the scheduler: each verified delivery nudges its
    PR and wakes the tick job at once (docs/forgejo.md "Webhook").
    """
    tick_function = tick if tick is not None else _load_tick()
    activity = _Activity()
    job = _TickJob(app, tick_function, dry_run, on_report, clock, activity)
    if once:
        report = tick_function(app, clock(), dry_run=dry_run)
        on_report(report)
        return ServiceResult(1, 0 if report.ok else 1, 0, False, report)

    from apscheduler.schedulers.background import BackgroundScheduler

    stop = stop if stop is not None else threading.Event()
    grace = grace if grace is not None else app.settings.dispatcher.grace
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.add_job(
        job.run,
        "interval",
        seconds=interval.total_seconds(),
        max_instances=1,
        coalesce=True,
        next_run_time=clock(),
        id="tick",
        name="dispatcher tick",
    )
    app.nudges.wake = job.wake
    if planner_job is not None:
        scheduler.add_job(
            _guarded("planner", planner_job, activity),
            "interval",
            seconds=app.settings.planner.interval.total_seconds(),
            max_instances=1,
            coalesce=True,
            # At start as well: a restart must not put the planner off by an interval.
            next_run_time=clock(),
            id="planner",
            name="planner",
        )
    signals = _stop_on_signals(stop) if install_signals else _nothing()
    if webhook is not None:
        webhook.start()  # before anything else runs: a busy port stops the start
    with signals:
        scheduler.start()
        log.info(
            "dispatcher %r ticking every %s%s",
            app.identity,
            interval,
            " (dry run)" if dry_run else "",
        )
        try:
            while not stop.wait(_POLL_SECONDS):
                pass
        finally:
            if webhook is not None:
                webhook.close()  # no more wakes
            scheduler.pause()  # no new runs from here on
            finished = activity.close_and_wait(grace.total_seconds())
            scheduler.shutdown(wait=False)
    if not finished:
        log.warning(
            "a job is still running after the %s grace; leaving it to be recovered",
            grace,
        )
    log.info("dispatcher stopped after %d tick(s)", job.ticks)
    return job.result(abandoned=not finished)


@contextmanager
def _nothing() -> Iterator[None]:
    yield
