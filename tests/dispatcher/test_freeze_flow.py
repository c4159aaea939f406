"""Freeze windows in the dispatcher, on both forges, with the injected clock (T0 = 2026-11-21 12:00Z).

While a window holds, the dispatcher merges nothing by itself and fires
nothing but exempt formulas; what waits is deferred (PR comment, tick report,
`vault status` say "frozen until ..."), never refused, and goes on after.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from opsvault.dispatcher.runner import RecordingRunner
from opsvault.dispatcher.status import collect_status
from opsvault.git.pygit2_repo import Pygit2OpsRepo
from opsvault.snapshot import CommitSnapshot, load_base_state
from tests.dispatcher.harness import HOOK, NOOP
from tests.dispatcher.harness import Harness as ForgejoHarness
from tests.dispatcher.local_harness import FORGES, LocalHarness, open_vault

Harness = ForgejoHarness | LocalHarness

# T0 - 1h to T0 + 2h.
FREEZE = """
[[freeze]]
name = "change-freeze"
start = 2026-11-21T11:00:00Z
end = 2026-11-21T14:00:00Z
{exempt}
"""
UNTIL = "frozen until 2026-11-21T14:00:00Z (change-freeze)"
AFTER = timedelta(hours=2, minutes=1)


def _frozen(exempt: str = "") -> Callable[[str], str]:
    return lambda text: text + FREEZE.format(exempt=exempt)


@pytest.fixture(params=FORGES)
def frozen(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    with open_vault(request.param, tmp_path, _frozen()) as harness:
        yield harness


def fired(vault: Harness) -> list[str]:
    assert isinstance(vault.runner, RecordingRunner)
    return [r.action_id for r in vault.runner.requests]


def events(report: object) -> dict[tuple[str, str], str]:
    return {(d.subject, d.event): d.detail for d in report.decisions}  # type: ignore[attr-defined]


def test_a_low_change_waits_for_the_freeze_then_merges_and_fires(
    frozen: Harness,
) -> None:
    number = frozen.propose("noop-smoke-1", NOOP.format(msg="hi"))
    report = frozen.tick()
    assert report.ok, report.errors
    assert events(report)[("pr#1", "frozen")] == UNTIL
    assert ("pr#1", "merged") not in events(report)
    assert not frozen.pull(number).merged
    comments = [
        c.body
        for c in frozen.client("alice").fetch_comments(number)
        if "opsvault:tier" in c.body
    ]
    assert len(comments) == 1 and "Frozen until 2026-11-21T14:00:00Z" in comments[0]
    assert fired(frozen) == []
    report = frozen.tick(at=AFTER)
    assert report.ok, report.errors
    assert ("pr#1", "merged") in events(report)
    assert fired(frozen) == ["noop-smoke-1"]


def test_an_action_a_person_merged_during_the_freeze_fires_after_it(
    frozen: Harness,
) -> None:
    number = frozen.propose("deploy-1", HOOK.format(n=1))
    frozen.tick()
    frozen.merge_as("bob", number)  # people may still merge
    report = frozen.tick(at=timedelta(minutes=5))
    assert report.ok, report.errors
    assert events(report)[("action:deploy-1", "deferred")] == UNTIL
    assert fired(frozen) == []
    assert frozen.main_file("vault/actions/deploy-1.toml") is not None
    report = frozen.tick(at=AFTER)
    assert ("action:deploy-1", "claimed") in events(report)
    assert fired(frozen) == ["deploy-1"]


@pytest.mark.parametrize("kind", FORGES)
def test_an_exempt_formula_merges_and_fires_during_the_freeze(
    kind: str, tmp_path: Path
) -> None:
    with open_vault(kind, tmp_path, _frozen('exempt = ["noop"]')) as vault:
        vault.propose("noop-smoke-1", NOOP.format(msg="hi"))
        report = vault.tick()
        assert ("pr#1", "merged") in events(report)
        assert fired(vault) == ["noop-smoke-1"]
        # A change with anything besides exempt actions stays frozen.
        vault.propose(
            "noop-smoke-2",
            NOOP.format(msg="and more"),
            extra={"knowledge/note.md": "a note\n"},
        )
        report = vault.tick(at=timedelta(minutes=1))
        assert events(report)[("pr#2", "frozen")] == UNTIL


@pytest.mark.parametrize("kind", FORGES)
def test_time_frozen_does_not_count_toward_the_deadline(
    kind: str, tmp_path: Path
) -> None:
    """A three-day freeze holds a low change (deadline 24h); it merges after, not expires."""
    long_freeze = FREEZE.format(exempt="").replace(
        "2026-11-21T14:00:00Z", "2026-11-24T12:00:00Z"
    )
    with open_vault(kind, tmp_path, lambda text: text + long_freeze) as vault:
        number = vault.propose("noop-smoke-1", NOOP.format(msg="hi"))
        vault.tick()
        report = vault.tick(at=timedelta(hours=30))
        assert ("pr#1", "expired") not in events(report)
        assert ("pr#1", "frozen") in events(report)
        report = vault.tick(at=timedelta(days=3, minutes=1))
        assert report.ok, report.errors
        assert ("pr#1", "merged") in events(report)
        assert vault.pull(number).merged


def test_vault_status_says_frozen_until(frozen: Harness) -> None:
    repo = (
        Pygit2OpsRepo.open(frozen.forge.repo("acme/ops").git.path)
        if isinstance(frozen, ForgejoHarness)
        else frozen.repo
    )
    snapshot = CommitSnapshot(repo, repo.resolve("refs/heads/main"))
    status = collect_status(
        snapshot, load_base_state(snapshot), frozen.at(timedelta(0))
    )
    assert status.frozen is not None
    assert status.frozen.text == UNTIL
    assert status.frozen.until == "2026-11-21T14:00:00Z"
    assert status.frozen.names == ("change-freeze",)
    later = collect_status(snapshot, load_base_state(snapshot), frozen.at(AFTER))
    assert later.frozen is None
