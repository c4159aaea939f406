"""Dispatcher replicas as separate processes: does a second and third replica add throughput?

Against the fake Forgejo and real git, 100 low-tier actions are merged (with
the dispatcher's identity and mark, as a low-tier tick would) and then fired
by 1 and by 3 dispatcher processes (``tests/dispatcher/_proc_dispatcher.py``:
each its own bare clone and state_dir, ticking until nothing is left in
``vault/actions`` or ``vault/running``). Every run starts from the same main.

Replicas are long-running services, so a run is timed as one:

- start-up (interpreter, imports, building the App) and shut-down are not
  timed: each process signals it is ready, the clock starts when all are, and
  each writes down when it found nothing left, before it closes down;
- after a tick that committed nothing, a replica waits until main moves on
  the forge, at most ``IDLE_WAIT`` (a service waits for its interval or for the
  push webhook that wakes it; it does not spin on a main other replicas are
  working through);
- every replica's clock is real time from the start, so none calls another's
  claims stale early.

Side by side in one run:

1. instant actions, ``queue_limit`` 100 (and 10 with ``--queue10``);
2. actions that each take 1 s (execution-bound), ``queue_limit`` 100.

Each run prints its wall time, actions per minute, ticks, forge requests,
commits, the CPU seconds of the replicas, any tick errors, and whether every
action ran exactly once. Goals (issue 11): 3 replicas vs 1 >= 1.0x with
instant actions, >= 2.5x with 1 s actions. The numbers are printed, never
asserted.

Run: .venv/bin/python benchmarks/replicas.py [--actions N] [--quick] [--queue10]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from opsvault.git.pygit2_repo import Pygit2OpsRepo  # noqa: E402
from tests.dispatcher._proc_dispatcher import (  # noqa: E402
    executions,
    proc_spec,
    spawn_dispatcher,
)
from tests.dispatcher.harness import NOOP, REPO, T0, Harness, make_harness  # noqa: E402

MAX_CONCURRENCY = 4  # the default: execution slots per replica
IDLE_WAIT = 1.0  # seconds at most; far below any real tick interval


@dataclass(frozen=True, slots=True)
class Run:
    replicas: int
    queue_limit: int
    action_seconds: float
    wall: float
    requests: int
    commits: int  # claim and result commits that won their push
    ticks: int
    exactly_once: bool
    errors: tuple[str, ...]  # what the ticks reported as errors, each once
    cpu: float  # user+system s of the replicas (start-up included) and their git children

    def per_minute(self, actions: int) -> float:
        return actions / self.wall * 60


def merged_vault(root: Path, actions: int) -> tuple[Harness, str]:
    """Return a fake forge whose main holds *actions* merged low-tier actions, and that main."""
    vault = make_harness(root / "forge-home")
    numbers = [
        vault.propose(f"noop-{i:03d}", NOOP.format(msg=f"run {i}"))
        for i in range(actions)
    ]
    for number in numbers:
        vault.wait_for_checks()
        vault.merge_as_dispatcher(number)
    repo = Pygit2OpsRepo.open(vault.forge.repo(REPO).git.path)
    return vault, repo.resolve("refs/heads/main")


def fire(
    vault: Harness,
    main: str,
    root: Path,
    tag: str,
    *,
    replicas: int,
    queue_limit: int,
    action_seconds: float,
    actions: int,
) -> Run:
    """Reset main to *main*, fire everything with *replicas* processes; return the figures."""
    vault.forge.repo(REPO).git.set_ref("refs/heads/main", main)
    run_dir = root / tag
    run_dir.mkdir()
    log = run_dir / "executions.log"
    specs = []
    for n in range(replicas):
        spec = proc_spec(
            vault,
            f"{tag}-replica{n}",
            log,
            T0,
            until_idle=True,
            queue_limit=queue_limit,
            max_concurrency=MAX_CONCURRENCY,
            action_seconds=action_seconds,
            deadline_seconds=240,
            idle_wait=IDLE_WAIT,
            ready_file=str(run_dir / f"ready{n}"),
            go_file=str(run_dir / "go"),
            done_file=str(run_dir / f"done{n}"),
            real_clock=True,
        )
        # Clone before the clock starts: a replica's clone is made once, not per run.
        Pygit2OpsRepo.clone(spec.origin, spec.clone, bare=True)
        specs.append(spec)
    procs = [
        spawn_dispatcher(spec, run_dir / f"replica{n}.json")
        for n, spec in enumerate(specs)
    ]
    while not all(Path(spec.ready_file or "").exists() for spec in specs):
        if any(p.poll() is not None for p in procs):
            raise SystemExit(f"{tag}: a replica exited before it was ready")
        time.sleep(0.01)
    vault.forge.requests.reset()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.time()
    (run_dir / "go").touch()
    outputs = [p.communicate(timeout=300) for p in procs]
    done = [float((run_dir / f"done{n}").read_text()) for n in range(replicas)]
    wall = max(done) - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    requests = vault.forge.requests.total
    commits = ticks = 0
    errors: dict[str, None] = {}
    for proc, (out, err) in zip(procs, outputs, strict=True):
        if proc.returncode != 0:
            raise SystemExit(
                f"{tag}: a replica failed ({proc.returncode}): {err[-2000:]}"
            )
        for line in out.splitlines():
            report = json.loads(line)
            ticks += 1
            commits += int(report["commits"])
            errors.update(dict.fromkeys(report["errors"]))
    ran = Counter(executions(log))
    exactly_once = len(ran) == actions and set(ran.values()) == {1}
    return Run(
        replicas,
        queue_limit,
        action_seconds,
        wall,
        requests,
        commits,
        ticks,
        exactly_once,
        tuple(errors),
        cpu,
    )


def show(run: Run, actions: int) -> None:
    print(
        f"   {run.replicas} replica(s), queue {run.queue_limit:3d}, "
        f"{run.action_seconds:g} s actions: {run.wall:6.2f} s, "
        f"{run.per_minute(actions):7.0f} actions/min, {run.ticks:3d} ticks, "
        f"{run.requests:5d} requests, {run.commits} commits, {run.cpu:5.1f} s CPU, "
        f"exactly once: {'yes' if run.exactly_once else 'NO'}"
    )
    for error in run.errors[:5]:
        print(f"     tick error: {error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--actions", type=int, default=100)
    parser.add_argument(
        "--quick", action="store_true", help="instant actions, queue 100 only"
    )
    parser.add_argument(
        "--queue10", action="store_true", help="also instant actions with queue 10"
    )
    args = parser.parse_args()
    actions: int = args.actions
    cases: list[tuple[str, int, float]] = [("instant", 100, 0.0)]
    if args.queue10:
        cases.append(("instant", 10, 0.0))
    if not args.quick:
        cases.append(("1 s each", 100, 1.0))
    print(f"Replicas: {actions} merged low-tier actions, 1 vs 3 dispatcher processes")
    with tempfile.TemporaryDirectory(prefix="opsvault-bench-") as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        vault, main = merged_vault(root, actions)
        print(
            f"   setup: {actions} PRs proposed and merged in {time.perf_counter() - start:.1f} s"
        )
        try:
            for label, queue, seconds in cases:
                runs = {}
                for replicas in (1, 3):
                    tag = f"{label.replace(' ', '')}-q{queue}-r{replicas}"
                    runs[replicas] = fire(
                        vault,
                        main,
                        root,
                        tag,
                        replicas=replicas,
                        queue_limit=queue,
                        action_seconds=seconds,
                        actions=actions,
                    )
                    show(runs[replicas], actions)
                ratio = runs[3].per_minute(actions) / runs[1].per_minute(actions)
                goal = 2.5 if seconds else 1.0
                print(
                    f"   => {label}, queue {queue}: 3 vs 1 replicas {ratio:.2f}x "
                    f"actions/min (goal >= {goal}x)"
                )
        finally:
            vault.close()


if __name__ == "__main__":
    main()
