"""The tick report people read: what changed, in a stable order, named as operators name it."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsvault.cli.dispatch import _printer
from opsvault.dispatcher.report import (
    Decision,
    TickReport,
    render_report,
    report_data,
    subject_events,
)
from tests.dispatcher.local_harness import make_local_harness

NOOP = 'formula = "noop"\ncontext = "smoke"\n'


def report(*decisions: Decision, **kw: object) -> TickReport:
    base: dict[str, object] = {
        "started_at": "2026-12-01T10:00:00Z",
        "ended_at": "2026-12-01T10:00:01Z",
        "main_before": "a" * 40,
        "main_after": "a" * 40,
        "halted": False,
        "dry_run": False,
        "decisions": decisions,
    }
    base.update(kw)
    return TickReport(**base)  # type: ignore[arg-type]


NAMES = ((3, "vault/noop-1"), (10, "plan/prereqs"))


def test_subjects_come_in_a_stable_order_and_by_their_names() -> None:
    text = render_report(
        report(
            Decision("action:vault/actions/noop-1.toml", "claimed", "by host-a"),
            Decision("pr#10", "classified", "medium"),
            Decision("pr#3", "classified", "low"),
            Decision("pr#7", "classified", "high"),
            Decision("main", "halted", "x"),
            Decision("pr#3", "merged", "low tier at abc"),
            names=NAMES,
        )
    )
    body = [line.strip() for line in text.splitlines()[1:]]
    assert body == [
        "main: halted — x",
        "noop-1 (#3): classified — low",
        "noop-1 (#3): merged — low tier at abc",  # a subject's own order is kept
        "#7: classified — high",  # a PR the tick did not name: its number
        "plan/prereqs (#10): classified — medium",
        "action noop-1: claimed — by host-a",
    ]


def test_a_pull_request_with_the_same_decisions_again_is_left_out() -> None:
    first = report(
        Decision("pr#3", "classified", "high"),
        Decision("pr#10", "classified", "medium"),
        names=NAMES,
    )
    second = report(
        Decision("pr#3", "classified", "high"),
        Decision("pr#10", "classified", "high"),
        Decision("action:noop-1", "done", ""),
        names=NAMES,
    )
    seen = subject_events(first)
    text = render_report(second, seen)
    assert "noop-1 (#3)" not in text
    assert "plan/prereqs (#10): classified — high" in text
    assert "action noop-1: done" in text  # actions are always shown
    assert "1 unchanged not shown" in text.splitlines()[0]
    verbose = render_report(second, seen, verbose=True)
    assert "noop-1 (#3): classified — high" in verbose
    assert "unchanged" not in verbose


def test_merge_commits_are_counted_with_the_record_commits() -> None:
    text = render_report(
        report(Decision("pr#3", "merged", "x"), commits=2, merges=1, names=NAMES)
    )
    assert "3 commits (1 merge)" in text.splitlines()[0]
    assert report_data(report(merges=1))["merges"] == 1


def test_the_service_printer_leaves_quiet_ticks_out(
    capsys: pytest.CaptureFixture[str],
) -> None:
    show = _printer(False, lines=True, quiet=True)
    tick = report(Decision("pr#3", "classified", "high"), names=NAMES)
    show(tick)
    assert "noop-1 (#3): classified — high" in capsys.readouterr().out
    show(tick)  # nothing new: nothing printed
    assert capsys.readouterr().out == ""
    show(report(errors=("forge: down",)))
    assert "error: forge: down" in capsys.readouterr().out


def test_a_real_tick_names_its_pull_requests_and_counts_its_merge(
    tmp_path: Path,
) -> None:
    vault = make_local_harness(tmp_path)
    vault.propose("noop-1", NOOP)
    tick = vault.tick()
    assert tick.ok, tick.errors
    assert dict(tick.names) == {1: "vault/noop-1"}
    assert tick.merges == 1
    text = render_report(tick)
    assert "noop-1 (#1): merged" in text
    assert f"{tick.commits + 1} commits (1 merge)" in text.splitlines()[0]
    assert report_data(tick)["pulls"] == {"1": "vault/noop-1"}
