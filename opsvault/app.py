"""The composition root: the one place that turns settings into adapters.

``App`` is one running opsvault: settings and the adapter behind each port.
``build_app`` makes it (the dispatcher, ``vault plan --config``, the demo),
``open_forge`` gives the forge alone (``vault request``, ``dispatcher
check-config``), ``open_local`` the local forge of an ops directory (``vault
approve``/``reject``/``hold``, ``vault plan``), ``verify_identity`` checks the
token, ``App.close`` releases connections. CLI commands and planner modules go
through these and never construct an adapter themselves. Passed down
explicitly, never held in a module global.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from opsvault.config import ForgeKind, Settings, git_auth_environment
from opsvault.dispatcher.nudges import Nudges
from opsvault.dispatcher.secrets import Redactor
from opsvault.errors import ConfigError
from opsvault.forge.token import DEFAULT_TOKEN_VARIABLE
from opsvault.layout import DEFAULT_BRANCH

if TYPE_CHECKING:
    from opsvault.dispatcher.sandbox import SandboxStatus
    from opsvault.forge.client import ForgejoClient
    from opsvault.forge.local import LocalForge
    from opsvault.git.base import OpsRepo
    from opsvault.git.mainline import LocalMainline
    from opsvault.git.pygit2_repo import Pygit2OpsRepo
    from opsvault.ports import Forge, Mainline, Notifier, Runner

log = logging.getLogger(__name__)

# Local mode: the base branch of an ops directory opened without settings.
BRANCH_CONFIG = "opsvault.branch"


def _no_checkpoint(name: str) -> None:
    return None


def _nothing_to_redact() -> Redactor:
    return Redactor(dict)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class App:
    settings: Settings
    forge: Forge
    repo: OpsRepo
    mainline: Mainline
    runner: Runner
    notifier: Notifier
    state_dir: Path
    # the dispatcher's own forge user: it merges low tier and writes records
    identity: str
    # Called with a name at each step between claim and result ("claimed", "executed",
    # "recorded"); the exactly-once tests kill the process there. A no-op otherwise.
    checkpoint: Callable[[str], None] = field(default=_no_checkpoint)
    # Replaces every known secret value and the forge token in text the dispatcher
    # records (comments, notifications, reports, result records); refreshed each
    # tick. A built App's redactor knows every secret; by default nothing is redacted.
    redact: Redactor = field(default_factory=_nothing_to_redact)
    # Whether steps run sandboxed, as decided at start (None: not decided, so not).
    sandbox: SandboxStatus | None = None
    # The wall clock. A tick measures how long it has run with it (claim deadlines
    # count from the claim commit, invariant I8); tests replace it to slow a tick down.
    clock: Callable[[], datetime] = field(default=_utcnow)
    # PRs webhooks said changed; the service wakes the tick (docs/forgejo.md "Webhook")
    nudges: Nudges = field(default_factory=Nudges)

    def open_other(self, owner: str, name: str) -> ForgejoClient:
        """Return the forge's client for another repository (the planner reads issues there)."""
        if self.settings.forge.kind is not ForgeKind.FORGEJO:
            raise ConfigError(
                f"{owner}/{name}",
                "no forge to read it from in local mode",
                "set forge.kind = 'forgejo'",
            )
        return _forgejo_client(self.settings, owner, name)

    def close(self) -> None:
        """Release what the adapters hold (the HTTP clients' connection pools)."""
        self.forge.close()
        self.notifier.close()


def _forgejo_client(settings: Settings, owner: str, name: str) -> ForgejoClient:
    from opsvault.forge.client import ForgejoClient

    token = settings.forge.token
    if token is None:
        raise ConfigError(
            f"{owner}/{name}",
            "no forge token",
            f"set {DEFAULT_TOKEN_VARIABLE} or forge.token_file",
        )
    return ForgejoClient(settings.forge.url, owner, name, token)


def open_forge(settings: Settings) -> Forge:
    """Return the forge the settings name, without cloning the ops repo.

    What needs only the forge API (``vault request``, the start-up approver
    check) opens this; ``close_forge`` releases it.
    """
    if settings.forge.kind is ForgeKind.FORGEJO:
        owner, name = settings.forge.repo.split("/", 1)
        return _forgejo_client(settings, owner, name)
    if settings.forge.path is None:
        raise ConfigError("forge.path", "required when forge.kind is 'local'")
    return open_local(
        settings.forge.path,
        settings.dispatcher.identity,
        operator=settings.forge.operator,
        branch=settings.forge.branch,
    )


def close_forge(forge: Forge) -> None:
    """Release *forge*'s connections (the HTTP adapter holds a pool; local has none)."""
    forge.close()


def open_local(
    ops: Path | Pygit2OpsRepo,
    user: str,
    *,
    operator: str | None = None,
    branch: str | None = None,
) -> LocalForge:
    """Return the local forge of ops directory (or opened repository) *ops*, acting as *user*.

    The base branch is *branch*, else ``git config opsvault.branch``, else
    ``main``.
    """
    from opsvault.forge.local import LocalForge

    repo = open_repo(ops) if isinstance(ops, Path) else ops
    base = branch or repo.config_value(BRANCH_CONFIG) or DEFAULT_BRANCH
    return LocalForge(
        repo, acting_user=user, operator=operator or user, base_branch=base
    )


def local_mainline(forge: LocalForge) -> LocalMainline:
    """Return the mainline of a local forge: its base branch, moved in place."""
    from opsvault.git.mainline import LocalMainline

    return LocalMainline(forge.repo, forge.base_branch)


