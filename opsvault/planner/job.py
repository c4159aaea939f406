"""Run the planner on an ops repo's main and bring the result back to main.

The shell around the pure planner: read ``prerequisites.md`` and the vault at
main (plus the actions open proposals add), fetch the states of the issues the
plan references, call ``update_plan`` and ``check_plan``, then write:

* **direct** (local mode): commit the new file on main and move main by
  compare-and-swap; when main moved meanwhile, plan again on the new main;
* **proposal** (a forge): open the PR ``plan/<date>-<hash of the content>``,
  which the dispatcher merges as low tier. The same content gives the same
  branch, so running again reuses the PR; an older open planner PR is closed
  as superseded.

``run_planner_job(app, now)`` is what the dispatcher service schedules every
``planner.interval`` and what ``vault plan --config`` runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from opsvault.config import ForgeKind
from opsvault.errors import ConfigError, OpsvaultError, PushRejected
from opsvault.forge.types import ListState, Proposal, PullRequest
from opsvault.git.base import Identity, OpsRepo
from opsvault.layout import PLAN as PLAN_FILE
from opsvault.planner.evaluate import (
    PLAN_BRANCH_PREFIX,
    PlanReport,
    commit_message,
    decode_plan,
    evaluate,
    plan_branch,
    proposal_body,
)
from opsvault.planner.facts import (
    ForgeIssues,
    fetch_issue_states,
    fetch_proposed_actions,
    load_vault_facts,
)
from opsvault.planner.model import IssueRef, IssueState, marker_paths, refs
from opsvault.planner.render import render_plan
from opsvault.ports import Forge
from opsvault.snapshot import CommitSnapshot

if TYPE_CHECKING:
    from opsvault.app import App
    from opsvault.dispatcher.report import TickReport
    from opsvault.dispatcher.service import TickFunction
    from opsvault.ports import Mainline

log = logging.getLogger(__name__)

PUBLISH_ATTEMPTS = 5
GIT_REMOTE = "origin"  # the forge, in the dispatcher's clone (app.build_app)

IssueStates = Callable[[frozenset[IssueRef]], Mapping[IssueRef, IssueState]]


@dataclass(frozen=True, slots=True)
class PlannerSetup:
    """Where the planner reads and writes, and how it learns issue states.

    *forge* lists open proposals (and receives the planner's PR when
    *propose*); *issues* None means issue states are unknown. *remote*: push
    the proposal branch there with git before asking the forge for the PR,
    because Forgejo's contents API only creates files and cannot put a new
    version of an existing one on a new branch; ``open_proposal`` then finds
    the branch with the right content and reuses it.
    """

    repo: OpsRepo
    mainline: Mainline
    forge: Forge
    identity: Identity
    propose: bool
    issues: IssueStates | None = None
    path: str = PLAN_FILE
    remote: str | None = None


def run_planner(setup: PlannerSetup, today: date, *, write: bool = True) -> PlanReport:
    """Update ``prerequisites.md`` on main from the facts; write it back if *write*.

    Raise ConfigError when main has no ``prerequisites.md``, PushRejected when
    main kept moving for every attempt, and what the forge or git raise.
    """
    for attempt in range(1, PUBLISH_ATTEMPTS + 1):
        main = setup.mainline.refresh()
        report, content, pulls = _plan_at(setup, main, today)
        if not write or not report.changes:
            return report
        if setup.propose:
            return _propose(setup, report, content, pulls, today, main)
        new = setup.repo.commit_files(
            main, {PLAN_FILE: content}, commit_message(report), setup.identity
        )
        try:
            setup.mainline.publish(new, main)
        except PushRejected:
            log.info("main moved while planning (attempt %d); planning again", attempt)
            continue
        return replace(report, written=True, commit=new)
    raise PushRejected(
        setup.mainline.branch,
        f"kept moving; the planner gave up after {PUBLISH_ATTEMPTS} attempts",
    )


def _plan_at(
    setup: PlannerSetup, main: str, today: date
) -> tuple[PlanReport, bytes, list[PullRequest]]:
    snapshot = CommitSnapshot(setup.repo, main)
    where = f"{setup.path} at {main[:12]}"
    data = snapshot.read_file(PLAN_FILE)
    if data is None:
        raise ConfigError(
            where, "no such file", f"commit a {PLAN_FILE} (see docs/planner.md)"
        )
    plan = decode_plan(data, where)
    pulls = setup.forge.fetch_pull_requests(ListState.OPEN)
    proposed = fetch_proposed_actions(pulls, setup.mainline, setup.repo, main)
    vault = load_vault_facts(snapshot, marker_paths(plan), proposed)
    issues = setup.issues(refs(plan)) if setup.issues is not None else None
    report, updated = evaluate(setup.path, plan, issues, vault, today)
    return replace(report, base=main), render_plan(updated).encode("utf-8"), pulls


def _propose(
    setup: PlannerSetup,
    report: PlanReport,
    content: bytes,
    pulls: list[PullRequest],
    today: date,
    main: str,
) -> PlanReport:
    branch = plan_branch(today, content)
    if setup.remote is not None:
        tip = setup.repo.commit_files(
            main, {PLAN_FILE: content}, commit_message(report), setup.identity
        )
        try:
            setup.repo.push(branch, tip, None, setup.remote)
        except PushRejected:  # pushed by an earlier run: same name, same content
            log.info("branch %r exists already; reusing it", branch)
    title = f"planner: update {PLAN_FILE} ({len(report.changes)} change(s))"
    pr = setup.forge.open_proposal(
        Proposal(
            branch=branch,
            base=setup.mainline.branch,
            title=title,
            body=proposal_body(report),
            message=commit_message(report),
            files=((PLAN_FILE, content),),
        )
    )
    superseded = []
    for old in pulls:
        if (
            old.head_ref.startswith(PLAN_BRANCH_PREFIX)
            and old.head_ref != branch
            and old.number != pr.number
            and old.author == setup.identity.name
        ):
            try:
                setup.forge.create_comment(
                    old.number, f"Superseded by #{pr.number}: the plan moved on."
                )
                setup.forge.close_pull_request(old.number)
            except OpsvaultError as exc:  # merged meanwhile, say: nothing to undo
                log.info("PR #%d not closed: %s", old.number, exc)
                continue
            superseded.append(old.number)
    return replace(
        report,
        written=True,
        branch=branch,
        pull_number=pr.number,
        pull_url=pr.html_url,
        superseded=tuple(superseded),
    )


def default_issues_repo(app: App) -> str:
    """Return the repo ``#N`` means: the first ``planner.issues_repo``, else the ops repo."""
    issues_repo = app.settings.planner.issues_repo
    return issues_repo[0] if issues_repo else app.settings.forge.repo


