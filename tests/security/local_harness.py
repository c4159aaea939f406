"""A local-mode ops repo with a real dispatcher: the local twin of ``tests/dispatcher/harness.py``."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from opsvault.app import App, build_app
from opsvault.changes import preview_merge
from opsvault.config import load_settings
from opsvault.dispatcher.integrity import merge_message
from opsvault.dispatcher.notify import RecordingNotifier
from opsvault.dispatcher.report import TickReport
from opsvault.dispatcher.runner import RecordingRunner
from opsvault.dispatcher.tick import tick
from opsvault.forge.local import LocalForge
from opsvault.git.base import Identity
from opsvault.git.pygit2_repo import Pygit2OpsRepo
from opsvault.snapshot import CommitSnapshot, load_base_state
from tests.conftest import init_repo
from tests.dispatcher.harness import template_files

IDENTITY = "vault-bot"


@dataclass
class LocalVault:
    ops: Path
    config: Path
    repo: Pygit2OpsRepo
    runner: RecordingRunner = field(default_factory=RecordingRunner)
    _app: App | None = None

    def app(self) -> App:
        if self._app is None:
            self._app = build_app(load_settings({}, self.config), {})
            self._app.runner = self.runner
            self._app.notifier = RecordingNotifier()
        return self._app

    def tick(self) -> TickReport:
        return tick(self.app(), datetime.now(UTC))

    def forge(self, user: str) -> LocalForge:
        return LocalForge(self.repo, user, operator="alice")

    def propose(
        self, branch: str, files: Mapping[str, str | bytes | None], author: str
    ) -> int:
        """Push *branch* (one commit by *author* on main) and return its PR number."""
        encoded = {p: c.encode() if isinstance(c, str) else c for p, c in files.items()}
        commit = self.repo.commit_files(
            self.repo.resolve("main"),
            encoded,
            f"propose {branch}",
            Identity(author, f"{author}@localhost"),
            when=0,
        )
        self.repo.update_ref(f"refs/heads/{branch}", commit, None)
        [pr] = [
            p for p in self.forge(author).fetch_pull_requests() if p.head_ref == branch
        ]
        return pr.number

    def merge_as(self, user: str, number: int) -> None:
        forge = self.forge(user)
        forge.merge(number, forge.fetch_pull_request(number).head_sha)

    def merge_as_dispatcher(self, number: int) -> None:
        """Merge *number* as the dispatcher identity, with the mark a tick writes (ADR 0004)."""
        main = self.repo.resolve("main")
        head = self.forge(IDENTITY).fetch_pull_request(number).head_sha
        preview = preview_merge(
            self.repo, main, head, load_base_state(CommitSnapshot(self.repo, main))
        )
        message = merge_message(
            number, preview.verdict.tier.label, main, preview.manifest
        )
        self.forge(IDENTITY).merge(number, head, message=message)

    def main_files(self, prefix: str) -> list[str]:
        return list(self.repo.list_files(self.repo.resolve("main"), prefix))

    def main_json(self, path: str) -> dict[str, object]:
        data = json.loads(self.repo.read_file(self.repo.resolve("main"), path) or b"")
        assert isinstance(data, dict)
        return data

    def executed(self) -> list[str]:
        return [r.action_id for r in self.runner.requests]


def make_local_vault(
    tmp_path: Path, policy_edit: Callable[[str], str] | None = None
) -> LocalVault:
    ops = tmp_path / "ops"
    init_repo(ops, template_files(policy_edit))
    config = tmp_path / "dispatcher.toml"
    config.write_text(
        f'[forge]\npath = "{ops}"\noperator = "alice"\n'
        f'[dispatcher]\nidentity = "{IDENTITY}"\nstate_dir = "{tmp_path / "state"}"\n'
    )
    return LocalVault(ops, config, Pygit2OpsRepo.open(ops))
