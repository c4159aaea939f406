"""The planner against the fake Forgejo: an issue closes, a PR follows, the dispatcher merges it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import httpx

from opsvault.app import App
from opsvault.config import ForgeKind, ForgeSettings, PlannerSettings
from opsvault.forge.token import ForgeToken
from opsvault.planner.job import run_planner_job
from tests.dispatcher.harness import HUMAN, REPO, T0, Harness

TREE = """\
# Prerequisite Tree
<!-- Last updated: 2026-11-01 -->

Agents read this file to pick their next task. People own the objectives and
the prose; the planner keeps the boxes, the markers and the statuses.

## Objective: Foundation — Core agent loop (dev → CI → review → merge)
- [x] dev-agent picks up backlog issues (#{done} — closed)
- [ ] review-agent leaves structured reviews (#{review} — open)
Status: IN PROGRESS — reviews are next

## Objective: Releases
- [ ] tags signed with the release key (acme/app#{app}) blocked-on-vault (vault/actions/rotate-key-1.toml)
Status: BLOCKED — the key is not rotated yet
"""


def forgejo_app(h: Harness, *, issues_repo: tuple[str, ...] = ()) -> App:
    """The harness App, configured as a Forgejo deployment (the planner reads these)."""
    app = h.app()
    app.settings = replace(
        app.settings,
        forge=ForgeSettings(
            kind=ForgeKind.FORGEJO,
            url=h.forge.url,
            repo=REPO,
            token=ForgeToken(h.tokens[h.identity]),
        ),
        planner=PlannerSettings(issues_repo=issues_repo),
    )
    return app


def close_issue(h: Harness, repo: str, number: int) -> None:
    with httpx.Client(
        base_url=h.forge.api_url,
        headers={"Authorization": f"token {h.tokens['alice']}"},
    ) as http:
        http.patch(f"/repos/{repo}/issues/{number}", json={"state": "closed"})


def seed(h: Harness) -> dict[str, int]:
    h.forge.create_repo("acme", "app", {"README.md": "app\n"})
    numbers = {
        "done": h.forge.add_issue(
            REPO, "pick up backlog", author="alice", state="closed"
        ),
        "review": h.forge.add_issue(REPO, "structured reviews", author="alice"),
        "app": h.forge.add_issue("acme/app", "sign tags", author="alice"),
    }
    h.forge.push(
        REPO,
        "main",
        {"prerequisites.md": TREE.format(**numbers)},
        author="alice",
        message="plan: the prerequisite tree",
    )
    return numbers


def test_closed_issue_reaches_main_through_a_low_tier_planner_pr(
    vault: Harness,
) -> None:
    numbers = seed(vault)
    # The action the release item waits on is proposed, not merged (high tier).
    proposal = vault.propose("rotate-key-1", HUMAN)
    app = forgejo_app(vault)

    report = run_planner_job(app, T0)
    assert report.issues_checked
    assert (report.changes, report.errors, report.pull_number) == ((), 0, None)

    close_issue(vault, REPO, numbers["review"])
    report = run_planner_job(app, vault.at(timedelta(days=1)))
    review, status = 9, 10
    assert [(c.line, c.kind) for c in report.changes] == [
        (2, "date"),
        (review, "check"),
        (review, "annotation"),
        (status, "status"),
    ]
    assert report.branch is not None
    assert report.branch.startswith("plan/2026-11-22-")
    assert report.pull_number is not None
    pr = vault.pull(report.pull_number)
    assert (pr.head_ref, pr.author, pr.state) == (report.branch, "vault-bot", "open")
    assert f"- line {status}: status IN PROGRESS → DONE: every item checked" in pr.body

    again = run_planner_job(app, vault.at(timedelta(days=1, minutes=1)))
    assert (again.branch, again.pull_number) == (report.branch, report.pull_number)

    tick = vault.tick(app, at=timedelta(days=1, minutes=2))
    assert tick.ok, tick.errors
    assert vault.pull(report.pull_number).merged, tick.decisions
    assert not vault.pull(proposal).merged
    text = (vault.main_file("prerequisites.md") or b"").decode("utf-8")
    assert text == (
        TREE.format(**numbers)
        .replace("2026-11-01", "2026-11-22")
        .replace(
            f"- [ ] review-agent leaves structured reviews (#{numbers['review']} — open)",
            f"- [x] review-agent leaves structured reviews (#{numbers['review']} — closed)",
        )
        .replace("Status: IN PROGRESS — reviews are next", "Status: DONE")
    )
    # the release item keeps its marker: its action is proposed, not merged
    assert "blocked-on-vault (vault/actions/rotate-key-1.toml)" in text

    settled = run_planner_job(app, vault.at(timedelta(days=2)))
    assert (settled.changes, settled.pull_number) == ((), None)


def test_references_to_missing_issues_and_pull_requests_are_errors(
    vault: Harness,
) -> None:
    numbers = seed(vault)
    proposal = vault.propose("rotate-key-1", HUMAN)
    tree = TREE.format(**numbers).replace(
        "## Objective: Releases\n",
        f"## Objective: Releases\n- [ ] changelog (#{proposal}) (acme/app#99)\n",
    )
    vault.forge.push(REPO, "main", {"prerequisites.md": tree}, author="alice")
    report = run_planner_job(forgejo_app(vault), T0, write=False)
    messages = [f.message for f in report.findings if f.severity == "error"]
    assert messages == [f"#{proposal}, acme/app#99 do not exist"]


def test_short_references_follow_the_configured_issues_repo(vault: Harness) -> None:
    numbers = seed(vault)
    vault.propose("rotate-key-1", HUMAN)
    app = forgejo_app(vault, issues_repo=("acme/app",))
    # #{review} now means acme/app#{review}: acme/app has issue 1 only
    report = run_planner_job(app, T0, write=False)
    errors = [f.message for f in report.findings if f.severity == "error"]
    missing = sorted(n for n in (numbers["done"], numbers["review"]) if n != 1)
    assert errors == [f"#{n} does not exist" for n in missing]


def test_a_newer_plan_supersedes_an_open_planner_pr(vault: Harness) -> None:
    numbers = seed(vault)
    vault.propose("rotate-key-1", HUMAN)
    app = forgejo_app(vault)
    close_issue(vault, REPO, numbers["review"])
    first = run_planner_job(app, T0)
    close_issue(vault, "acme/app", numbers["app"])
    second = run_planner_job(app, vault.at(timedelta(days=1)))
    assert second.pull_number != first.pull_number
    assert second.superseded == (first.pull_number,)
    assert first.pull_number is not None
    old = vault.pull(first.pull_number)
    assert (old.state, old.merged) == ("closed", False)
