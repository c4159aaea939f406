"""Webhook wakes of the service: an immediate tick, and wakes during a tick collapsed into one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from opsvault.app import App
from opsvault.dispatcher.report import TickReport
from opsvault.dispatcher.service import run_service
from tests.dispatcher.test_service import make_app, report


class SlowTick:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls = 0
        self.running = threading.Event()
        self.lock = threading.Lock()
        self.overlap = False
        self._active = 0

    def __call__(self, app: App, now: datetime, *, dry_run: bool = False) -> TickReport:
        with self.lock:
            self.calls += 1
            self._active += 1
            self.overlap |= self._active > 1
        self.running.set()
        time.sleep(self.seconds)
        with self.lock:
            self._active -= 1
        return report(now)


def wait_for(condition: Callable[[], object], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def serve(app: App, tick: SlowTick, stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(
        target=run_service,
        args=(app, timedelta(hours=1)),
        kwargs={"tick": tick, "stop": stop, "install_signals": False},
    )
    thread.start()
    return thread


def test_a_wake_runs_a_tick_at_once_and_wakes_during_it_collapse() -> None:
    app = make_app()
    tick = SlowTick(0.3)
    stop = threading.Event()
    thread = serve(app, tick, stop)
    try:
        assert wait_for(lambda: tick.calls == 1)  # the first tick, at start
        assert wait_for(lambda: tick._active == 0)
        app.nudges.add(7)  # idle service, hourly interval: a tick now
        assert wait_for(lambda: tick.calls == 2, timeout=2.0)
        for number in range(5):  # five deliveries during that tick ...
            app.nudges.add(number)
        assert wait_for(lambda: tick._active == 0 and tick.calls >= 3)
        time.sleep(0.5)
        assert tick.calls == 3  # ... cost one more tick, not five
        assert not tick.overlap
    finally:
        stop.set()
        thread.join(timeout=10)
    assert app.nudges.drain() == {0, 1, 2, 3, 4, 7}  # the fake tick never drained


def test_no_tick_starts_from_a_wake_after_the_stop() -> None:
    app = make_app()
    tick = SlowTick(0.0)
    stop = threading.Event()
    thread = serve(app, tick, stop)
    assert wait_for(lambda: tick.calls == 1)
    stop.set()
    thread.join(timeout=10)
    app.nudges.add(1)
    time.sleep(0.3)
    assert tick.calls == 1
