"""A dispatcher wired to the fake Forgejo, with real git on both sides."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from opsvault._resources import data_dir
from opsvault.app import App
from opsvault.changes import preview_merge
from opsvault.config import DispatcherSettings, Settings
from opsvault.dispatcher.integrity import merge_message
from opsvault.dispatcher.notify import RecordingNotifier
from opsvault.dispatcher.report import TickReport
from opsvault.dispatcher.runner import RecordingRunner
from opsvault.dispatcher.tick import tick
from opsvault.forge.client import ForgejoClient
from opsvault.forge.token import ForgeToken
from opsvault.git.mainline import RemoteMainline
from opsvault.git.pygit2_repo import Pygit2OpsRepo
from opsvault.ports import Runner
from opsvault.snapshot import CommitSnapshot, load_base_state
from testing.fake_forgejo.model import BranchProtection
from testing.fake_forgejo.protection import PUSHER_ENV
from testing.fake_forgejo.server import FakeForgejo

REPO = "acme/ops"
T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
CHECKING = timedelta(seconds=1)  # Forgejo's mergeability check, on the fake clock
POLL = timedelta(seconds=30)  # how far the clock moves between two plain ticks
DOCS = Path(__file__).parents[2] / "docs" / "forgejo.md"


def documented_protection(identity: str) -> BranchProtection:
    """Return the branch protection docs/forgejo.md gives, for dispatcher *identity*."""
    text = DOCS.read_text()
    found = re.search(
        r"<!-- opsvault:branch-protection -->\n```json\n(.*?)\n```", text, re.S
    )
    assert found is not None, "docs/forgejo.md lost its branch-protection block"
    body = json.loads(found.group(1))
    body["push_whitelist_usernames"] = [identity]
    fields: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in body.items()
    }
    return BranchProtection(**fields)


POLICY_EXTRA = """
[notify.ops]
kind = "webhook"
url = "https://hooks.example.invalid/ops"
"""


def template_files(
    policy_edit: Callable[[str], str] | None = None,
) -> dict[str, str | bytes]:
    root = data_dir("ops-template")
    files: dict[str, str | bytes] = {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file()
    }
    policy = (root / "vault" / "policy.toml").read_text()
    policy = policy.replace(
        "[reviewers]               # may merge medium\nusers = []",
        '[reviewers]               # may merge medium\nusers = ["bob"]',
    )
    policy = policy.replace(
        'merge = "admin"\nnotify = []', 'merge = "admin"\nnotify = ["ops"]'
    )
    policy += POLICY_EXTRA
    if policy_edit is not None:
        policy = policy_edit(policy)
    files["vault/policy.toml"] = policy
    return files


NOOP = 'formula = "noop"\ncontext = "smoke test"\nparams = {{ message = "{msg}" }}\n'
HOOK = 'formula = "http-hook"\ncontext = "deploy"\nsecrets = ["HOOK_TOKEN"]\nparams = {{ url = "https://deploy.example.org/{n}" }}\n'
HUMAN = (
    'context = "rotate the key"\n[action_required]\ndescription = "rotate it by hand"\n'
)
GIT_MAKE = 'formula = "git-make"\ncontext = "release"\nparams = {{ repo = "https://git.example.org/acme/app", ref = "v{n}", target = "release" }}\n'


@dataclass
class Harness:
    forge: FakeForgejo
    root: Path
    tokens: dict[str, str]
    runner: Runner = field(default_factory=RecordingRunner)
    notifier: RecordingNotifier = field(default_factory=RecordingNotifier)
    identity: str = "vault-bot"
    clock: datetime = T0
    # The fake forge's clock, shared.
    now: list[datetime] = field(default_factory=lambda: [T0])
    clients: list[ForgejoClient] = field(default_factory=list)

    def client(self, user: str) -> ForgejoClient:
        client = ForgejoClient(
            self.forge.url,
            "acme",
            "ops",
            ForgeToken(self.tokens[user]),
            sleep=lambda s: None,
        )
        self.clients.append(client)
        return client

    def close(self) -> None:
        for client in self.clients:
            client.close()
        self.forge.stop()

    def app(self, name: str = "d1", **dispatcher: Any) -> App:
        clone = self.root / f"{name}.git"
        # The fake's pre-receive hook learns who pushes from this variable.
        env = {PUSHER_ENV: self.identity}
        if not clone.exists():
            repo = Pygit2OpsRepo.clone(
                str(self.forge.repo(REPO).git.path),
                clone,
                bare=True,
                transport_env=env,
            )
        else:
            repo = Pygit2OpsRepo.open(clone, transport_env=env)
        settings = Settings(
            dispatcher=DispatcherSettings(
                identity=self.identity,
                state_dir=self.root / f"{name}-state",
                **dispatcher,
            )
        )
        return App(
            settings=settings,
            forge=self.client(self.identity),
            repo=repo,
            mainline=RemoteMainline(repo),
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
        files: dict[str, str | bytes | None] = {
            f"vault/actions/{action_id}.toml": content,
            **(extra or {}),
        }
        branch = f"vault/{action_id}"
        self.forge.push(
            REPO, branch, files, author=author, message=f"propose {action_id}"
        )
        return self.forge.open_pull(
            REPO, head=branch, title=f"propose {action_id}", author=author
        )

    def pull(self, number: int):  # type: ignore[no-untyped-def]
        return self.client("alice").fetch_pull_request(number)

    def merge_as(self, user: str, number: int) -> None:
        """Approve, then merge as *user*, once Forgejo's background check is done.

        A human merger approves the head they merge (docs/forgejo.md, ADR 0008);
        Forgejo refuses the approval of one's own PR, so a proposer only merges.
        """
        self.wait_for_checks()
        pr = self.pull(number)
        if user != pr.author:
            self.client(user).approve(number, pr.head_sha, "looks right")
        self.client(user).merge(number, pr.head_sha)

    def merge_as_dispatcher(self, number: int) -> None:
        """Merge *number* with the dispatcher's identity and mark, as a low-tier tick would.

        The mark (ADR 0004) is computed from the forge's current main, exactly
        like the dispatcher computes it from the main it classified against.
        """
        repo = Pygit2OpsRepo.open(self.forge.repo(REPO).git.path)
        main = repo.resolve("refs/heads/main")
        pr = self.pull(number)
        preview = preview_merge(
            repo, main, pr.head_sha, load_base_state(CommitSnapshot(repo, main))
        )
        message = merge_message(
            number, preview.verdict.tier.label, main, preview.manifest
        )
        self.client(self.identity).merge(number, pr.head_sha, message=message)

    def merge_unapproved(self, user: str, number: int) -> None:
        """Merge as *user* without approving first."""
        self.wait_for_checks()
        self.client(user).merge(number, self.pull(number).head_sha)

    def wait_for_checks(self) -> None:
        """Let Forgejo finish the mergeability checks of every push so far: the clock moves on."""
        self.forge.notice_pushes()
        self.now[0] += CHECKING

    def at(self, offset: timedelta) -> datetime:
        """Move the shared clock (forge and dispatcher) to T0 + *offset*."""
        self.now[0] = self.clock + offset
        return self.now[0]

    def tick(
        self,
        app: App | None = None,
        *,
        at: timedelta | None = None,
        dry_run: bool = False,
    ) -> TickReport:
        # Between two ticks a poll interval passes (Forgejo's checks finish).
        when = self.at(at) if at is not None else self.at(self.now[0] + POLL - T0)
        return tick(app or self.app(), when, dry_run=dry_run)

    def push_main(self, files: dict[str, str | bytes | None], author: str) -> str:
        """Commit *files* straight onto main as *author* (an admin's direct push)."""
        return self.forge.push(REPO, "main", files, author=author)

    def main_files(self, prefix: str) -> list[str]:
        store = self.forge.repo(REPO).git
        repo = Pygit2OpsRepo.open(store.path)
        return list(repo.list_files(repo.resolve("refs/heads/main"), prefix))

    def main_file(self, path: str) -> bytes | None:
        repo = Pygit2OpsRepo.open(self.forge.repo(REPO).git.path)
        return repo.read_file(repo.resolve("refs/heads/main"), path)


def veto_policy(text: str) -> str:
    """The template policy with its medium veto window (2 h) switched on."""
    return text.replace(
        'merge = "reviewer"\n# veto_window = "2h"',
        'merge = "reviewer"\nveto_window = "2h"',
    )


def fired(vault: Harness) -> list[str]:
    """The ids of the actions the harness's recording runner executed."""
    assert isinstance(vault.runner, RecordingRunner)
    return [r.action_id for r in vault.runner.requests]


def make_harness(
    tmp_path: Path, policy_edit: Callable[[str], str] | None = None
) -> Harness:
    now = [T0]
    forge = FakeForgejo(
        tmp_path / "forge",
        clock=lambda: now[0],
        checking_seconds=CHECKING.total_seconds(),
    )
    forge.start()
    tokens = {
        "alice": forge.add_user("alice"),
        "bob": forge.add_user("bob"),
        "dev-bot": forge.add_user("dev-bot", is_bot=True),
        "planner-bot": forge.add_user("planner-bot", is_bot=True),
        "vault-bot": forge.add_user("vault-bot"),
        "mallory": forge.add_user("mallory"),
    }
    forge.add_org("acme")
    forge.create_repo("acme", "ops", template_files(policy_edit))
    for user, access in (
        ("alice", "admin"),
        ("bob", "write"),
        ("dev-bot", "write"),
        ("planner-bot", "write"),
        ("vault-bot", "admin"),
        ("mallory", "write"),
    ):
        forge.add_collaborator(REPO, user, access)
    forge.protect_branch(REPO, documented_protection("vault-bot"))
    return Harness(forge, tmp_path, tokens, now=now)
