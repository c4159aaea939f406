"""Several dispatcher replicas on one ops repo: every action fires exactly once.

The replicas are real processes (``_proc_dispatcher``), each with its own bare
clone and state_dir and the same forge identity; the only thing they share is
the forge and its git repository, so the git push of a claim is the only
thing that can keep two of them from running the same action.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from opsvault.audit.verify import verify
from opsvault.dispatcher.runner import RecordingRunner
from opsvault.dispatcher.tick import tick
from opsvault.git.pygit2_repo import Pygit2OpsRepo
from tests.dispatcher._proc_dispatcher import executions, proc_spec, spawn_dispatcher
from tests.dispatcher.harness import NOOP, REPO, T0, Harness

REPLICAS = 3
# Enough actions that every replica claims in several ticks and the three race
# for the same ones each round (queue limit x replicas < actions), no more.
ACTIONS = 24
QUEUE_LIMIT = 4  # claims per tick: the replicas take turns over several rounds
# Workers per replica: each tick's claims run in one round.
SLOTS = QUEUE_LIMIT


def merge_as_dispatcher(vault: Harness, numbers: list[int]) -> None:
    """Merge *numbers* as the dispatcher's identity, as a low-tier merge would."""
    for number in numbers:
        vault.wait_for_checks()  # each merge moves main: the others are re-checked
        vault.merge_as_dispatcher(number)


def results_by_id(vault: Harness, family: str) -> Counter[str]:
    return Counter(
        json.loads(vault.main_file(path) or b"{}")["id"]
        for path in vault.main_files(family)
        if path.endswith(".result.json")
    )


def test_three_dispatcher_processes_fire_each_of_24_actions_exactly_once(
    vault: Harness, tmp_path: Path
) -> None:
    ids = [f"noop-{i:02d}" for i in range(ACTIONS)]
    numbers = [vault.propose(i, NOOP.format(msg=f"run {i}")) for i in ids]
    merge_as_dispatcher(vault, numbers)
    log = tmp_path / "executions.log"

    procs = [
        spawn_dispatcher(
            proc_spec(
                vault,
                f"replica{n}",
                log,
                T0,
                until_idle=True,
                queue_limit=QUEUE_LIMIT,
                max_concurrency=SLOTS,
                deadline_seconds=45,
            ),
            tmp_path / f"replica{n}.json",
        )
        for n in range(REPLICAS)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-2000:]

    ran = Counter(executions(log))
    assert sorted(ran) == ids
    assert set(ran.values()) == {1}, {i: n for i, n in ran.items() if n != 1}
    fired = results_by_id(vault, "vault/fired")
    assert sorted(fired) == ids and set(fired.values()) == {1}
    archived = Counter(
        p.rsplit("/", 1)[1]
        for p in vault.main_files("vault/fired")
        if p.endswith(".toml")
    )
    assert sorted(archived) == [f"{i}.toml" for i in ids]
    assert set(archived.values()) == {1}
    assert results_by_id(vault, "vault/rejected") == Counter()
    assert [p for p in vault.main_files("vault/actions") if p.endswith(".toml")] == []
    assert vault.main_files("vault/running") == ["vault/running/.gitkeep"]
    for path in vault.main_files("vault/fired"):
        if path.endswith(".result.json"):
            record = json.loads(vault.main_file(path) or b"{}")
            assert (record["outcome"], record["attempt"]) == ("succeeded", 1), record
    # Every claim a replica made was one it executed and recorded.
    claimed = Counter(
        d["subject"].removeprefix("action:")
        for out, _err in outputs
        for line in out.splitlines()
        for d in json.loads(line)["decisions"]
        if d["event"] == "claimed"
    )
    assert claimed == ran
    # The replicas' records form one linear chain (ADR 0021): each push was
    # sealed on the base it was pushed over, a lost race sealed again.
    audit = verify(
        Pygit2OpsRepo.open(vault.forge.repo(REPO).git.path),
        "main",
        identity="vault-bot",
    )
    assert audit.ok, [b.render() for b in audit.breaks]
    assert audit.chained == audit.records == 2 * ACTIONS


def test_actions_merged_by_someone_else_cost_one_closed_listing_per_tick(
    vault: Harness,
) -> None:
    """Regression: provenance listed every closed PR once per action it had not merged itself."""
    numbers = [vault.propose(f"noop-{i}", NOOP.format(msg=str(i))) for i in range(5)]
    merge_as_dispatcher(vault, numbers)
    vault.forge.requests.reset()
    report = tick(vault.app("fresh"), T0)
    assert report.ok, report.errors
    listings = vault.forge.requests.snapshot()["GET /repos/{owner}/{repo}/pulls"]
    # open PRs (no watermark yet), then closed ones once: the newest closed PR
    # alone (is anything newer than the merges?), then the listing
    assert listings == 3
    runner = vault.runner
    assert isinstance(runner, RecordingRunner)
    assert len(runner.requests) == 5