def open_repo(ops: Path) -> Pygit2OpsRepo:
    """Return the git repository of ops directory *ops* (read-only commands)."""
    from opsvault.git.pygit2_repo import Pygit2OpsRepo

    return Pygit2OpsRepo.open(ops)


def init_repo(target: Path, branch: str = DEFAULT_BRANCH) -> Pygit2OpsRepo:
    """Create an empty git repository at *target* whose first branch is *branch*."""
    from opsvault.git.pygit2_repo import Pygit2OpsRepo

    return Pygit2OpsRepo.init(target, initial_branch=branch)


def base_branch_of(repo: Pygit2OpsRepo) -> str:
    """Return the base branch of a local ops repo opened without settings."""
    return repo.config_value(BRANCH_CONFIG) or DEFAULT_BRANCH


def build_app(
    settings: Settings,
    environ: Mapping[str, str],
    *,
    sandbox: SandboxStatus | None = None,
) -> App:
    """Return the App the settings describe: forge, ops repo, mainline, runner, notifier.

    Local mode opens the ops repo in place. Forgejo mode keeps a bare clone in
    ``state_dir/repo.git``, made on first start and fetched by every tick.
    *environ* feeds ``OPSVAULT_SECRET_<NAME>`` secrets. *sandbox* is what
    ``sandbox.sandbox_for`` decided at start (None: steps are not sandboxed,
    for callers that never execute). Every known secret value and the forge
    token are redacted from what the App records (``App.redact``). Raise
    ConfigError or GitError when the repository cannot be opened or cloned.
    """
    from opsvault.dispatcher.notify import WebhookNotifier
    from opsvault.dispatcher.runner import SubprocessRunner
    from opsvault.dispatcher.secrets import (
        FORGE_TOKEN_MARKER,
        ChainSecrets,
        DirectorySecrets,
        EnvSecrets,
        known_secrets,
    )
    from opsvault.git.mainline import RemoteMainline
    from opsvault.git.pygit2_repo import Pygit2OpsRepo
    from opsvault.ports import SecretSource

    forge_settings = settings.forge
    state_dir = settings.dispatcher.state_dir
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            str(state_dir),
            f"cannot create the state directory: {exc.strerror}",
            "create it for the dispatcher's user or set dispatcher.state_dir",
        ) from exc
    sources: list[SecretSource] = []
    if settings.secrets.dir is not None:
        sources.append(DirectorySecrets(settings.secrets.dir))
    sources.append(EnvSecrets(environ))
    secrets = ChainSecrets(*sources)
    token = settings.forge.token

    basic = git_auth_environment(settings).get("GIT_CONFIG_VALUE_0", "")
    webhook_secret = settings.webhook.secret_file

    def everything_secret() -> dict[str, str]:
        found = known_secrets(secrets)
        if token is not None:
            found[FORGE_TOKEN_MARKER] = token.reveal()
        if basic:  # the token as git sends it: base64 of "identity:token"
            found[f"{FORGE_TOKEN_MARKER}-basic"] = basic.rsplit(" ", 1)[-1]
        if webhook_secret is not None:
            from opsvault.dispatcher.webhooks import load_webhook_secret

            with contextlib.suppress(ConfigError):
                value = load_webhook_secret(webhook_secret)
                found["webhook-secret"] = value.decode("utf-8", "replace")
        return found

    redact = Redactor(everything_secret)

    forge: Forge
    mainline: Mainline
    repo: OpsRepo
    if forge_settings.kind is ForgeKind.LOCAL:
        if forge_settings.path is None:
            raise ConfigError("forge.path", "required when forge.kind is 'local'")
        local = open_local(
            forge_settings.path,
            settings.dispatcher.identity,
            operator=forge_settings.operator,
            branch=forge_settings.branch,
        )
        forge, repo, mainline = local, local.repo, local_mainline(local)
    else:
        if forge_settings.token is None:
            raise ConfigError(
                "forge token",
                "required when forge.kind is 'forgejo'",
                DEFAULT_TOKEN_VARIABLE,
            )
        clone = state_dir / "repo.git"
        # Credentials never go into the URL (it is stored in the clone's config) nor
        # into argv: git gets them as GIT_CONFIG_* in its environment only.
        auth = git_auth_environment(settings)
        if clone.exists():
            repo = Pygit2OpsRepo.open(clone, transport_env=auth)
        else:
            log.info("cloning %s into %s", forge_settings.clone_url, clone)
            repo = Pygit2OpsRepo.clone(
                forge_settings.clone_url, clone, bare=True, transport_env=auth
            )
        owner, name = forge_settings.repo.split("/", 1)
        forge = _forgejo_client(settings, owner, name)
        mainline = RemoteMainline(repo, forge_settings.branch)

    return App(
        settings=settings,
        forge=forge,
        repo=repo,
        mainline=mainline,
        runner=SubprocessRunner(
            secrets,
            sandbox=sandbox.sandbox if sandbox is not None else None,
            redactions=redact.values,
        ),
        notifier=WebhookNotifier(secrets, redact=redact),
        state_dir=state_dir,
        identity=settings.dispatcher.identity,
        redact=redact,
        sandbox=sandbox,
    )


def verify_identity(app: App) -> None:
    """Refuse to run when the forge token does not belong to ``dispatcher.identity``.

    Fire-time checks decide eligibility by who merged: a dispatcher merging
    under another account (an admin's, say) would make its own low-tier merges
    look like an admin's and blur every record. In local mode the forge acts as
    the identity itself, so the check always passes.
    """
    login = app.forge.whoami()
    if login != app.identity:
        raise ConfigError(
            "dispatcher.identity",
            f"is {app.identity!r} but the forge token belongs to {login!r}",
            "set dispatcher.identity to the token's user, or give the dispatcher its own token",
        )
