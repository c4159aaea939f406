"""Three replicas, one SIGKILLed in the middle of its batch: still at most once, all recorded.

The replicas are real processes (``_proc_dispatcher``) sharing only the fake
forge and its git repository. The doomed one dies inside the runner while its
batch runs: its claims are on main with no result. The survivors fire
everything else exactly once and, once the doomed claims' deadline passed,
record them as ``interrupted`` — never running a non-idempotent action twice
(ADR 0003; ADR 0013).
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from pathlib import Path

from tests.dispatcher._proc_dispatcher import executions, proc_spec, spawn_dispatcher
from tests.dispatcher.harness import HOOK, T0, Harness

ACTIONS = 24  # http-hook: medium tier, idempotent = false, timeout 2m


def test_a_replica_killed_mid_batch_loses_no_action_and_runs_none_twice(
    vault: Harness, tmp_path: Path
) -> None:
    ids = [f"deploy-web-{i:02d}" for i in range(ACTIONS)]
    for i, action_id in enumerate(ids):
        vault.merge_as("bob", vault.propose(action_id, HOOK.format(n=i)))
    log = tmp_path / "executions.log"

    def replica(name: str, **options: object):  # type: ignore[no-untyped-def]
        spec = proc_spec(
            vault,
            name,
            log,
            T0,
            max_concurrency=4,
            queue_limit=4,  # a tick claims one batch: the doomed one dies holding it
            deadline_seconds=150,
            **options,
        )
        return spawn_dispatcher(spec, tmp_path / f"{name}.json")

    doomed = replica("doomed", kill_at="running", until_idle=True)
    # The survivors start once the doomed replica's claim is on main (it dies
    # inside its first execution), so the kill surely happens mid-batch.
    give_up = time.monotonic() + 90
    while doomed.poll() is None and time.monotonic() < give_up:
        if any(p.endswith(".claim.json") for p in vault.main_files("vault/running")):
            break
        time.sleep(0.05)
    # Each survivor tick moves its clock 2 minutes on: the doomed claims go stale.
    survivors = [
        replica(f"survivor{n}", until_idle=True, step_seconds=120) for n in range(2)
    ]
    _out, err = doomed.communicate(timeout=120)
    assert doomed.returncode == -signal.SIGKILL, err[-2000:]
    for proc in survivors:
        _out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err[-2000:]

    records = {}
    for path in vault.main_files("vault/fired"):
        if path.endswith(".result.json"):
            record = json.loads(vault.main_file(path) or b"{}")
            assert record["id"] not in records, f"{record['id']} recorded twice"
            records[record["id"]] = record["outcome"]
    assert sorted(records) == ids  # every action has exactly one record
    interrupted = {i for i, outcome in records.items() if outcome == "interrupted"}
    assert interrupted  # the doomed replica had claimed a batch when it died
    assert {records[i] for i in set(ids) - interrupted} == {"succeeded"}
    ran = Counter(executions(log))
    assert all(n == 1 for n in ran.values()), ran  # nothing ran twice
    assert {i for i in ids if ran[i] == 1} >= set(ids) - interrupted
    assert [p for p in vault.main_files("vault/actions") if p.endswith(".toml")] == []
    assert vault.main_files("vault/running") == ["vault/running/.gitkeep"]
