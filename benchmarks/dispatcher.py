"""Dispatcher tick cost against the fake Forgejo, measured side by side in one run.

Prints:
1. an idle tick (forge requests, wall time) with 10 and with 500 open, untouched
   medium-tier PRs, after earlier ticks have classified them;
2. tick time with 10 and with 10,000 archived records in ``vault/fired``
   (an idle tick, and a tick that merges and fires one low-tier action), and
   the ratios;
3. with ``--batch N``: N low-tier proposals processed by one dispatcher: ticks,
   forge requests, commits, and time per action (not part of ``make bench``:
   one merge per tick, as Forgejo re-checks every PR after main moves).

Goals (issue 11; DESIGN.md "Performance and scale"): idle tick requests
constant in the open-PR count and in history (<= 3); idle tick 500 vs 10
open PRs <= 1.3x; the tick that fires one action, 10,000 vs 10 archived
records <= 1.5x. The numbers are printed, never asserted.

Run: .venv/bin/python benchmarks/dispatcher.py [--batch N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from opsvault.app import App  # noqa: E402
from opsvault.dispatcher.report import TickReport  # noqa: E402
from opsvault.dispatcher.tick import tick  # noqa: E402
from tests.dispatcher.harness import (  # noqa: E402
    HOOK,
    NOOP,
    REPO,
    T0,
    Harness,
    make_harness,
)

IDLE_REPEATS = 5
HISTORY_REPEATS = 3
OPEN_PRS = (10, 500)
HISTORY = (10, 10_000)


class Clock:
    """The fake forge's clock; each tick runs with the forge at the tick's `now`."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Bench:
    def __init__(self, root: Path, name: str) -> None:
        self.vault: Harness = make_harness(root / name)
        self.clock = Clock()
        self.vault.forge.clock = self.clock
        self.app: App = self.vault.app("d1")
        self.minutes = 0
        self.proposed = 0

    def tick(self) -> tuple[TickReport, float, int]:
        """Tick one minute later; return the report, wall seconds and server-side requests."""
        self.minutes += 1
        now = T0 + timedelta(minutes=self.minutes)
        self.clock.now = now
        self.vault.forge.requests.reset()
        start = time.perf_counter()
        report = tick(self.app, now)
        elapsed = time.perf_counter() - start
        if report.errors:
            raise SystemExit(f"tick failed: {report.errors}")
        return report, elapsed, self.vault.forge.requests.total

    def close(self) -> None:
        self.vault.close()


def breakdown(vault: Harness) -> str:
    """Return the last tick's server-side requests per endpoint, per PR/action scale."""
    counts = vault.forge.requests.snapshot()
    return ", ".join(
        f"{key.replace('/repos/{owner}/{repo}', '')} {n}"
        for key, n in sorted(counts.items(), key=lambda kv: -kv[1])
    )


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def interleaved(
    benches: dict[int, Bench], repeats: int, step: Callable[[Bench], float]
) -> dict[int, list[float]]:
    """Run *step* on each bench in turn, *repeats* rounds, so both see the same machine."""
    times: dict[int, list[float]] = {n: [] for n in benches}
    for _ in range(repeats):
        for n, bench in benches.items():
            times[n].append(step(bench))
    return times


# -- 1. idle tick against open PRs ----------------------------------------------------


def idle_with_open_prs(root: Path) -> None:
    print("1. Idle tick with open, untouched medium-tier PRs")
    benches: dict[int, Bench] = {}
    for n in OPEN_PRS:
        bench = Bench(root, f"open-{n}")
        bench.vault.forge.create_pulls_bulk(
            REPO,
            n,
            author="dev-bot",
            files={"vault/actions/bulk-deploy.toml": HOOK.format(n=1)},
            branch_prefix="vault/bulk-",
        )
        benches[n] = bench
        _first, t1, r1 = bench.tick()  # classify and publish every PR
        first_counts = breakdown(bench.vault) if n == OPEN_PRS[-1] else ""
        _second, t2, r2 = bench.tick()  # lists again what the first tick updated
        print(
            f"   {n:4d} PRs: first tick {r1:5d} requests {ms(t1)}; "
            f"second tick {r2:4d} requests {ms(t2)}"
        )
        if first_counts:
            print(f"     first tick by endpoint: {first_counts}")
    requests: dict[int, list[int]] = {n: [] for n in benches}

    def idle(bench: Bench) -> float:
        report, elapsed, served = bench.tick()
        assert report.forge_requests == served
        requests[len(bench.vault.forge.repo(REPO).issues)].append(served)
        return elapsed

    times = interleaved(benches, IDLE_REPEATS, idle)
    listing = interleaved(benches, IDLE_REPEATS, listing_alone)
    for n in OPEN_PRS:
        print(
            f"   {n:4d} PRs: idle tick {statistics.median(requests[n]):3.0f} request(s), "
            f"median {ms(statistics.median(times[n]))} over {IDLE_REPEATS}; "
            f"the listing alone {ms(statistics.median(listing[n]))}"
        )
    small, large = (statistics.median(times[n]) for n in OPEN_PRS)
    print(
        f"   => idle tick {OPEN_PRS[1]} vs {OPEN_PRS[0]} open PRs: {large / small:.2f}x "
        "(goal <= 1.3x)"
    )
    rest = [
        statistics.median(times[n]) - statistics.median(listing[n]) for n in OPEN_PRS
    ]
    print(
        f"   => without the fake forge's listing (it syncs and sorts every PR): "
        f"{rest[1] / rest[0]:.2f}x"
    )
    for bench in benches.values():
        bench.close()


