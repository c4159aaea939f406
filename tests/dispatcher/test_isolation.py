"""I5 (isolation): an unexpected error in one PR or one action never stops the rest of the tick.

Each test injects a bug (an exception no code expects) for one pull request or
one action and checks that it becomes an ``error`` decision while every other
PR is still handled and every other action, the admin-approved one included,
is still fired and recorded. Both modes: LocalForge and the fake Forgejo.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from opsvault import changes
from opsvault.dispatcher import claims, provenance, pulls
from opsvault.dispatcher import tick as tick_module
from opsvault.dispatcher.runner import RecordingRunner
from opsvault.messages import ExecutionRequest, RunResult
from tests.dispatcher.harness import GIT_MAKE, NOOP
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


def propose(side: Side, action_id: str, content: str) -> tuple[int, str]:
    head = side.commit(
        f"vault/{action_id}", side.main(), {f"vault/actions/{action_id}.toml": content}
    )
    return side.open(f"vault/{action_id}"), head


def admin_approved_release(side: Side) -> None:
    """release-1 (high) merged by the admin alice: it waits on main to be fired."""
    number, _ = propose(side, "release-1", GIT_MAKE.format(n=1))
    side.tick()
    side.merge_as("alice", number)


def fired(side: Side) -> set[str]:
    return {
        p.rsplit("/", 1)[1].removesuffix(".result.json")
        for p in side.files("vault/fired")
        if p.endswith(".result.json")
    }


def errors_for(report: Any, subject_part: str) -> list[str]:
    return [
        d.detail
        for d in report.decisions
        if d.event == "error" and subject_part in d.subject
    ]


def test_a_bug_in_one_pull_request_leaves_the_others_and_the_fire_phase(
    side: Side, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin_approved_release(side)
    bad, bad_head = propose(side, "noop-bad", NOOP.format(msg="bad"))
    good, _ = propose(side, "noop-good", NOOP.format(msg="good"))
    real = changes.preview_merge

    def buggy(repo: Any, base: str, head: str, state: Any, now: Any = None) -> Any:
        if head == bad_head:
            raise RecursionError("maximum recursion depth exceeded")
        return real(repo, base, head, state, now)

    monkeypatch.setattr(pulls, "preview_merge", buggy)
    report = side.tick(at=timedelta(minutes=1))
    assert errors_for(report, f"pr#{bad}") == [
        "unexpected RecursionError('maximum recursion depth exceeded')"
    ]
    assert side.is_merged(good) and not side.is_merged(bad)
    assert {"release-1", "noop-good"} <= fired(side)
    assert sorted(side.executed()) == ["noop-good", "release-1"]


def test_a_bug_in_the_whole_pull_request_phase_still_fires(
    side: Side, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin_approved_release(side)

    def broken(*args: object, **kwargs: object) -> object:
        raise KeyError("surprise")

    monkeypatch.setattr(tick_module, "process_pulls", broken)
    report = side.tick(at=timedelta(minutes=1))
    assert any("KeyError" in e for e in report.errors)
    assert side.executed() == ["release-1"]
    assert "release-1" in fired(side)


def test_a_bug_in_one_action_leaves_the_others_firing(
    side: Side, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin_approved_release(side)  # release-1 waits on main
    propose(side, "noop-bad", NOOP.format(msg="bad"))  # merged by this tick
    real = provenance.establish

    def buggy(repo: Any, forge: Any, main: str, path: str, *args: Any) -> Any:
        if path.endswith("noop-bad.toml"):
            raise ValueError("a bug")
        return real(repo, forge, main, path, *args)

    monkeypatch.setattr(claims, "establish", buggy)
    report = side.tick(at=timedelta(minutes=1))
    assert errors_for(report, "noop-bad") == ["unexpected ValueError('a bug')"]
    assert "release-1" in fired(side)
    assert side.read("vault/actions/noop-bad.toml") is not None  # retried next tick
    monkeypatch.undo()
    side.tick(at=timedelta(minutes=2))
    assert "noop-bad" in fired(side)


class OneBadRunner(RecordingRunner):
    def execute(self, request: ExecutionRequest) -> RunResult:
        if request.action_id == "noop-bad":
            raise RuntimeError("the runner broke its contract")
        return super().execute(request)


def test_a_runner_raising_for_one_claim_still_records_the_others(side: Side) -> None:
    side.runner = OneBadRunner()
    admin_approved_release(side)
    propose(side, "noop-bad", NOOP.format(msg="bad"))
    report = side.tick(at=timedelta(minutes=1))
    assert "release-1" in fired(side)
    assert errors_for(report, "noop-bad") == [
        "its execution raised; it stays claimed and is recovered after its deadline"
    ]
    # The one that raised stays claimed, and is recovered after its deadline.
    assert side.read("vault/running/noop-bad.toml") is not None


class OneMalformedRunner(RecordingRunner):
    def execute(self, request: ExecutionRequest) -> RunResult:
        result = super().execute(request)
        if request.action_id == "noop-bad":
            return RunResult("exploded", "??", 0, None, 0.0, 0.0, "")
        return result


def test_a_malformed_result_of_one_claim_still_records_the_others(side: Side) -> None:
    side.runner = OneMalformedRunner()
    admin_approved_release(side)
    propose(side, "noop-bad", NOOP.format(msg="bad"))
    side.tick(at=timedelta(minutes=1))
    assert "release-1" in fired(side)
    assert side.read("vault/running/noop-bad.toml") is not None
