"""A dispatcher SIGKILLed between claim and result: at most once, and an honest record.

The doomed dispatcher runs in its own process (``_proc_dispatcher``) and kills
itself at a checkpoint ("claimed", "executed", "recorded") or inside the
runner ("running"). A second dispatcher then ticks in this process, before and
after the claim's deadline. Every execution lands in a shared log before any
kill can happen, so the log counts what may have had a side effect.
"""

from __future__ import annotations

import json
import signal
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from opsvault.app import App
from opsvault.dispatcher.report import TickReport
from opsvault.dispatcher.tick import tick
from opsvault.timefmt import parse_iso
from tests.dispatcher._proc_dispatcher import (
    AppendingRunner,
    executions,
    proc_spec,
    spawn_dispatcher,
)
from tests.dispatcher.harness import HOOK, NOOP, T0, Harness
from tests.dispatcher.local_harness import both_forges

HOOK_ID = "deploy-web-1"  # http-hook: medium tier, idempotent = false
NOOP_ID = "noop-smoke-1"  # noop: low tier, idempotent = true

pytestmark = both_forges  # a SIGKILL is survived the same way on either forge


def run_until_killed(vault: Harness, tmp_path: Path, kill_at: str) -> None:
    vault.wait_for_checks()  # the doomed dispatcher merges: Forgejo's check has run
    spec = proc_spec(vault, "doomed", tmp_path / "executions.log", T0, kill_at=kill_at)
    proc = spawn_dispatcher(spec, tmp_path / "doomed.json")
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err[-2000:]


def survivor(vault: Harness, tmp_path: Path) -> App:
    app = vault.app("survivor")
    app.runner = AppendingRunner(tmp_path / "executions.log")
    return app


def claim_deadline(vault: Harness, action_id: str) -> datetime:
    data = json.loads(vault.main_file(f"vault/running/{action_id}.claim.json") or b"")
    return parse_iso(data["deadline"])


def record_of(vault: Harness, action_id: str) -> dict[str, Any]:
    paths = [
        p
        for p in vault.main_files("vault/fired")
        if p.endswith(f"/{action_id}.result.json")
    ]
    assert len(paths) == 1, paths
    record: dict[str, Any] = json.loads(vault.main_file(paths[0]) or b"")
    return record


def nothing_left(vault: Harness) -> bool:
    return not [
        p
        for prefix in ("vault/actions", "vault/running")
        for p in vault.main_files(prefix)
        if p.endswith((".toml", ".json"))
    ]


def events(report: TickReport, action_id: str) -> list[str]:
    return [d.event for d in report.decisions if d.subject == f"action:{action_id}"]


def merged_hook(vault: Harness) -> int:
    number = vault.propose(HOOK_ID, HOOK.format(n=1))
    vault.merge_as("bob", number)  # a reviewer: eligible for medium tier
    return number


@pytest.mark.parametrize(
    ("kill_at", "ran_before_kill"),
    [("claimed", 0), ("running", 1), ("executed", 1)],
)
def test_non_idempotent_action_killed_before_its_result_is_never_run_again(
    vault: Harness, tmp_path: Path, kill_at: str, ran_before_kill: int
) -> None:
    number = merged_hook(vault)
    run_until_killed(vault, tmp_path, kill_at)
    log = tmp_path / "executions.log"
    assert executions(log) == [HOOK_ID] * ran_before_kill
    deadline = claim_deadline(vault, HOOK_ID)
    app = survivor(vault, tmp_path)

    early = tick(app, deadline - timedelta(seconds=1))  # the claim is still live
    assert early.ok, early.errors
    assert events(early, HOOK_ID) == [] and early.commits == 0
    assert vault.main_file(f"vault/running/{HOOK_ID}.toml") is not None

    late = tick(app, deadline + timedelta(seconds=1))
    assert late.ok, late.errors
    assert events(late, HOOK_ID) == ["interrupted"]
    assert executions(log) == [HOOK_ID] * ran_before_kill
    record = record_of(vault, HOOK_ID)
    assert (record["outcome"], record["reason"]) == ("interrupted", "claim-expired")
    assert record["attempt"] == 1
    assert record["formula"] == "http-hook"
    assert (record["tier"], record["approver"], record["pr"]) == (
        "medium",
        "bob",
        number,
    )
    assert record["proposer"] == "dev-bot"
    assert record["exit_code"] is None and record["started_at"] is None
    assert "claimed by vault-bot/" in record["detail"]
    assert nothing_left(vault)
    # Admins hear about it; the action never comes back.
    assert "interrupted" in [n.event for _sink, n in vault.notifier.sent]
    again = tick(app, deadline + timedelta(hours=1))
    assert again.ok and again.commits == 0
    assert executions(log) == [HOOK_ID] * ran_before_kill


def test_kill_after_the_result_is_recorded_changes_nothing(
    vault: Harness, tmp_path: Path
) -> None:
    merged_hook(vault)
    run_until_killed(vault, tmp_path, "recorded")
    log = tmp_path / "executions.log"
    assert executions(log) == [HOOK_ID]
    record = record_of(vault, HOOK_ID)
    assert (record["outcome"], record["reason"], record["attempt"]) == (
        "succeeded",
        "ok",
        1,
    )
    assert nothing_left(vault)
    report = tick(survivor(vault, tmp_path), T0 + timedelta(hours=1))
    assert report.ok, report.errors
    assert report.commits == 0 and events(report, HOOK_ID) == []
    assert executions(log) == [HOOK_ID]
    assert record_of(vault, HOOK_ID) == record


@pytest.mark.parametrize(("kill_at", "runs"), [("claimed", 1), ("executed", 2)])
def test_idempotent_action_killed_after_its_claim_is_reclaimed_and_run(
    vault: Harness, tmp_path: Path, kill_at: str, runs: int
) -> None:
    vault.propose(NOOP_ID, NOOP.format(msg="hi"))
    run_until_killed(vault, tmp_path, kill_at)  # merges it (low tier), claims, dies
    deadline = claim_deadline(vault, NOOP_ID)
    app = survivor(vault, tmp_path)

    report = tick(app, deadline + timedelta(seconds=1))
    assert report.ok, report.errors
    assert events(report, NOOP_ID) == ["reclaimed", "succeeded"]
    assert executions(tmp_path / "executions.log") == [NOOP_ID] * runs
    record = record_of(vault, NOOP_ID)
    assert (record["outcome"], record["attempt"]) == ("succeeded", 2)
    assert (record["tier"], record["approver"]) == ("low", "vault-bot")
    assert nothing_left(vault)
