"""Dispatcher settings: one TOML file, ``OPSVAULT_<SECTION>_<KEY>`` overrides, and defaults.

``load_settings`` is the only place that reads the process environment (the
caller passes it in) and ``app.build_app`` is where the settings become
adapters. The layers (file, variables, overrides) are read in
``opsvault.config_sources``; here they become one ``Settings``, each section
checked for what its values mean together.
Precedence: override (a CLI flag) > ``OPSVAULT_*`` > config file > default. An
empty value in any layer means "not set here". The forge token is never a file
key: it comes from ``OPSVAULT_FORGE_TOKEN`` or ``forge.token_file`` and is held
in a ``ForgeToken``, whose ``repr`` and ``str`` are masked.

Every problem is collected before anything is raised, so an operator fixes a
configuration in one pass: ``InvalidConfigError`` lists them all, each shaped
``<file or variable>: <json path>: <what>[; <fix>]``.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from opsvault.config_sources import (
    TOKEN_VARIABLE,
    Layers,
    SettingProblem,
    layer_environ,
    layer_file,
    layer_overrides,
    read_token,
)
from opsvault.errors import ConfigError
from opsvault.forge.token import ForgeToken
from opsvault.layout import DEFAULT_BRANCH, POLICY, PROPOSAL_PREFIXES
from opsvault.vault.duration import render_duration

log = logging.getLogger(__name__)

DEFAULT_STATE_DIR = Path("/var/lib/opsvault")


class ForgeKind(StrEnum):
    LOCAL = "local"
    FORGEJO = "forgejo"


@dataclass(frozen=True, slots=True)
class ForgeSettings:
    kind: ForgeKind = ForgeKind.LOCAL
    url: str = ""
    repo: str = ""  # owner/name
    token_file: Path | None = None
    git_url: str = ""
    path: Path | None = None
    operator: str = "operator"
    branch: str = DEFAULT_BRANCH  # the base branch (layout: never a literal elsewhere)
    token: ForgeToken | None = None  # masked in repr; None in local mode

    @property
    def clone_url(self) -> str:
        """Return the URL the dispatcher clones: ``git_url``, else ``<url>/<repo>.git``."""
        return self.git_url or f"{self.url.rstrip('/')}/{self.repo}.git"


@dataclass(frozen=True, slots=True)
class DispatcherSettings:
    identity: str = "vault-bot"
    interval: timedelta = timedelta(seconds=30)
    state_dir: Path = DEFAULT_STATE_DIR
    max_concurrency: int = 4
    queue_limit: int = 100
    grace: timedelta = timedelta(seconds=30)
    # The guard self-check (dispatcher/guard.py, ADR 0018).
    on_guard_drift: str = "halt"  # a GuardPolicy: halt, alert
    guard_interval: timedelta = timedelta(days=1)
    guard_required_approvals: int = 0


@dataclass(frozen=True, slots=True)
class SecretsSettings:
    dir: Path | None = None


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    sandbox: str = "auto"  # a SandboxMode: auto, required, off
    bwrap: str = "bwrap"
    read_only: tuple[Path, ...] = ()


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """The webhook receiver (docs/forgejo.md "Webhook"); ``port`` None: polling only."""

    port: int | None = None
    bind: str = "127.0.0.1"
    secret_file: Path | None = None
    max_body: int = 1024 * 1024


@dataclass(frozen=True, slots=True)
class WebSettings:
    """The status page and ``/metrics`` (docs/operating.md "Status page"); ``port`` None: off."""

    port: int | None = None
    bind: str = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class PlannerSettings:
    interval: timedelta = timedelta(hours=1)
    issues_repo: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Settings:
    forge: ForgeSettings = field(default_factory=ForgeSettings)
    dispatcher: DispatcherSettings = field(default_factory=DispatcherSettings)
    secrets: SecretsSettings = field(default_factory=SecretsSettings)
    planner: PlannerSettings = field(default_factory=PlannerSettings)
    runner: RunnerSettings = field(default_factory=RunnerSettings)
    webhook: WebhookSettings = field(default_factory=WebhookSettings)
    web: WebSettings = field(default_factory=WebSettings)
    file: Path | None = None
    # "section.key" -> where the effective value came from (a file, a variable, an
    # override); keys left at their default are absent.
    sources: tuple[tuple[str, str], ...] = ()

    def source_of(self, key: str) -> str:
        """Return where the value of *key* (``"dispatcher.interval"``) came from."""
        return dict(self.sources).get(key, "default")


class InvalidConfigError(ConfigError):
    """The configuration has problems; carries every one of them (exit 78)."""

    def __init__(self, problems: Sequence[SettingProblem]) -> None:
        self.problems = tuple(problems)
        first = self.problems[0]
        # ConfigError's fields describe the first problem; the message lists all of
        # them, one per line, which ConfigError's one-line constructor cannot do.
        self.where, self.problem, self.hint = first.where, first.message, ""
        Exception.__init__(self, "\n".join(p.render() for p in self.problems))


# -- semantics ------------------------------------------------------------------------


def _build(layers: Layers, environ: Mapping[str, str], file: Path | None) -> Settings:
    # Sections are checked in this order, so problems are listed in it too.
    forge = _forge(layers, environ, file)
    secrets = _secrets(layers)
    runner = _runner(layers)
    webhook = _webhook(layers, file, forge.kind)
    return Settings(
        forge=forge,
        dispatcher=_dispatcher(layers, forge),
        secrets=secrets,
        planner=_planner(layers),
        runner=runner,
        webhook=webhook,
        web=_web(layers),
        file=file,
        sources=tuple(
            sorted(
                (f"{section}.{name}", where)
                for (section, name), (where, _) in layers.origins.items()
                if (section, name) in layers.values
            )
        ),
    )


def _forge(
    layers: Layers, environ: Mapping[str, str], file: Path | None
) -> ForgeSettings:
    v = layers.values
    kind = ForgeKind(v.get(("forge", "kind"), ForgeKind.LOCAL))
    ops_path = layers.path(("forge", "path"))
    token_file = layers.path(("forge", "token_file"))
    token: ForgeToken | None = None
    if kind is ForgeKind.FORGEJO:
        for name in ("url", "repo"):
            if ("forge", name) not in v:
                layers.missing(file, ("forge", name), "when forge.kind is 'forgejo'")
        seen = len(layers.problems)
        token = read_token(layers, environ, token_file)
        if token is None and len(layers.problems) == seen:
            where = str(file) if file is not None else "configuration"
            layers.problems.append(
                SettingProblem(
                    where,
                    "$.forge.token_file",
                    f"a forge token is required when forge.kind is 'forgejo'; set {TOKEN_VARIABLE} or forge.token_file",
                )
            )
    elif ops_path is None:
        layers.missing(file, ("forge", "path"), "when forge.kind is 'local'")
    elif not (ops_path / POLICY).is_file():
        layers.problem(
            ("forge", "path"),
            f"{str(ops_path)!r} is not an ops repo (no {POLICY}); create one with `vault init DIR`",
        )
    branch = str(v.get(("forge", "branch"), DEFAULT_BRANCH))
    if branch.startswith(PROPOSAL_PREFIXES):
        # Proposers push to these: a base branch among them would let them write policy.
        layers.problem(
            ("forge", "branch"),
            f"{branch!r} is a proposal branch name; pick a base branch outside {' and '.join(PROPOSAL_PREFIXES)}",
        )
    return ForgeSettings(
        kind=kind,
        url=str(v.get(("forge", "url"), "")),
        repo=str(v.get(("forge", "repo"), "")),
        token_file=token_file,
        git_url=str(v.get(("forge", "git_url"), "")),
        path=ops_path,
        operator=str(v.get(("forge", "operator"), ForgeSettings().operator)),
        branch=branch,
        token=token,
    )


def _secrets(layers: Layers) -> SecretsSettings:
    secrets_dir = layers.path(("secrets", "dir"))
    if secrets_dir is not None and not secrets_dir.is_dir():
        layers.problem(
            ("secrets", "dir"),
            f"{str(secrets_dir)!r} is not a directory; create it or unset secrets.dir",
        )
    return SecretsSettings(dir=secrets_dir)


def _runner(layers: Layers) -> RunnerSettings:
    v = layers.values
    read_only = tuple(
        Path(item).absolute() for item in v.get(("runner", "read_only"), ())
    )
    for item in read_only:
        if not item.is_dir():
            layers.problem(
                ("runner", "read_only"),
                f"{str(item)!r} is not a directory; create it or remove it from runner.read_only",
            )
    defaults = RunnerSettings()
    return RunnerSettings(
        sandbox=str(v.get(("runner", "sandbox"), defaults.sandbox)),
        bwrap=str(v.get(("runner", "bwrap"), defaults.bwrap)),
        read_only=read_only,
    )


def _dispatcher(layers: Layers, forge: ForgeSettings) -> DispatcherSettings:
    v = layers.values
    state_dir = layers.path(("dispatcher", "state_dir"))
    if state_dir is None:
        state_dir = DEFAULT_STATE_DIR
        # Local mode keeps its state beside the repository's own, out of the work tree.
        local_git = forge.path / ".git" if forge.path is not None else None
        if (
            forge.kind is ForgeKind.LOCAL
            and local_git is not None
            and local_git.is_dir()
        ):
            state_dir = local_git / "opsvault"
    defaults = DispatcherSettings()
    return DispatcherSettings(
        identity=str(v.get(("dispatcher", "identity"), defaults.identity)),
        interval=layers.duration(("dispatcher", "interval"), defaults.interval),
        state_dir=state_dir,
        max_concurrency=int(
            v.get(("dispatcher", "max_concurrency"), defaults.max_concurrency)
        ),
        queue_limit=int(v.get(("dispatcher", "queue_limit"), defaults.queue_limit)),
        grace=layers.duration(("dispatcher", "grace"), defaults.grace),
        on_guard_drift=str(
            v.get(("dispatcher", "on_guard_drift"), defaults.on_guard_drift)
        ),
        guard_interval=layers.duration(
            ("dispatcher", "guard_interval"), defaults.guard_interval
        ),
        guard_required_approvals=int(
            v.get(
                ("dispatcher", "guard_required_approvals"),
                defaults.guard_required_approvals,
            )
        ),
    )


def _planner(layers: Layers) -> PlannerSettings:
    issues = layers.values.get(("planner", "issues_repo"), ())
    return PlannerSettings(
        interval=layers.duration(("planner", "interval"), PlannerSettings().interval),
        issues_repo=(issues,) if isinstance(issues, str) else tuple(issues),
    )


def _web(layers: Layers) -> WebSettings:
    v = layers.values
    return WebSettings(
        port=None if v.get(("web", "port")) is None else int(v[("web", "port")]),
        bind=str(v.get(("web", "bind"), WebSettings().bind)),
    )


def _webhook(layers: Layers, file: Path | None, kind: ForgeKind) -> WebhookSettings:
    v = layers.values
    port = v.get(("webhook", "port"))
    secret_file = layers.path(("webhook", "secret_file"))
    if port is not None:
        if kind is not ForgeKind.FORGEJO:
            layers.problem(
                ("webhook", "port"),
                "webhooks come from Forgejo; unset webhook.port or set forge.kind = 'forgejo'",
            )
        if secret_file is None:
            layers.missing(file, ("webhook", "secret_file"), "when webhook.port is set")
    defaults = WebhookSettings()
    return WebhookSettings(
        port=None if port is None else int(port),
        bind=str(v.get(("webhook", "bind"), defaults.bind)),
        secret_file=secret_file,
        max_body=int(v.get(("webhook", "max_body"), defaults.max_body)),
    )


def load_settings(
    environ: Mapping[str, str],
    path: Path | None,
    overrides: Mapping[str, object] | None = None,
) -> Settings:
    """Return the effective settings from *overrides* > *environ* > the file *path* > defaults.

    *overrides* maps ``"section.key"`` to a value (a CLI flag); ``None`` or ``""``
    means not given. Raise InvalidConfigError listing every problem found.
    """
    layers = Layers()
    if path is not None:
        layer_file(path, layers)
    layer_environ(environ, layers)
    layer_overrides(overrides or {}, layers)
    if layers.unreadable:  # what the file lacks is unknown: no requirement checks
        raise InvalidConfigError(layers.problems)
    settings = _build(layers, environ, path)
    if layers.problems:
        raise InvalidConfigError(layers.problems)
    log.debug("effective settings: %r", settings)
    return settings


def settings_data(settings: Settings) -> dict[str, dict[str, Any]]:
    """Return the effective settings as plain data, the token masked, for display."""
    f, d, p = settings.forge, settings.dispatcher, settings.planner

    def text(value: Path | None) -> str:
        return "" if value is None else str(value)

    return {
        "forge": {
            "kind": str(f.kind),
            "url": f.url,
            "repo": f.repo,
            "token_file": text(f.token_file),
            "git_url": f.git_url,
            "path": text(f.path),
            "operator": f.operator,
            "branch": f.branch,
            "token": "***" if f.token is not None else "",
        },
        "dispatcher": {
            "identity": d.identity,
            "interval": render_duration(d.interval),
            "state_dir": str(d.state_dir),
            "max_concurrency": d.max_concurrency,
            "queue_limit": d.queue_limit,
            "grace": render_duration(d.grace),
            "on_guard_drift": d.on_guard_drift,
            "guard_interval": render_duration(d.guard_interval),
            "guard_required_approvals": d.guard_required_approvals,
        },
        "secrets": {"dir": text(settings.secrets.dir)},
        "webhook": {
            "port": "" if settings.webhook.port is None else settings.webhook.port,
            "bind": settings.webhook.bind,
            "secret_file": text(settings.webhook.secret_file),
            "max_body": settings.webhook.max_body,
        },
        "web": {
            "port": "" if settings.web.port is None else settings.web.port,
            "bind": settings.web.bind,
        },
        "planner": {
            "interval": render_duration(p.interval),
            "issues_repo": list(p.issues_repo),
        },
        "runner": {
            "sandbox": settings.runner.sandbox,
            "bwrap": settings.runner.bwrap,
            "read_only": [str(item) for item in settings.runner.read_only],
        },
    }


def git_auth_environment(settings: Settings) -> dict[str, str]:
    """Return the environment that lets a git subprocess authenticate to the forge over HTTPS.

    Git reads ``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n`` as
    configuration (git 2.31+), so the credentials stay out of argv (visible to
    every local user) and out of the clone's stored URL. The header is scoped to
    the clone URL's origin. Empty for local mode, non-HTTPS URLs (ssh keys, plain
    http never gets a token) or without a token. The values hold the token:
    never log them.
    """
    forge = settings.forge
    if forge.kind is not ForgeKind.FORGEJO or forge.token is None:
        return {}
    url = urlsplit(forge.clone_url)
    if url.scheme != "https" or not url.hostname or "@" in url.netloc:
        return {}
    credentials = f"{settings.dispatcher.identity}:{forge.token.reveal()}"
    basic = base64.b64encode(credentials.encode("utf-8")).decode("ascii")
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"http.https://{url.netloc}/.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
    }