def listing_alone(bench: Bench) -> float:
    """Time the one request of an idle tick, sent by hand: the forge's share of the tick.

    It is what the client sends when a watermark is set: the one most recently
    updated PR (``ForgejoClient._nothing_since``), which the fake answers after
    syncing every PR with its branch and sorting them all.
    """
    client = httpx.Client(
        base_url=bench.vault.forge.url,
        headers={"Authorization": f"token {bench.vault.tokens[bench.vault.identity]}"},
    )
    with client:
        start = time.perf_counter()
        response = client.get(
            f"/api/v1/repos/{REPO}/pulls",
            params={"state": "all", "sort": "recentupdate", "page": 1, "limit": 1},
        )
        response.json()
        return time.perf_counter() - start


# -- 2. history ---------------------------------------------------------------------


def archive_files(count: int) -> dict[str, str | bytes | None]:
    files: dict[str, str | bytes | None] = {}
    for i in range(count):
        year, month = 2024 + (i % 24) // 12, (i % 12) + 1
        action_id = f"old-{i:05d}"
        folder = f"vault/fired/{year}/{month:02d}"
        files[f"{folder}/{action_id}.toml"] = NOOP.format(msg=f"old {i}")
        files[f"{folder}/{action_id}.result.json"] = (
            json.dumps({"id": action_id, "outcome": "succeeded", "reason": "ok"}) + "\n"
        )
    return files


def history(root: Path) -> None:
    print("2. Tick time against history in vault/fired")
    benches: dict[int, Bench] = {}
    for n in HISTORY:
        bench = Bench(root, f"history-{n}")
        start = time.perf_counter()
        bench.vault.forge.push(
            REPO, "main", archive_files(n), author="alice", message="archive"
        )
        print(
            f"   wrote {n} records in one commit in {ms(time.perf_counter() - start)}"
        )
        bench.tick()
        bench.tick()
        benches[n] = bench

    def idle(bench: Bench) -> float:
        return bench.tick()[1]

    def busy(bench: Bench) -> float:
        bench.proposed += 1
        bench.vault.propose(f"fresh-{bench.proposed}", NOOP.format(msg="fresh"))
        report, elapsed, _served = bench.tick()
        fired = [d for d in report.decisions if d.event == "succeeded"]
        assert len(fired) == 1, report.decisions
        return elapsed

    idle_times = interleaved(benches, IDLE_REPEATS, idle)
    busy_times = interleaved(benches, HISTORY_REPEATS, busy)
    for label, times in (
        ("idle tick", idle_times),
        ("one low-tier action", busy_times),
    ):
        small, large = (statistics.median(times[n]) for n in HISTORY)
        print(
            f"   {label:20s}: {HISTORY[0]} records {ms(small)}, "
            f"{HISTORY[1]} records {ms(large)}"
        )
        goal = " (goal <= 1.5x)" if times is busy_times else ""
        print(
            f"   => {label}, {HISTORY[1]} vs {HISTORY[0]} records: "
            f"{large / small:.2f}x{goal}"
        )
    for bench in benches.values():
        bench.close()


# -- 3. many low-tier proposals -----------------------------------------------------


def low_tier_batch(root: Path, proposals: int) -> None:
    print(f"3. {proposals} low-tier proposals processed by one dispatcher")
    bench = Bench(root, "batch")
    for i in range(proposals):
        bench.vault.propose(f"batch-{i:03d}", NOOP.format(msg=f"run {i}"))
    total_requests = total_commits = 0
    total_time = 0.0
    fired = 0
    for n in range(1, proposals + 20):
        report, elapsed, served = bench.tick()
        events = Counter(d.event for d in report.decisions)
        total_requests += served
        total_commits += report.commits
        total_time += elapsed
        fired += events["succeeded"]
        print(
            f"   tick {n}: {served:5d} requests, {report.commits} commit(s), "
            f"{ms(elapsed)}; merged {events['merged']}, claimed {events['claimed']}, "
            f"succeeded {events['succeeded']}, deferred {events['deferred']}"
        )
        print(f"     by endpoint: {breakdown(bench.vault)}")
        if fired >= proposals:
            break
    print(
        f"   total: {fired} fired, {total_requests} requests "
        f"({total_requests / fired:.1f}/action), {total_commits} commits "
        f"({total_commits / fired:.3f}/action), {ms(total_time)} "
        f"({ms(total_time / fired).strip()}/action)"
    )
    bench.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--batch",
        type=int,
        default=0,
        metavar="N",
        help="also process N low-tier proposals with one dispatcher",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="opsvault-bench-") as tmp:
        root = Path(tmp)
        idle_with_open_prs(root)
        history(root)
        if args.batch:
            low_tier_batch(root, args.batch)


if __name__ == "__main__":
    main()
