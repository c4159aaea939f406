"""Merge → fire latency with webhooks against polling, and idle-tick requests, in one run.

Against the fake Forgejo (which delivers signed webhooks like Forgejo v15), a
real dispatcher service (``run_service``) and real git:

1. merge → fire latency: a reviewer merges a medium PR in the forge; the time
   until the action is executed. Side by side, sample by sample:
   - webhooks: the service ticks every hour, the receiver wakes it;
   - polling: no receiver, the service ticks every ``--interval`` seconds
     (the configured interval; expect about half of it on average).
2. forge requests of an idle tick with 10 and with 500 open medium PRs, after
   earlier ticks have classified them (the tick is the same with or without
   webhooks: a delivery only wakes it sooner).

Goals (issue 9 §3): webhook latency <= 2 s; idle tick <= 3 requests.
The numbers are printed, never asserted.

Run: .venv/bin/python benchmarks/webhooks.py [--samples N] [--interval SECONDS]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from opsvault.app import App  # noqa: E402
from opsvault.config import DispatcherSettings  # noqa: E402
from opsvault.dispatcher.runner import RecordingRunner  # noqa: E402
from opsvault.dispatcher.service import run_service  # noqa: E402
from opsvault.dispatcher.tick import tick  # noqa: E402
from opsvault.dispatcher.webhooks import WebhookReceiver  # noqa: E402
from tests.dispatcher.harness import HOOK, REPO, Harness, make_harness  # noqa: E402

SECRET = "benchmark-webhook-secret-0123456789"
OPEN_PRS = (10, 500)
IDLE_REPEATS = 5


class Service:
    """A dispatcher service in a thread, with or without a webhook receiver."""

    def __init__(self, root: Path, name: str, interval: float, webhook: bool) -> None:
        self.vault: Harness = make_harness(root / name)
        self.app: App = self.vault.app("d1")
        self.receiver = (
            WebhookReceiver(
                secret=SECRET.encode(),
                repo=REPO,
                nudges=self.app.nudges,
                identity=self.app.identity,
            )
            if webhook
            else None
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=run_service,
            args=(self.app, timedelta(seconds=interval)),
            kwargs={
                "stop": self.stop,
                "install_signals": False,
                "clock": lambda: self.vault.now[0],
                "webhook": self.receiver,
            },
            daemon=True,
        )
        self.proposed = 0

    def start(self) -> None:
        self.thread.start()
        if self.receiver is None:
            return
        while self.receiver._server is None:
            time.sleep(0.01)
        host, port = self.receiver.address
        reply = httpx.post(
            f"{self.vault.forge.api_url}/repos/{REPO}/hooks",
            headers={"Authorization": f"token {self.vault.tokens['alice']}"},
            json={
                "type": "forgejo",
                "config": {
                    "url": f"http://{host}:{port}/webhook",
                    "content_type": "json",
                    "secret": SECRET,
                },
                "events": ["pull_request"],
                "active": True,
            },
        )
        reply.raise_for_status()

    def executed(self) -> int:
        runner = self.vault.runner
        assert isinstance(runner, RecordingRunner)
        return len(runner.requests)

    def sample(self) -> float:
        """Propose a medium action, let a tick classify it, merge it; return merge → fire seconds."""
        self.proposed += 1
        number = self.vault.propose(
            f"deploy-{self.proposed}", HOOK.format(n=self.proposed)
        )
        self.vault.at(timedelta(minutes=self.proposed * 10))
        done = self.executed()
        # Classified; a serial tick, like the service's.
        tick(self.app, self.vault.now[0])
        self.vault.at(timedelta(minutes=self.proposed * 10 + 1))
        started = time.monotonic()
        self.vault.merge_as("bob", number)
        while self.executed() == done:
            if time.monotonic() - started > 600:
                raise SystemExit("no fire within 10 minutes")
            time.sleep(0.005)
        return time.monotonic() - started

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=60)
        self.vault.close()


def seconds(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):6.2f} s, "
        f"max {max(values):6.2f} s, min {min(values):6.2f} s"
    )


def latency(root: Path, samples: int, interval: float) -> None:
    print(f"1. Merge -> fire latency, {samples} samples each, interleaved")
    hooked = Service(root, "webhooks", 3600.0, webhook=True)
    polled = Service(root, "polling", interval, webhook=False)
    try:
        hooked.start()
        polled.start()
        times: dict[str, list[float]] = {"webhooks": [], "polling": []}
        for _ in range(samples):
            times["webhooks"].append(hooked.sample())
            times["polling"].append(polled.sample())
        print(f"   webhooks (interval 1h):      {seconds(times['webhooks'])}")
        print(f"   polling  (interval {interval:g}s): {seconds(times['polling'])}")
        print(
            "   (each polled merge follows a tick closely, so it waits about one "
            "interval: near the worst case; a random merge waits half on average)"
        )
        assert hooked.receiver is not None
        print(
            f"   receiver: {hooked.receiver.accepted} deliveries woke a tick, "
            f"{hooked.receiver.refused} refused (the dispatcher's own events wake none)"
        )
    finally:
        hooked.close()
        polled.close()


def idle_requests(root: Path) -> None:
    print("2. Forge requests per idle tick with open, untouched medium PRs")
    benches: dict[int, tuple[Harness, App]] = {}
    for n in OPEN_PRS:
        vault = make_harness(root / f"open-{n}")
        vault.forge.create_pulls_bulk(
            REPO,
            n,
            author="dev-bot",
            files={"vault/actions/bulk-deploy.toml": HOOK.format(n=1)},
            branch_prefix="vault/bulk-",
        )
        benches[n] = (vault, vault.app("d1"))
    minutes = [0]

    def idle(vault: Harness, app: App) -> tuple[int, float]:
        minutes[0] += 1
        vault.at(timedelta(minutes=minutes[0]))
        vault.forge.requests.reset()
        start = time.perf_counter()
        report = tick(app, vault.now[0])
        elapsed = time.perf_counter() - start
        if report.errors:
            raise SystemExit(f"tick failed: {report.errors}")
        return vault.forge.requests.total, elapsed

    for n, (vault, app) in benches.items():
        first, t1 = idle(vault, app)
        second, t2 = idle(vault, app)
        print(
            f"   {n:4d} PRs: first tick {first:5d} requests ({t1 * 1000:.0f} ms), "
            f"second {second:4d} ({t2 * 1000:.0f} ms)"
        )
    results: dict[int, list[tuple[int, float]]] = {n: [] for n in benches}
    step: Callable[[Harness, App], tuple[int, float]] = idle
    for _ in range(IDLE_REPEATS):
        for n, (vault, app) in benches.items():
            results[n].append(step(vault, app))
    for n in OPEN_PRS:
        counts = [r for r, _t in results[n]]
        times = [t for _r, t in results[n]]
        print(
            f"   {n:4d} PRs: idle tick {statistics.median(counts):3.0f} request(s), "
            f"median {statistics.median(times) * 1000:.1f} ms over {IDLE_REPEATS}"
        )
    for vault, _app in benches.values():
        vault.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument(
        "--interval",
        type=float,
        default=DispatcherSettings().interval.total_seconds(),
        help="polling interval in seconds; default dispatcher.interval's default (30)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # e.g. APScheduler's missed-start notes
    with tempfile.TemporaryDirectory(prefix="opsvault-bench-") as tmp:
        root = Path(tmp)
        latency(root, args.samples, args.interval)
        idle_requests(root)


if __name__ == "__main__":
    main()
