"""``vault status --serve``: the status page of an ops directory, without a dispatcher.

Each page view reads the vault afresh through the status model (the same
``fetch_status`` as ``vault status``, passed in by the CLI), one read at a time
and at most one per ``MIN_READ_INTERVAL``; the repository is opened anew for
each read, in the request's thread. No tick runs here, so the page lists none;
PR ages come from a local dispatcher's cache when one has run in the default
state directory (``.git/opsvault``).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from opsvault.dispatcher.cache import load_cache
from opsvault.dispatcher.records import MAX_RECORD_BYTES
from opsvault.dispatcher.status import Status
from opsvault.errors import OpsvaultError
from opsvault.snapshot import CommitSnapshot, DirSnapshot, Snapshot, load_base_state
from opsvault.web.metrics import Metrics
from opsvault.web.server import StatusServer
from opsvault.web.view import Links, Observed

log = logging.getLogger(__name__)

MIN_READ_INTERVAL = timedelta(seconds=1)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class LocalSource:
    """Read an ops directory's status for the page, at most once per ``MIN_READ_INTERVAL``."""

    def __init__(
        self,
        root: Path,
        fetch: Callable[[datetime], Status],
        metrics: Metrics,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.root = root
        self.fetch = fetch
        self.metrics = metrics
        self.clock = clock
        self._lock = threading.Lock()
        self._last: Observed | None = None

    def __call__(self) -> Observed:
        with self._lock:
            now = self.clock()
            last = self._last
            if last is not None and now - last.read_at < MIN_READ_INTERVAL:
                return last
            self._last = self._read(now)
            return self._last

    def _read(self, now: datetime) -> Observed:
        status = self.fetch(now)
        snapshot = self._snapshot(status)
        problem = ""
        try:
            policy = load_base_state(snapshot).policy
        except OpsvaultError as exc:
            policy, problem = None, f"the policy could not be read: {exc}"
        records = []
        for entry in status.recent:
            try:
                raw = snapshot.read_file(entry.path)
            except OpsvaultError:
                continue
            if raw is not None and len(raw) <= MAX_RECORD_BYTES:
                records.append((entry.path, raw))
        pulls = tuple(sorted(load_cache(self.root / ".git" / "opsvault").pulls.items()))
        self.metrics.set_state(status, dict(pulls), now)
        return Observed(
            status=status,
            read_at=now,
            served_by=f"vault status --serve ({self.root})",
            main=status.source,
            policy=policy,
            pulls=pulls,
            links=Links(None),
            records=tuple(records),
            problem=problem,
        )

    def _snapshot(self, status: Status) -> Snapshot:
        """Return the snapshot *status* was read from: the directory, or its commit."""
        if status.source == str(self.root):
            return DirSnapshot(self.root)
        from opsvault.app import open_repo

        repo = open_repo(self.root)
        return CommitSnapshot(repo, repo.resolve(status.source))


def serve_status(
    root: Path,
    fetch: Callable[[datetime], Status],
    *,
    bind: str,
    port: int,
    announce: Callable[[str], None],
    stop: threading.Event | None = None,
) -> None:
    """Serve the page of *root* until SIGINT/SIGTERM (or *stop*); *announce* gets its URL."""
    metrics = Metrics()
    stop = stop if stop is not None else threading.Event()
    with StatusServer(
        LocalSource(root, fetch, metrics), metrics, bind=bind, port=port
    ) as server:
        announce(server.url)
        if threading.current_thread() is threading.main_thread():
            previous = {
                signum: signal.signal(signum, lambda *_: stop.set())
                for signum in (signal.SIGINT, signal.SIGTERM)
            }
        else:
            previous = {}
        try:
            while not stop.wait(0.2):
                pass
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
