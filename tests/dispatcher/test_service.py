"""The service loop around tick: a fake tick, a short interval, a stop event; no real forge."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from opsvault.app import App
from opsvault.config import Settings
from opsvault.dispatcher.report import TickReport
from opsvault.dispatcher.service import run_service
from opsvault.errors import ForgeUnavailable, GitError, PolicyError

FAST = timedelta(milliseconds=20)


def make_app() -> App:
    unused = cast(Any, None)
    return App(
        settings=Settings(),
        forge=unused,
        repo=unused,
        mainline=unused,
        runner=unused,
        notifier=unused,
        state_dir=Path("/nonexistent"),
        identity="vault-bot",
    )


def report(now: datetime, errors: tuple[str, ...] = ()) -> TickReport:
    stamp = now.isoformat()
    return TickReport(stamp, stamp, None, None, False, False, (), errors)


class ScriptedTick:
    """Behave as scripted per call (a report, or an exception), then stop the service."""

    def __init__(
        self, script: list[BaseException | None], stop: threading.Event
    ) -> None:
        self.script = script
        self.stop = stop
        self.calls: list[tuple[datetime, bool]] = []

    def __call__(self, app: App, now: datetime, *, dry_run: bool = False) -> TickReport:
        self.calls.append((now, dry_run))
        index = len(self.calls) - 1
        if index >= len(self.script) - 1:
            self.stop.set()  # what the SIGTERM handler does
        step = self.script[min(index, len(self.script) - 1)]
        if step is not None:
            raise step
        return report(now)


def test_failed_ticks_are_logged_and_retried_until_stopped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="opsvault.dispatcher.service")
    stop = threading.Event()
    tick = ScriptedTick(
        [
            ForgeUnavailable("GET /pulls: HTTP 502"),
            GitError("origin", "fetch failed"),
            RuntimeError("a bug"),
            PolicyError("vault/policy.toml", []),
            None,
        ],
        stop,
    )
    reports: list[TickReport] = []
    started = time.monotonic()
    result = run_service(
        make_app(),
        FAST,
        dry_run=True,
        on_report=reports.append,
        tick=tick,
        stop=stop,
        grace=timedelta(seconds=1),
        install_signals=False,
    )
    assert time.monotonic() - started < 2
    assert result.ticks == 5
    assert result.failures == 4
    assert result.consecutive_failures == 0
    assert not result.abandoned
    assert len(reports) == 1 and result.last_report is reports[0]
    assert all(dry_run for _, dry_run in tick.calls)
    assert all(now.tzinfo is UTC for now, _ in tick.calls)
    messages = [r.getMessage() for r in caplog.records]
    assert any("(1 in a row): GET /pulls: HTTP 502" in m for m in messages)
    assert any("(2 in a row): origin: fetch failed" in m for m in messages)
    [unexpected] = [r for r in caplog.records if r.exc_info]
    assert "(3 in a row)" in unexpected.getMessage()
    assert any("succeeded after 4 failed tick(s)" in m for m in messages)


def test_a_tick_running_past_grace_is_abandoned() -> None:
    stop = threading.Event()
    release = threading.Event()

    def slow_tick(app: App, now: datetime, *, dry_run: bool = False) -> TickReport:
        stop.set()
        release.wait(2)
        return report(now)

    try:
        result = run_service(
            make_app(),
            FAST,
            tick=slow_tick,
            stop=stop,
            grace=timedelta(milliseconds=100),
            install_signals=False,
        )
    finally:
        release.set()
    assert result.abandoned
    assert result.ticks == 1


def test_sigterm_stops_scheduling_and_lets_the_tick_finish() -> None:
    assert threading.current_thread() is threading.main_thread()
    before = signal.getsignal(signal.SIGTERM)
    finished = threading.Event()
    calls: list[datetime] = []

    def tick(app: App, now: datetime, *, dry_run: bool = False) -> TickReport:
        calls.append(now)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # still running when the signal is handled
        finished.set()
        return report(now)

    result = run_service(
        make_app(), timedelta(seconds=60), tick=tick, grace=timedelta(seconds=1)
    )
    assert finished.is_set()
    assert not result.abandoned
    assert len(calls) == 1  # the first tick runs at once, then nothing more
    assert signal.getsignal(signal.SIGTERM) is before


def test_once_runs_one_tick_and_lets_errors_propagate() -> None:
    seen: list[TickReport] = []

    def tick(app: App, now: datetime, *, dry_run: bool = False) -> TickReport:
        return report(now, ("pr#1: boom",))

    result = run_service(make_app(), FAST, once=True, tick=tick, on_report=seen.append)
    assert result.ticks == 1 and result.failures == 1
    assert seen == [result.last_report]

    def unavailable(app: App, now: datetime, *, dry_run: bool = False) -> TickReport:
        raise ForgeUnavailable("GET /pulls: down")

    with pytest.raises(ForgeUnavailable):
        run_service(make_app(), FAST, once=True, tick=unavailable)


def test_the_planner_job_runs_beside_the_tick_and_its_errors_are_contained(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = threading.Event()
    planned = threading.Event()

    def planner() -> None:
        planned.set()
        raise RuntimeError("planner bug")

    def tick(app: App, now: datetime, *, dry_run: bool = False) -> TickReport:
        if planned.wait(1):
            stop.set()
        return report(now)

    app = make_app()
    result = run_service(
        app, FAST, tick=tick, stop=stop, planner_job=planner, install_signals=False
    )
    assert planned.is_set()
    assert result.failures == 0
    assert any("planner failed" in r.getMessage() for r in caplog.records)