def run_planner_job(
    app: App, now: datetime, *, today: date | None = None, write: bool = True
) -> PlanReport:
    """Run the planner on *app*'s ops repo: what the dispatcher schedules.

    With a Forgejo forge, issue states come from the forge and the update is
    proposed as a PR; in local mode issue states are unknown and the update is
    committed to main directly, as ``app.identity``. *today* defaults to the
    date of *now*.
    """
    day = today if today is not None else now.date()
    forge_settings = app.settings.forge
    identity = Identity(app.identity, f"{app.identity}@opsvault.invalid")
    if forge_settings.kind is not ForgeKind.FORGEJO:
        setup = PlannerSetup(app.repo, app.mainline, app.forge, identity, False)
        return run_planner(setup, day, write=write)
    default_repo = default_issues_repo(app)
    with ForgeIssues(forge_settings.repo, app.forge, app.open_other) as lister:

        def states(wanted: frozenset[IssueRef]) -> Mapping[IssueRef, IssueState]:
            return fetch_issue_states(wanted, default_repo, lister)

        setup = PlannerSetup(
            app.repo,
            app.mainline,
            app.forge,
            identity,
            True,
            issues=states,
            remote=GIT_REMOTE,
        )
        return run_planner(setup, day, write=write)


class PlannerJob:
    """The dispatcher's scheduled planner run, kept apart from ticks.

    A tick and the planner share the App's repository handle, which is not
    safe to use from two threads at once, so both take :attr:`lock`
    (:meth:`serialize` wraps the tick). Errors propagate to the service,
    which logs them and runs the job again at its next interval.
    """

    def __init__(
        self,
        app: App,
        *,
        write: bool = True,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.app = app
        self.write = write
        self.clock = clock
        self.lock = threading.Lock()
        self.last_report: PlanReport | None = None

    def __call__(self) -> None:
        with self.lock:
            report = run_planner_job(self.app, self.clock(), write=self.write)
        self.last_report = report
        log.info("planner: %s", report.summary())

    def serialize(self, tick: TickFunction) -> TickFunction:
        """Return *tick* taking :attr:`lock`, so it never overlaps a planner run."""
        lock = self.lock

        def locked(app: App, now: datetime, *, dry_run: bool = False) -> TickReport:
            with lock:
                return tick(app, now, dry_run=dry_run)

        return locked
