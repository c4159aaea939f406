"""The fire phase in rounds (ADR 0022), on real git and the fake Forgejo.

Invariants:
- a replica claims at most its free execution slots per push, and holds at
  most the batch it runs and the one it starts next;
- the claim of the next batch is on main before the running batch ends, and
  the results of a batch land in the push that claims the batch after next
  (or alone, for the last);
- a batch whose start came too late to end before its deadline is not started;
- a claim push that keeps losing leaves no executed result unrecorded.

Time is the app's clock, moved by the runner, so deadlines are decided on
known durations; the batch-size test uses real time (pushes made slower).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from opsvault.app import App
from opsvault.dispatcher.fire import introduced_on
from opsvault.dispatcher.fireplan import FireContext
from opsvault.dispatcher.provenance import introducing_commits
from opsvault.dispatcher.push import CLAIM_ATTEMPTS, Pusher
from opsvault.dispatcher.rounds import next_size
from opsvault.errors import PushRejected
from opsvault.git.base import Identity
from opsvault.git.pygit2_repo import Pygit2OpsRepo
from opsvault.messages import ExecutionRequest, RunResult
from opsvault.timefmt import parse_iso
from tests.conftest import init_repo
from tests.dispatcher.harness import NOOP, REPO, T0, Harness

SLOTS = 2


class Clock:
    """The app's clock: T0 plus whatever the runner and the pushes add."""

    def __init__(self) -> None:
        self.now = T0
        self.lock = threading.Lock()

    def __call__(self):  # type: ignore[no-untyped-def]
        with self.lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.now += timedelta(seconds=seconds)


class TimedRunner:
    """Each execution takes *seconds* on *clock*, and notes what ran.

    With *ahead*, the first batch's executions first wait (in real time, at
    most 10 s) until main holds more claims than one batch: the next batch,
    claimed while this one runs. They note how many claims main held then.
    """

    def __init__(
        self, clock: Clock, seconds: float, vault: Harness, *, ahead: bool = False
    ) -> None:
        self.clock, self.seconds, self.vault, self.ahead = clock, seconds, vault, ahead
        self.ran: list[str] = []
        self.held_at_start: list[int] = []
        self.lock = threading.Lock()

    def execute(self, request: ExecutionRequest) -> RunResult:
        with self.lock:
            first = len(self.held_at_start) < SLOTS
            self.held_at_start.append(0)
        if self.ahead and first:
            give_up = time.monotonic() + 10
            while held(self.vault) <= SLOTS and time.monotonic() < give_up:
                time.sleep(0.01)
            self.held_at_start[-1] = held(self.vault)
        started = self.clock().timestamp()
        self.clock.advance(self.seconds)
        with self.lock:
            self.ran.append(request.action_id)
        return RunResult(
            "succeeded", "ok", 0, None, started, self.clock().timestamp(), "ran\n"
        )


class RefusingPushes:
    """The mainline, refusing claim pushes after the first *refuse_claims_after*."""

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner = inner
        self.refuse_claims_after: int | None = None
        self.claim_pushes = 0

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)

    def publish(self, new: str, old: str) -> None:
        message = self.inner.repo.commit_info(new).message
        if "claimed" in message:
            self.claim_pushes += 1
            limit = self.refuse_claims_after
            if limit is not None and self.claim_pushes > limit:
                raise PushRejected("main", "another replica pushed first")
        self.inner.publish(new, old)


def merged(vault: Harness, count: int) -> list[str]:
    ids = [f"noop-{i:02d}" for i in range(count)]
    for action_id in ids:
        number = vault.propose(action_id, NOOP.format(msg=f"run {action_id}"))
        vault.wait_for_checks()
        vault.merge_as_dispatcher(number)
    return ids


def app_with(
    vault: Harness, clock: Clock, runner: TimedRunner
) -> tuple[App, RefusingPushes]:
    app = vault.app(max_concurrency=SLOTS)
    app.clock = clock
    app.runner = runner
    slow = RefusingPushes(app.mainline)
    app.mainline = slow
    return app, slow


def history(vault: Harness, since: str) -> list[tuple[str, Counter[str]]]:
    """Main's commits after *since*, oldest first: (message, added files per kind)."""
    repo = Pygit2OpsRepo.open(vault.forge.repo(REPO).git.path)
    commits = []
    commit = repo.resolve("refs/heads/main")
    while commit != since:
        info = repo.commit_info(commit)
        parent = info.parents[0]
        kinds: Counter[str] = Counter()
        for change in repo.changed_files(parent, commit):
            if change.kind.name == "DELETED":
                continue
            if change.path.endswith(".claim.json"):
                kinds["claims"] += 1
            elif change.path.endswith(".result.json"):
                kinds["results"] += 1
        commits.append((info.message, kinds))
        commit = parent
    return commits[::-1]


