"""The guard self-check in a running dispatcher: when it runs, and what drift does (ADR 0018).

``GuardJob.wrap(tick)`` returns the tick preceded by the check: before the
first tick (at start), then whenever ``dispatcher.guard_interval`` has passed,
and on every tick while the last check found drift (so a fix shows at once,
and a HALT lifted before the fix is written again). It runs in the tick's own
thread, so it never races a tick for the repository or the forge client.

On new drift the admins' sinks (the high tier's ``notify``) hear of every
finding. With ``on_guard_drift = "halt"`` (the default) the dispatcher also
writes ``vault/HALT`` on main, by compare-and-swap, and runs no tick until
it is there: every replica stops, and only an admin's merge deleting it
resumes them (docs/operating.md "HALT"). ``"alert"`` only alerts and reports.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from opsvault.config import ForgeKind
from opsvault.dispatcher.guard import (
    GuardPolicy,
    GuardReport,
    check_forgejo,
    check_local,
)
from opsvault.dispatcher.notify import sinks_named
from opsvault.dispatcher.report import Decision, TickReport
from opsvault.errors import ForgeUnavailable, GitError, OpsvaultError, PushRejected
from opsvault.git.base import Identity
from opsvault.layout import HALT
from opsvault.messages import Notification
from opsvault.snapshot import CommitSnapshot, has_file, load_base_state
from opsvault.vault.tier import Tier

if TYPE_CHECKING:
    from opsvault.app import App
    from opsvault.dispatcher.service import TickFunction

log = logging.getLogger(__name__)

HALT_ATTEMPTS = 4


def run_guard_check(app: App, now: datetime) -> GuardReport:
    """Run the checks that fit the App's forge; raise ForgeUnavailable if it did not answer."""
    settings = app.settings
    branch = app.mainline.branch
    if settings.forge.kind is ForgeKind.FORGEJO:
        return check_forgejo(
            app.forge,
            identity=app.identity,
            branch=branch,
            owner=settings.forge.repo.split("/", 1)[0],
            required_approvals=settings.dispatcher.guard_required_approvals,
            now=now,
        )
    path = settings.forge.path if settings.forge.path is not None else app.repo.path
    return check_local(app.forge, path, identity=app.identity, branch=branch, now=now)


class GuardJob:
    """Run the guard check before ticks, alert on drift, halt when the policy says so."""

    def __init__(
        self,
        app: App,
        *,
        on_result: Callable[[GuardReport], None] | None = None,
        check: Callable[[App, datetime], GuardReport] = run_guard_check,
    ) -> None:
        self.app = app
        self.policy = GuardPolicy(app.settings.dispatcher.on_guard_drift)
        self.interval = app.settings.dispatcher.guard_interval
        self.on_result = on_result
        self._check = check
        self.last: GuardReport | None = None
        self._alerted: frozenset[str] = frozenset()

    def due(self, now: datetime) -> bool:
        last = self.last
        return last is None or last.drift or now - last.checked_at >= self.interval

    def run(self, now: datetime) -> GuardReport | None:
        """Check now; alert on findings not alerted yet; return the report (None: forge down)."""
        try:
            report = self._check(self.app, now)
        except ForgeUnavailable as exc:
            log.warning(
                "guard check: the forge did not answer (%s); checking next tick", exc
            )
            return None
        self.last = report
        if report.drift:
            for finding in report.findings:
                log.error("guard drift: %s", self.app.redact(finding.render()))
            self._alert(report)
        else:
            log.info("guard check: the %s protection holds", report.mode)
            self._alerted = frozenset()
        if self.on_result is not None:
            self.on_result(report)
        return report

    def wrap(self, tick: TickFunction) -> TickFunction:
        """Return *tick*, preceded by the guard check when it is due."""

        def guarded(app: App, now: datetime, *, dry_run: bool = False) -> TickReport:
            report = self.run(now) if self.due(now) else self.last
            if (
                report is not None
                and report.drift
                and self.policy is GuardPolicy.HALT
                and not dry_run
            ):
                problem = self._halt(report, now)
                if problem is not None:  # fail closed: no tick without the HALT
                    return TickReport(
                        started_at=now.isoformat(),
                        ended_at=now.isoformat(),
                        main_before=None,
                        main_after=None,
                        halted=True,
                        dry_run=dry_run,
                        decisions=(Decision("main", "halted", "guard drift"),),
                        errors=(f"guard drift: {HALT} not written: {problem}",),
                    )
            return tick(app, now, dry_run=dry_run)

        return guarded

    # -- effects ---------------------------------------------------------------------

    def _alert(self, report: GuardReport) -> None:
        texts = frozenset(f.render() for f in report.findings)
        new = texts - self._alerted
        if not new:
            return
        app = self.app
        try:
            main = app.mainline.refresh()
            policy = load_base_state(CommitSnapshot(app.repo, main)).policy
        except OpsvaultError as exc:
            log.error("guard drift: admins not alerted, main's policy unread: %s", exc)
            return
        action = "vault halted" if self.policy is GuardPolicy.HALT else "alert only"
        app.notifier.notify(
            sinks_named(policy, policy.settings(Tier.HIGH).notify),
            Notification(
                event="guard-drift",
                title=f"opsvault: guard drift ({action})",
                body=app.redact(
                    f"The {report.mode} protection no longer holds what the vault "
                    "relies on:\n"
                    + "\n".join(f"- {t}" for t in sorted(new))
                    + "\nRun `vault doctor` for the fixes (docs/operating.md)."
                ),
                tier="high",
            ),
        )
        self._alerted = texts

    def _halt(self, report: GuardReport, now: datetime) -> str | None:
        """Make sure ``vault/HALT`` is on main; return why it is not, or None."""
        app = self.app
        who = Identity(app.identity, f"{app.identity}@opsvault.invalid")
        text = (
            f"Halted by {app.identity} at {now.isoformat()}: guard drift.\n"
            + "\n".join(f"- {f.render()}" for f in report.findings)
            + "\nNothing is merged or fired until an admin has fixed the protection "
            "(`vault doctor` names each fix), checked main, and merged a pull "
            "request deleting vault/HALT (docs/operating.md).\n"
        )
        try:
            for _ in range(HALT_ATTEMPTS):
                main = app.mainline.refresh()
                if has_file(CommitSnapshot(app.repo, main), HALT):
                    return None
                commit = app.repo.commit_files(
                    main,
                    {HALT: app.redact(text).encode()},
                    "vault: HALT (guard drift)",
                    who,
                )
                try:
                    app.mainline.publish(commit, main)
                except PushRejected:
                    continue
                log.error("guard drift: %s written", HALT)
                return None
        except (GitError, OpsvaultError) as exc:
            return str(exc)
        return "main kept moving"
