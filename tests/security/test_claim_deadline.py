"""I8 — a claim is never stale on arrival: its deadline counts from the claim commit.

The attack: claim deadlines were counted from the tick's start, so a slow
pull-request phase used up the claim's time before the claim was even made;
a second replica then found it past its deadline and re-claimed (and re-ran)
an action that was still executing. Both modes: LocalForge and the fake Forgejo.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from opsvault.dispatcher import pulls
from opsvault.dispatcher import tick as tick_module
from opsvault.dispatcher.runner import RecordingRunner
from opsvault.messages import ExecutionRequest, RunResult
from tests.dispatcher.harness import NOOP, T0
from tests.security.sides import ForgejoSide, LocalSide, Side


@pytest.fixture(params=["local", "forgejo"])
def side(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Side]:
    made: Side = (
        LocalSide(tmp_path) if request.param == "local" else ForgejoSide(tmp_path)
    )
    try:
        yield made
    finally:
        made.close()


class Clock:
    """A wall clock a test moves by hand."""

    def __init__(self) -> None:
        self.value = T0

    def __call__(self) -> datetime:
        return self.value


class DuringRunner(RecordingRunner):
    """Calls *during* (once) while it executes the first action."""

    def __init__(self) -> None:
        super().__init__()
        self.during: Callable[[], None] | None = None

    def execute(self, request: ExecutionRequest) -> RunResult:
        if self.during is not None:
            during, self.during = self.during, None
            during()
        return super().execute(request)


def propose_noop(side: Side, action_id: str) -> None:
    side.commit(
        f"vault/{action_id}",
        side.main(),
        {f"vault/actions/{action_id}.toml": NOOP.format(msg=action_id)},
    )
    side.open(f"vault/{action_id}")


def claim_of(side: Side, action_id: str) -> dict[str, str]:
    data = side.read(f"vault/running/{action_id}.claim.json")
    assert data is not None
    claim: dict[str, str] = json.loads(data)
    return claim


def test_a_slow_pull_request_phase_does_not_make_the_claim_stale(
    side: Side, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = DuringRunner()
    side.runner = runner
    propose_noop(side, "noop-1")  # low and idempotent: a stale claim of it is re-run
    d1 = side.app("d1")
    clock = Clock()
    d1.clock = clock
    real = pulls.process_pulls
    slowed = [False]

    def slow_pull_phase(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        if not slowed[0]:
            slowed[0] = True
            clock.value += timedelta(minutes=20)  # 20 minutes of forge calls
        return out

    monkeypatch.setattr(tick_module, "process_pulls", slow_pull_phase)
    seen: dict[str, str] = {}

    def second_replica_ticks() -> None:
        seen.update(claim_of(side, "noop-1"))
        # Two minutes after d1's claim commit (22 after d1's tick started).
        report = side.tick(side.app("d2"), at=timedelta(minutes=1 + 20 + 2))
        seen["d2"] = ",".join(f"{d.subject}:{d.event}" for d in report.decisions)

    runner.during = second_replica_ticks
    side.tick(d1, at=timedelta(minutes=1))
    assert side.executed() == ["noop-1"]
    assert seen["claimed_at"] == "2026-11-21T12:21:00Z"  # the claim commit's time
    assert datetime.fromisoformat(seen["deadline"].replace("Z", "+00:00")) >= (
        T0 + timedelta(minutes=21, seconds=30)
    )
    assert "reclaimed" not in seen["d2"] and "interrupted" not in seen["d2"]
    assert any(p.endswith("noop-1.result.json") for p in side.files("vault/fired"))


def test_a_claim_that_reaches_main_late_is_never_started(side: Side) -> None:
    propose_noop(side, "noop-1")
    d1 = side.app("d1")
    clock = Clock()
    d1.clock = clock
    publish = d1.mainline.publish

    def slow_push(new: str, expected_old: str) -> None:
        publish(new, expected_old)
        clock.value += timedelta(minutes=10)  # the claim push took ten minutes

    d1.mainline.publish = slow_push  # type: ignore[method-assign]
    report = side.tick(d1, at=timedelta(minutes=1))
    assert side.executed() == []
    assert [d.subject for d in report.decisions if d.event == "late"] == [
        "action:noop-1"
    ]
    assert side.read("vault/running/noop-1.toml") is not None
    # After its deadline the claim is recovered like any stale one (noop is idempotent).
    side.tick(side.app("d2"), at=timedelta(hours=1))
    assert side.executed() == ["noop-1"]