def main_sha(vault: Harness) -> str:
    repo = Pygit2OpsRepo.open(vault.forge.repo(REPO).git.path)
    return repo.resolve("refs/heads/main")


def held(vault: Harness) -> int:
    return len(
        [p for p in vault.main_files("vault/running") if p.endswith(".claim.json")]
    )


def test_a_replica_claims_its_free_slots_and_the_next_batch_while_one_runs(
    vault: Harness,
) -> None:
    ids = merged(vault, 5)
    clock = Clock()
    runner = TimedRunner(clock, 20, vault, ahead=True)
    app, _ = app_with(vault, clock, runner)
    before = main_sha(vault)

    report = vault.tick(app)

    assert sorted(runner.ran) == ids
    commits = history(vault, before)
    claimed = [kinds["claims"] for _, kinds in commits if kinds["claims"]]
    assert claimed == [2, 2, 1]  # never more than the free slots per push
    assert sum(kinds["results"] for _, kinds in commits) == 5
    # While the first batch ran, main held it and the next one: 2 x slots.
    assert max(runner.held_at_start) == 2 * SLOTS
    assert held(vault) == 0
    events = Counter(d.event for d in report.decisions)
    assert events["claimed"] == 5 and events["succeeded"] == 5
    assert "deferred" not in events  # earlier rounds' deferrals are not reported


def test_the_batch_claimed_ahead_has_a_deadline_that_allows_for_its_wait(
    vault: Harness,
) -> None:
    merged(vault, 4)
    clock = Clock()
    runner = TimedRunner(clock, 20, vault, ahead=True)
    app, _ = app_with(vault, clock, runner)
    vault.tick(app)

    spans = sorted(
        parse_iso(record["deadline"]) - parse_iso(record["claimed_at"])
        for record in claim_records(vault)
    )
    timeout, grace = timedelta(seconds=30), timedelta(minutes=5)  # noop's formula
    # The first batch: one round of its timeout, one more, the grace; the batch
    # claimed ahead also allows for the running batch's timeout before it starts.
    assert spans == [2 * timeout + grace] * 2 + [3 * timeout + grace] * 2


def claim_records(vault: Harness) -> list[dict[str, str]]:
    """Every claim record main ever held (read from history: the claims are gone now)."""
    repo = Pygit2OpsRepo.open(vault.forge.repo(REPO).git.path)
    found: dict[str, dict[str, str]] = {}
    commit = repo.resolve("refs/heads/main")
    for _ in range(50):
        info = repo.commit_info(commit)
        if not info.parents:
            break
        for change in repo.changed_files(info.parents[0], commit):
            if change.path.endswith(".claim.json") and change.kind.name != "DELETED":
                record = json.loads(repo.read_file(commit, change.path) or b"{}")
                found.setdefault(record["id"], record)
        commit = info.parents[0]
    return list(found.values())


def test_batches_grow_while_they_run_faster_than_pushes_land(vault: Harness) -> None:
    """Real time here: pushes take 0.3 s more, instant executions take far less."""
    ids = merged(vault, 12)
    runner = TimedRunner(Clock(), 0, vault)
    app = vault.app(max_concurrency=SLOTS)
    app.runner = runner
    publish = app.mainline.publish

    def slow_publish(new: str, expected_old: str) -> None:
        time.sleep(0.3)
        publish(new, expected_old)

    app.mainline.publish = slow_publish  # type: ignore[method-assign]
    before = main_sha(vault)

    vault.tick(app)

    assert sorted(runner.ran) == ids
    claimed = [
        kinds["claims"] for _, kinds in history(vault, before) if kinds["claims"]
    ]
    assert claimed == [2, 2, 8]


def test_a_lost_push_waits_about_as_long_as_the_attempt_took() -> None:
    waited: list[float] = []
    pusher = Pusher(None, None, "vault-bot", str, waited.append, lambda: 0.25)  # type: ignore[arg-type]
    pusher.back_off(0.2)
    assert waited == [pytest.approx(0.15)]


def test_the_next_size_is_the_free_slots_unless_batches_outrun_pushes() -> None:
    assert next_size(4, 4, 100, ran_in=1.0, pushed_in=0.2) == 4
    assert next_size(4, 4, 100, ran_in=0.1, pushed_in=0.2) == 4  # not 4x faster
    assert next_size(16, 4, 100, ran_in=1.0, pushed_in=0.2) == 4
    assert next_size(4, 4, 100, ran_in=0.0, pushed_in=0.2) == 16
    assert next_size(64, 4, 100, ran_in=0.0, pushed_in=0.2) == 100


