"""Forge faults and git push races during a tick: nothing is duplicated, nothing is lost.

Faults come from the fake Forgejo's fault plan (5xx answers, answers lost
after the write was applied, whole outages). Push races come from a Mainline
double that lets someone else move main just before our push.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pygit2
import pytest

from opsvault.app import App
from opsvault.dispatcher.runner import RecordingRunner
from opsvault.dispatcher.tick import tick
from opsvault.ports import Mainline
from tests.dispatcher.harness import NOOP, REPO, T0, Harness

ACTION = "noop-smoke-1"
LIST_PULLS = "/repos/{owner}/{repo}/pulls"
ONE_PULL = "/repos/{owner}/{repo}/pulls/{index}"
MERGE = "/repos/{owner}/{repo}/pulls/{index}/merge"
COMMENTS = "/repos/{owner}/{repo}/issues/{index}/comments"
LABELS = "/repos/{owner}/{repo}/issues/{index}/labels"
STATUSES = "/repos/{owner}/{repo}/statuses/{sha}"


def merges_of(vault: Harness, head_sha: str) -> int:
    """Return how many commits on main merge *head_sha*."""
    repo = pygit2.Repository(str(vault.forge.repo(REPO).git.path))
    main = repo.references["refs/heads/main"].target
    return sum(
        1
        for commit in repo.walk(main)
        if len(commit.parents) == 2 and str(commit.parent_ids[1]) == head_sha
    )


def comments_marked(vault: Harness, number: int, marker: str) -> int:
    return sum(marker in c.body for c in vault.client("alice").fetch_comments(number))


def fired_ids(vault: Harness) -> list[str]:
    return [
        p.rsplit("/", 1)[1].removesuffix(".result.json")
        for p in vault.main_files("vault/fired")
        if p.endswith(".result.json")
    ]


def runs(app: App) -> list[str]:
    assert isinstance(app.runner, RecordingRunner)
    return [r.action_id for r in app.runner.requests]


def assert_fired_once(vault: Harness, app: App, number: int) -> None:
    assert runs(app) == [ACTION]
    assert fired_ids(vault) == [ACTION]
    assert merges_of(vault, vault.pull(number).head_sha) == 1
    assert comments_marked(vault, number, "opsvault:tier") == 1
    assert comments_marked(vault, number, f"opsvault:result:{ACTION}") == 1


def test_5xx_bursts_on_reads_and_writes_duplicate_no_merge_and_no_comment(
    vault: Harness,
) -> None:
    number = vault.propose(ACTION, NOOP.format(msg="hi"))
    vault.wait_for_checks()  # Forgejo's mergeability check has run
    faults = vault.forge.faults
    faults.fail("GET", LIST_PULLS, times=3)
    faults.fail("GET", ONE_PULL, times=2)
    faults.fail("GET", COMMENTS, times=3)
    faults.fail("POST", COMMENTS, times=2)
    faults.fail("POST", LABELS, status=502)
    faults.fail("POST", STATUSES, status=502)
    faults.fail("POST", MERGE, times=2, status=500)
    vault.forge.requests.reset()
    app = vault.app()

    report = tick(app, T0)

    assert report.ok, report.errors
    assert faults.pending == ()  # every burst was met and ridden out
    counts = vault.forge.requests.snapshot()
    assert counts[f"POST {MERGE}"] == 3  # two 500s, then the one merge
    assert counts[f"POST {COMMENTS}"] == 4  # two 503s, the tier and result comments
    assert_fired_once(vault, app, number)
    assert vault.pull(number).labels.count("vault/tier/low") == 1
    again = tick(app, T0 + timedelta(minutes=1))
    assert again.ok and again.commits == 0
    assert_fired_once(vault, app, number)


@pytest.mark.parametrize(
    ("method", "pattern"),
    [("POST", MERGE), ("POST", COMMENTS), ("POST", LABELS), ("POST", STATUSES)],
)
def test_a_write_whose_answer_is_lost_is_applied_once(
    vault: Harness, method: str, pattern: str
) -> None:
    number = vault.propose(ACTION, NOOP.format(msg="hi"))
    vault.wait_for_checks()  # Forgejo's mergeability check has run
    vault.forge.faults.drop_after_write(method, pattern)
    vault.forge.requests.reset()
    app = vault.app()

    report = tick(app, T0)

    assert report.ok, report.errors
    assert vault.forge.faults.pending == ()
    assert vault.forge.requests.snapshot()[f"{method} {pattern}"] == (
        2 if pattern == COMMENTS else 1  # comments: the tier one and the result one
    )
    assert_fired_once(vault, app, number)
    assert "vault/tier/low" in vault.pull(number).labels
    assert vault.pull(number).merged_by == "vault-bot"


def test_a_forge_outage_ends_the_tick_and_the_next_tick_completes(
    vault: Harness,
) -> None:
    number = vault.propose(ACTION, NOOP.format(msg="hi"))
    vault.wait_for_checks()  # Forgejo's mergeability check has run
    vault.forge.faults.fail("*", "*", times=10_000)
    vault.forge.requests.reset()
    app = vault.app()

    down = tick(app, T0)

    assert not down.ok and down.errors[0].startswith("forge: ")
    assert "503" in down.errors[0] and "next tick retries" in down.errors[0]
    assert down.commits == 0 and runs(app) == []
    assert vault.forge.requests.total <= 8  # bounded retries, no storm
    vault.forge.faults.clear()
    up = tick(app, T0 + timedelta(minutes=1))
    assert up.ok, up.errors
    assert_fired_once(vault, app, number)


def test_an_outage_right_after_the_merge_loses_nothing(vault: Harness) -> None:
    """The merge lands, reading it back fails: the tick ends; the next one fires it."""
    number = vault.propose(ACTION, NOOP.format(msg="hi"))
    vault.wait_for_checks()  # Forgejo's mergeability check has run
    vault.forge.faults.fail("GET", ONE_PULL, times=10_000)
    app = vault.app()

    down = tick(app, T0)

    assert not down.ok
    assert runs(app) == []
    vault.forge.faults.clear()
    assert vault.pull(number).merged  # the merge had landed
    up = tick(app, T0 + timedelta(minutes=1))
    assert up.ok, up.errors
    assert vault.forge.requests.snapshot()[f"POST {MERGE}"] == 1
    assert_fired_once(vault, app, number)


class RacingMainline:
    """Delegate to *inner*, but run the next queued race just before each publish."""

    def __init__(self, inner: Mainline, races: list[Callable[[], None]]) -> None:
        self.inner = inner
        self.races = races
        self.published = 0

    @property
    def branch(self) -> str:
        return self.inner.branch

    def refresh(self) -> str:
        return self.inner.refresh()

    def publish(self, new: str, expected_old: str) -> None:
        if self.races:
            self.races.pop(0)()
        self.inner.publish(new, expected_old)
        self.published += 1

    def fetch_pull_head(self, number: int, sha: str) -> bool:
        return self.inner.fetch_pull_head(number, sha)


def test_main_moving_before_the_claim_and_result_pushes_replans_and_fires_once(
    vault: Harness,
) -> None:
    number = vault.propose(ACTION, NOOP.format(msg="hi"))
    vault.wait_for_checks()  # Forgejo's mergeability check has run
    app = vault.app()

    def push_to_main(name: str) -> Callable[[], None]:
        def race() -> None:
            vault.forge.push(
                REPO, "main", {f"docs/{name}.md": f"{name}\n"}, author="alice"
            )

        return race

    racing = RacingMainline(app.mainline, [push_to_main("a"), push_to_main("b")])
    app.mainline = racing

    report = tick(app, T0)

    assert report.ok, report.errors
    assert racing.published == 2 and report.commits == 2  # claim, then result
    assert_fired_once(vault, app, number)
    # The commits that won the races are still on main: nothing was forced.
    assert vault.main_file("docs/a.md") == b"a\n"
    assert vault.main_file("docs/b.md") == b"b\n"
    events = [d.event for d in report.decisions if d.subject == f"action:{ACTION}"]
    assert events == ["claimed", "succeeded"]


def test_a_rival_dispatcher_claiming_first_wins_and_we_do_not_run_it(
    vault: Harness,
) -> None:
    number = vault.propose(ACTION, NOOP.format(msg="hi"))
    vault.wait_for_checks()  # Forgejo's mergeability check has run
    ours, rival = vault.app("ours"), vault.app("rival")
    ours.runner, rival.runner = RecordingRunner(), RecordingRunner()
    rival_reports = []

    def rival_ticks() -> None:
        rival_reports.append(tick(rival, T0))

    ours.mainline = RacingMainline(ours.mainline, [rival_ticks])

    report = tick(ours, T0)  # merges, plans the claim; the rival claims, runs, records

    assert report.ok, report.errors
    assert [r.ok for r in rival_reports] == [True]
    assert runs(rival) == [ACTION] and runs(ours) == []
    assert report.commits == 0
    assert not [d for d in report.decisions if d.subject == f"action:{ACTION}"]
    assert fired_ids(vault) == [ACTION]
    assert merges_of(vault, vault.pull(number).head_sha) == 1
