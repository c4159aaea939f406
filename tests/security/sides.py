"""One ops repo, two forges: the fake Forgejo and LocalForge, behind the same small API.

The merge-integrity and claim-deadline attacks build real git histories with
any parents (what a proposer with push rights can do) and run real dispatcher
ticks; ``ForgejoSide`` and ``LocalSide`` let one test body do that in both modes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pygit2

from opsvault.app import App, build_app
from opsvault.changes import preview_merge
from opsvault.config import DispatcherSettings, Settings, load_settings
from opsvault.dispatcher.integrity import merge_message
from opsvault.dispatcher.notify import RecordingNotifier
from opsvault.dispatcher.report import TickReport
from opsvault.dispatcher.runner import RecordingRunner
from opsvault.dispatcher.tick import tick
from opsvault.forge.local import LocalForge
from opsvault.git.base import Identity
from opsvault.git.mainline import LocalMainline
from opsvault.git.pygit2_repo import Pygit2OpsRepo
from opsvault.ports import Runner
from opsvault.snapshot import CommitSnapshot, load_base_state
from testing.fake_forgejo.pytest_plugin import assert_no_violations
from tests.conftest import init_repo
from tests.dispatcher.harness import (
    REPO,
    T0,
    Harness,
    documented_protection,
    make_harness,
    template_files,
)


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


class Side:
    """What a test needs from either forge."""

    name: str
    runner: Runner
    notifier: RecordingNotifier
    now: list[datetime]

    def main(self) -> str:
        raise NotImplementedError

    def commit(
        self,
        branch: str | None,
        parent: str,
        changes: dict[str, str | bytes | None],
        author: str = "dev-bot",
    ) -> str:
        """Commit *changes* on top of *parent*; point *branch* (if any) at it."""
        raise NotImplementedError

    def open(self, branch: str, author: str = "dev-bot") -> int:
        raise NotImplementedError

    def point(self, branch: str, sha: str) -> None:
        """Create or move *branch* to *sha* (what a proposer's push does)."""
        raise NotImplementedError

    def app(self, name: str = "d1") -> App:
        raise NotImplementedError

    def merge_as(self, user: str, number: int) -> None:
        raise NotImplementedError

    def is_merged(self, number: int) -> bool:
        raise NotImplementedError

    def read(self, path: str) -> bytes | None:
        raise NotImplementedError

    def files(self, prefix: str) -> list[str]:
        raise NotImplementedError

    def close(self) -> None:
        return None

    def at(self, offset: timedelta) -> datetime:
        self.now[0] = T0 + offset
        return self.now[0]

    def settle(self) -> None:
        """Let the forge finish what it does after a push (Forgejo re-checks mergeability)."""
        self.now[0] += timedelta(seconds=10)

    def tick(
        self, app: App | None = None, *, at: timedelta | None = None
    ) -> TickReport:
        when = self.at(at) if at is not None else self.now[0]
        return tick(app or self.app(), when)

    def executed(self) -> list[str]:
        assert isinstance(self.runner, RecordingRunner)
        return [r.action_id for r in self.runner.requests]

    def wrap_merge(
        self,
        app: App,
        before: Callable[[int], None] | None,
        after: Callable[[int], None] | None,
    ) -> None:
        """Run *before*/*after* around the dispatcher's forge merge calls (with the PR number)."""
        forge: Any = app.forge
        original = forge.merge

        def merge(number: int, head_sha: str, **kwargs: Any) -> Any:
            if before is not None:
                before(number)
            result = original(number, head_sha, **kwargs)
            if after is not None:
                after(number)
            return result

        forge.merge = merge


class ForgejoSide(Side):
    """The fake Forgejo with the documented branch protection minus its
    ``protected_file_patterns``: with them Forgejo itself would already refuse
    some of these merges (a merge-base diff touching ``vault/policy.toml``), and
    these tests prove opsvault's own defences (ADR 0004)."""

    name = "forgejo"

    def __init__(self, tmp_path: Path) -> None:
        self.harness: Harness = make_harness(tmp_path)
        # opsvault's own defence is under test, not Forgejo's protected files.
        rule = replace(documented_protection("vault-bot"), protected_file_patterns="")
        self.harness.forge.protect_branch(REPO, rule)
        self.runner = self.harness.runner
        self.notifier = self.harness.notifier
        self.now = self.harness.now
        self.store = self.harness.forge.repo(REPO).git
        self.apps: dict[str, App] = {}

    def main(self) -> str:
        tip = self.store.tip("main")
        assert tip is not None
        return tip

    def commit(
        self,
        branch: str | None,
        parent: str,
        changes: dict[str, str | bytes | None],
        author: str = "dev-bot",
    ) -> str:
        repo = self.store.repo
        with self.store.lock:
            index = pygit2.Index()
            base = repo.get(parent)
            assert isinstance(base, pygit2.Commit)
            index.read_tree(base.tree)
            for path, content in changes.items():
                if content is None:
                    index.remove(path)
                else:
                    blob = repo.create_blob(_bytes(content))
                    index.add(pygit2.IndexEntry(path, blob, pygit2.enums.FileMode.BLOB))
            tree = index.write_tree(repo)
            sig = pygit2.Signature(
                author, f"{author}@example.invalid", 1_790_000_000, 0
            )
            oid = repo.create_commit(
                None, sig, sig, "proposer commit", tree, [pygit2.Oid(hex=parent)]
            )
            if branch is not None:
                self.store.set_ref(f"refs/heads/{branch}", str(oid))
            return str(oid)

    def open(self, branch: str, author: str = "dev-bot") -> int:
        number = self.harness.forge.open_pull(
            REPO, head=branch, title=branch, author=author
        )
        self.settle()  # Forgejo has checked the new PR's mergeability
        return number

    def point(self, branch: str, sha: str) -> None:
        self.store.set_ref(f"refs/heads/{branch}", sha)

    def app(self, name: str = "d1") -> App:
        if name not in self.apps:
            self.apps[name] = self.harness.app(name)
        app = self.apps[name]
        app.runner = self.runner
        return app

    def merge_as(self, user: str, number: int) -> None:
        self.harness.merge_as(user, number)

    def settle(self) -> None:
        notice = getattr(self.harness.forge, "notice_pushes", None)
        if notice is not None:
            notice()
        super().settle()

    def is_merged(self, number: int) -> bool:
        return bool(self.harness.pull(number).merged)

    def read(self, path: str) -> bytes | None:
        return self.harness.main_file(path)

    def files(self, prefix: str) -> list[str]:
        return self.harness.main_files(prefix)

    def close(self) -> None:
        self.harness.close()
        assert_no_violations(self.harness.forge)


WHO = Identity("alice", "alice@example.invalid")
IDENTITY = "vault-bot"  # the dispatcher


class LocalSide(Side):
    """LocalForge on a local ops repo: the one local-mode harness of these tests.

    By default the repo is bare and the clock is the test's (``now``), for the
    attacks that build histories by hand. ``checkout=True`` gives what an
    operator has instead: a checked-out ops repo (``ops``) with a
    ``dispatcher.toml`` beside it (``config``), for `vault approve|reject --ops`
    and `vault dispatcher check-config`; its app is built from that file by
    ``build_app``, and it ticks at the wall clock, as those commands do.
    """

    name = "local"

    def __init__(
        self,
        tmp_path: Path,
        policy_edit: Callable[[str], str] | None = None,
        *,
        checkout: bool = False,
    ) -> None:
        files = template_files(policy_edit)
        self.checkout = checkout
        if checkout:
            self.ops = tmp_path / "ops"
            init_repo(self.ops, files)
        else:
            self.ops = tmp_path / "ops.git"
            pygit2.init_repository(str(self.ops), bare=True, initial_head="main")
        self.repo = Pygit2OpsRepo.open(self.ops)
        if not checkout:
            encoded = {p: _bytes(c) for p, c in files.items()}
            root = self.repo.commit_files(
                None, encoded, "initial", WHO, when=1_790_000_000
            )
            self.repo.update_ref("refs/heads/main", root, None)
        self.root = tmp_path
        self.config = tmp_path / "dispatcher.toml"
        self.config.write_text(
            f'[forge]\npath = "{self.ops}"\noperator = "alice"\n'
            f'[dispatcher]\nidentity = "{IDENTITY}"\n'
            f'state_dir = "{tmp_path / "state"}"\n'
        )
        self.runner = RecordingRunner()
        self.notifier = RecordingNotifier()
        self.now = [datetime.now(UTC) if checkout else T0]
        self.apps: dict[str, App] = {}

    def _clock(self) -> datetime:
        if self.checkout:
            self.now[0] = datetime.now(UTC)
        return self.now[0]

    def forge(self, user: str) -> LocalForge:
        return LocalForge(self.repo, user, operator="alice", clock=self._clock)

    def main(self) -> str:
        return self.repo.resolve("refs/heads/main")

    def commit(
        self,
        branch: str | None,
        parent: str,
        changes: dict[str, str | bytes | None],
        author: str = "dev-bot",
    ) -> str:
        who = Identity(author, f"{author}@example.invalid")
        sha = self.repo.commit_files(
            parent,
            {p: None if c is None else _bytes(c) for p, c in changes.items()},
            "proposer commit",
            who,
            when=1_790_000_000,
        )
        if branch is not None:
            self.point(branch, sha)
        return sha

    def point(self, branch: str, sha: str) -> None:
        old = self.repo.branches(branch).get(branch)
        self.repo.update_ref(f"refs/heads/{branch}", sha, old)

    def open(self, branch: str, author: str = "dev-bot") -> int:
        for pull in self.forge("alice").fetch_pull_requests():
            if pull.head_ref == branch:
                return pull.number
        raise AssertionError(f"{branch} is not a proposal")

    def app(self, name: str = "d1") -> App:
        if self.checkout and name not in self.apps:
            app = build_app(load_settings({}, self.config), {})
            app.runner, app.notifier = self.runner, self.notifier
            self.apps[name] = app
        if name not in self.apps:
            state_dir = self.root / f"{name}-state"
            settings = Settings(
                dispatcher=DispatcherSettings(identity="vault-bot", state_dir=state_dir)
            )
            self.apps[name] = App(
                settings=settings,
                forge=self.forge("vault-bot"),
                repo=self.repo,
                mainline=LocalMainline(self.repo),
                runner=self.runner,
                notifier=self.notifier,
                state_dir=state_dir,
                identity="vault-bot",
            )
        return self.apps[name]

    def merge_as(self, user: str, number: int) -> None:
        """Approve (unless *user* proposed it), then merge: what an approver does."""
        forge = self.forge(user)
        pull = forge.fetch_pull_request(number)
        if user != pull.author:
            forge.approve(number, pull.head_sha, "looks right")
        forge.merge(number, pull.head_sha)

    def is_merged(self, number: int) -> bool:
        return self.forge("alice").fetch_pull_request(number).merged

    def read(self, path: str) -> bytes | None:
        return self.repo.read_file(self.main(), path)

    def files(self, prefix: str) -> list[str]:
        return list(self.repo.list_files(self.main(), prefix))

    def tick(
        self, app: App | None = None, *, at: timedelta | None = None
    ) -> TickReport:
        if self.checkout and at is None:
            self._clock()
        return super().tick(app, at=at)

    def propose(
        self, branch: str, files: Mapping[str, str | bytes | None], author: str
    ) -> int:
        """Push *branch* (one commit by *author* on main) and return its PR number."""
        self.commit(branch, self.main(), dict(files), author)
        return self.open(branch, author)

    def merge_as_dispatcher(self, number: int) -> None:
        """Merge *number* as the dispatcher identity, with the mark a tick writes (ADR 0004)."""
        main = self.main()
        head = self.forge(IDENTITY).fetch_pull_request(number).head_sha
        preview = preview_merge(
            self.repo, main, head, load_base_state(CommitSnapshot(self.repo, main))
        )
        message = merge_message(
            number, preview.verdict.tier.label, main, preview.manifest
        )
        self.forge(IDENTITY).merge(number, head, message=message)

    def main_json(self, path: str) -> dict[str, object]:
        data = json.loads(self.read(path) or b"")
        assert isinstance(data, dict)
        return data

    def main_files(self, prefix: str) -> list[str]:
        return self.files(prefix)