def test_a_batch_that_would_start_after_its_deadline_allows_is_not_started(
    vault: Harness,
) -> None:
    merged(vault, 4)
    clock = Clock()
    # The first batch overruns its formula's timeout (a runner that broke its
    # contract: 2 x 200 s against 30 s): the batch claimed meanwhile, whose
    # deadline allows a wait of one timeout plus the grace, can no longer end in time.
    runner = TimedRunner(clock, 200, vault, ahead=True)
    app, _ = app_with(vault, clock, runner)

    report = vault.tick(app)

    assert len(runner.ran) == 2
    late = [d for d in report.decisions if d.event == "late"]
    assert len(late) == 2 and all("deadline" in d.detail for d in late)
    assert held(vault) == 2  # still claimed: recovered after their deadline
    results = [p for p in vault.main_files("vault/fired") if p.endswith(".result.json")]
    assert len(results) == 2


def test_a_claim_push_that_keeps_losing_leaves_no_result_unrecorded(
    vault: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    merged(vault, 6)
    clock = Clock()
    runner = TimedRunner(clock, 60, vault)
    app, pushes = app_with(vault, clock, runner)
    pushes.refuse_claims_after = 1  # the first claim lands, every later one loses
    execute = runner.execute

    def busy_until_the_next_claim_lost(request: ExecutionRequest) -> RunResult:
        # The first batch runs until the claim pushed beside it lost every attempt.
        give_up = time.monotonic() + 10
        while pushes.claim_pushes <= CLAIM_ATTEMPTS and time.monotonic() < give_up:
            time.sleep(0.01)
        return execute(request)

    runner.execute = busy_until_the_next_claim_lost  # type: ignore[method-assign]
    pauses: list[float] = []
    monkeypatch.setattr(Pusher, "back_off", lambda self, took: pauses.append(took))

    report = vault.tick(app)

    # While its batch ran the replica retried at once; the fresh claim after
    # recording it, with nothing running, backed off before each new attempt.
    # (the last lost attempt may see the batch just ended)
    assert CLAIM_ATTEMPTS <= len(pauses) <= CLAIM_ATTEMPTS + 1
    assert all(p >= 0 for p in pauses)
    assert len(runner.ran) == SLOTS
    results = [p for p in vault.main_files("vault/fired") if p.endswith(".result.json")]
    assert len(results) == SLOTS
    assert held(vault) == 0
    assert any(d.event == "contended" for d in report.decisions)
    waiting = [p for p in vault.main_files("vault/actions") if p.endswith(".toml")]
    assert len(waiting) == 6 - SLOTS


def test_introductions_found_on_a_commit_that_lost_its_push_match_a_full_walk(
    tmp_path: Path,
) -> None:
    """A round plans on its own unpushed results commit; the push loses to another
    replica's commit that re-adds an action: the memo must give what a walk gives."""
    init_repo(tmp_path / "r", {"README": "x"})
    repo = Pygit2OpsRepo.open(tmp_path / "r")
    who = Identity("t", "t@example.org")
    main = repo.resolve("refs/heads/main")
    for name in ("a", "b", "c"):
        main = repo.commit_files(
            main, {f"vault/actions/{name}.toml": name.encode()}, name, who
        )
    paths = [f"vault/actions/{n}.toml" for n in ("a", "b", "c")]
    ctx = FireContext(repo, None, None, "vault-bot", "t", T0, 10, {})  # type: ignore[arg-type]
    ours = repo.commit_files(main, {"vault/running/x.toml": b"x"}, "ours, lost", who)
    assert introduced_on(ctx, ours, paths) == introducing_commits(repo, ours, paths)
    # Another replica's commits won: one deletes b, one adds it again.
    theirs = repo.commit_files(main, {"vault/actions/b.toml": None}, "claim b", who)
    theirs = repo.commit_files(theirs, {"vault/actions/b.toml": b"b2"}, "b again", who)
    diffs: list[str] = []
    changed_files = repo.changed_files

    def counted(base: str, head: str):  # type: ignore[no-untyped-def]
        diffs.append(head)
        return changed_files(base, head)

    repo.changed_files = counted  # type: ignore[method-assign]
    memo = introduced_on(ctx, theirs, paths)
    assert len(diffs) == 2  # only their two commits were walked, not the history
    repo.changed_files = changed_files  # type: ignore[method-assign]
    assert memo == introducing_commits(repo, theirs, paths)
    assert memo["vault/actions/b.toml"] == theirs


def test_a_ticks_first_claim_tries_twice_as_often_before_it_gives_up(
    vault: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every replica woken by one push meets the others at its first claim."""
    merged(vault, 3)
    clock = Clock()
    runner = TimedRunner(clock, 1, vault)
    app, pushes = app_with(vault, clock, runner)
    pushes.refuse_claims_after = 0
    monkeypatch.setattr(Pusher, "back_off", lambda self, took: None)

    report = vault.tick(app)

    assert runner.ran == [] and pushes.claim_pushes == 2 * CLAIM_ATTEMPTS
    contended = [d for d in report.decisions if d.event == "contended"]
    assert len(contended) == 1 and f"{2 * CLAIM_ATTEMPTS} times" in contended[0].detail
