"""The local-mode twin of ``harness.Harness``: the same calls, over LocalForge and a local ops repo.

Flow tests written against these calls run on both forges (the ``vault``
fixture, parametrised with ``both_forges``). The dispatcher is wired as
``app.build_app`` wires local mode: ``LocalForge`` acting as the identity,
``LocalMainline`` on the ops repo itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from opsvault.app import App
from opsvault.config import DispatcherSettings, Settings
from opsvault.dispatcher.notify import RecordingNotifier
from opsvault.dispatcher.report import TickReport
from opsvault.dispatcher.runner import RecordingRunner
from opsvault.dispatcher.tick import tick
from opsvault.forge.local import LocalForge
from opsvault.forge.types import PullRequest
from opsvault.git.base import Identity
from opsvault.git.mainline import LocalMainline
from opsvault.git.pygit2_repo import Pygit2OpsRepo
from opsvault.ports import Runner
from testing.fake_forgejo.pytest_plugin import assert_no_violations
from tests.conftest import init_repo
from tests.dispatcher.harness import POLL, T0, Harness, make_harness, template_files

OPERATOR = "alice"  # the admin of local mode (docs/local-mode.md)

FORGES = ["local", "forgejo"]
both_forges = pytest.mark.parametrize("vault", FORGES, indirect=True)
"""Run a test taking the ``vault`` fixture (tests/conftest.py) once per forge."""
veto_on_both_forges = pytest.mark.parametrize("veto", FORGES, indirect=True)
"""The same for the ``veto`` fixture (a medium veto window of 2 h)."""


@contextmanager
def open_vault(
    kind: str, tmp_path: Path, policy_edit: Callable[[str], str] | None = None
) -> Iterator[Harness | LocalHarness]:
    """Yield a harness on forge *kind* ("local" or "forgejo"); check the fake at the end."""
    if kind == "local":
        yield make_local_harness(tmp_path, policy_edit)
        return
    harness = make_harness(tmp_path, policy_edit)
    try:
        yield harness
    finally:
        harness.close()
    assert_no_violations(harness.forge)


@dataclass
class LocalHarness:
    repo: Pygit2OpsRepo
    root: Path
    runner: Runner = field(default_factory=RecordingRunner)
    notifier: RecordingNotifier = field(default_factory=RecordingNotifier)
    identity: str = "vault-bot"
    clock: datetime = T0
    now: list[datetime] = field(default_factory=lambda: [T0])
    kind: str = "local"

    def client(self, user: str) -> LocalForge:
        return LocalForge(self.repo, user, operator=OPERATOR, clock=lambda: self.now[0])

    def close(self) -> None:
        return None

    def app(self, name: str = "d1", **dispatcher: object) -> App:
        settings = Settings(
            dispatcher=DispatcherSettings(
                identity=self.identity,
                state_dir=self.root / f"{name}-state",
                **dispatcher,  # type: ignore[arg-type]
            )
        )
        return App(
            settings=settings,
            forge=self.client(self.identity),
            repo=self.repo,
            mainline=LocalMainline(self.repo),
            runner=self.runner,
            notifier=self.notifier,
            state_dir=settings.dispatcher.state_dir,
            identity=self.identity,
        )

    def propose(
        self,
        action_id: str,
        content: str,
        *,
        author: str = "dev-bot",
        extra: dict[str, str | bytes | None] | None = None,
    ) -> int:
        files = {f"vault/actions/{action_id}.toml": content, **(extra or {})}
        encoded = {p: c.encode() if isinstance(c, str) else c for p, c in files.items()}
        branch = f"vault/{action_id}"
        old = self.repo.branches(branch).get(branch)
        commit = self.repo.commit_files(
            old or self.repo.resolve("main"),
            encoded,
            f"propose {action_id}",
            Identity(author, f"{author}@localhost"),
            when=0,
        )
        self.repo.update_ref(f"refs/heads/{branch}", commit, old)
        [pr] = [
            p for p in self.client(author).fetch_pull_requests() if p.head_ref == branch
        ]
        return pr.number

    def pull(self, number: int) -> PullRequest:
        return self.client(OPERATOR).fetch_pull_request(number)

    def merge_as(self, user: str, number: int) -> None:
        """Approve, then merge as *user* (what ``vault approve`` does, ADR 0008)."""
        pr = self.pull(number)
        forge = self.client(user)
        if user != pr.author:
            forge.approve(number, pr.head_sha, "looks right")
        forge.merge(number, pr.head_sha)

    def merge_unapproved(self, user: str, number: int) -> None:
        self.client(user).merge(number, self.pull(number).head_sha)

    def wait_for_checks(self) -> None:
        return None  # local mode has no background mergeability check

    def at(self, offset: timedelta) -> datetime:
        self.now[0] = self.clock + offset
        return self.now[0]

    def tick(
        self,
        app: App | None = None,
        *,
        at: timedelta | None = None,
        dry_run: bool = False,
    ) -> TickReport:
        when = self.at(at) if at is not None else self.at(self.now[0] + POLL - T0)
        return tick(app or self.app(), when, dry_run=dry_run)

    def push_main(self, files: dict[str, str | bytes | None], author: str) -> str:
        """Commit *files* straight onto main as *author* (an admin's direct push)."""
        encoded = {p: c.encode() if isinstance(c, str) else c for p, c in files.items()}
        old = self.repo.resolve("refs/heads/main")
        commit = self.repo.commit_files(
            old, encoded, "direct push", Identity(author, f"{author}@localhost"), when=0
        )
        LocalMainline(self.repo).publish(commit, old)
        return commit

    def main_files(self, prefix: str) -> list[str]:
        return list(self.repo.list_files(self.repo.resolve("refs/heads/main"), prefix))

    def main_file(self, path: str) -> bytes | None:
        return self.repo.read_file(self.repo.resolve("refs/heads/main"), path)


def make_local_harness(
    tmp_path: Path, policy_edit: Callable[[str], str] | None = None
) -> LocalHarness:
    ops = tmp_path / "ops"
    init_repo(ops, template_files(policy_edit))
    return LocalHarness(Pygit2OpsRepo.open(ops), tmp_path)
