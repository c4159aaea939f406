"""Dispatcher settings: one TOML file, ``OPSVAULT_<SECTION>_<KEY>`` overrides, and defaults.

``load_settings`` is the only place that reads the process environment (the
caller passes it in) and ``build_app`` is where the settings become adapters.
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
import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from opsvault.errors import ConfigError, InvalidFileError
from opsvault.forge.token import DEFAULT_TOKEN_VARIABLE, ForgeToken
from opsvault.layout import DEFAULT_BRANCH, POLICY, PROPOSAL_PREFIXES
from opsvault.vault.duration import parse_duration, render_duration
from opsvault.vault.schema import load_schema, parse_toml, schema_problems

log = logging.getLogger(__name__)

ENV_PREFIX = "OPSVAULT_"
TOKEN_VARIABLE = DEFAULT_TOKEN_VARIABLE
DEFAULT_STATE_DIR = Path("/var/lib/opsvault")
SCHEMA = "config"
# Keys holding file system paths: relative ones in the file are relative to the file.
_PATH_KEYS = frozenset(
    {
        ("forge", "token_file"),
        ("forge", "path"),
        ("dispatcher", "state_dir"),
        ("secrets", "dir"),
        ("webhook", "secret_file"),
    }
)
_PATH_LIST_KEYS = frozenset({("runner", "read_only")})
_INTEGER = re.compile(r"-?[0-9]{1,9}")

Key = tuple[str, str]  # (section, key)


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


@dataclass(frozen=True, slots=True)
class SettingProblem:
    """One configuration problem: where (a file or a variable), a JSON path, and what."""

    where: str
    path: str
    message: str

    def render(self) -> str:
        if self.path:
            return f"{self.where}: {self.path}: {self.message}"
        return f"{self.where}: {self.message}"


class InvalidConfigError(ConfigError):
    """The configuration has problems; carries every one of them (exit 78)."""

    def __init__(self, problems: Sequence[SettingProblem]) -> None:
        self.problems = tuple(problems)
        first = self.problems[0]
        # ConfigError's fields describe the first problem; the message lists all of
        # them, one per line, which ConfigError's one-line constructor cannot do.
        self.where, self.problem, self.hint = first.where, first.message, ""
        Exception.__init__(self, "\n".join(p.render() for p in self.problems))


def env_name(section: str, key: str) -> str:
    """Return the variable that overrides *section.key*: ``OPSVAULT_FORGE_URL``."""
    return f"{ENV_PREFIX}{section.upper()}_{key.upper()}"


def setting_keys() -> tuple[Key, ...]:
    """Return every (section, key) the configuration file accepts, in schema order."""
    properties = load_schema(SCHEMA)["properties"]
    return tuple(
        (section, key)
        for section, spec in properties.items()
        for key in spec["properties"]
    )


def _key_schema(section: str, key: str) -> dict[str, Any]:
    spec: dict[str, Any] = load_schema(SCHEMA)["properties"][section]["properties"][key]
    return spec


# -- layers ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Layers:
    """The merged raw values so far, where each came from, and every problem seen."""

    values: dict[Key, Any] = field(default_factory=dict)
    origins: dict[Key, tuple[str, str]] = field(default_factory=dict)
    problems: list[SettingProblem] = field(default_factory=list)
    unreadable: bool = False  # the file could not be read or parsed at all

    def set(self, key: Key, value: Any, where: str, path: str) -> None:
        self.values[key] = value
        self.origins[key] = (where, path)

    def problem(self, key: Key, message: str) -> None:
        where, path = self.origins[key]
        self.problems.append(SettingProblem(where, path, message))


def _layer_file(path: Path, layers: _Layers) -> None:
    where = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        layers.problems.append(
            SettingProblem(
                where,
                "",
                f"cannot read the configuration file: {exc.strerror}; pass an existing --config FILE",
            )
        )
        layers.unreadable = True
        return
    try:
        data = parse_toml(raw, where, InvalidFileError)
    except InvalidFileError as exc:
        layers.problems.extend(
            SettingProblem(where, p.path, p.message) for p in exc.problems
        )
        layers.unreadable = True
        return
    problems = schema_problems(data, SCHEMA)
    for p in problems:
        layers.problems.append(
            SettingProblem(where, p.path, _friendlier(p.path, p.message))
        )

    def bad(json_path: str) -> bool:
        return any(
            p.path == json_path or p.path.startswith((json_path + ".", json_path + "["))
            for p in problems
        )

    for section, table in data.items():
        if not isinstance(table, dict):
            continue
        for key, value in table.items():
            json_path = f"$.{section}.{key}"
            if (section, key) not in _KNOWN or value == "":
                continue
            if bad(json_path):  # reported; remember it was given, so not "missing"
                layers.origins[(section, key)] = (where, json_path)
                continue
            if (section, key) in _PATH_KEYS:
                value = str(path.absolute().parent / value)  # absolute stays as is
            if (section, key) in _PATH_LIST_KEYS:
                value = [str(path.absolute().parent / item) for item in value]
            layers.set((section, key), value, where, json_path)


def _friendlier(json_path: str, message: str) -> str:
    if json_path == "$.forge.token":
        return (
            "the token never goes in a configuration file; "
            f"use forge.token_file or {TOKEN_VARIABLE}"
        )
    if json_path == "$.planner.issues_repo" and "valid under" in message:
        return "expected 'owner/name' or a list of them"
    return message


def _coerce(section: str, key: str, text: str) -> Any:
    """Return *text* (a variable's value) as the type the schema wants for the key."""
    spec = _key_schema(section, key)
    if spec.get("type") == "integer":
        if not _INTEGER.fullmatch(text):
            raise ValueError(f"expected an integer, got {text!r}")
        return int(text)
    if spec.get("type") == "array":  # a list of paths, separated like PATH
        return [part for part in text.split(os.pathsep) if part]
    if "oneOf" in spec:  # issues_repo: one repo, or several separated by commas
        parts = [part.strip() for part in text.split(",")]
        return parts[0] if len(parts) == 1 else parts
    return text


def _check_one(key: Key, value: Any) -> list[str]:
    section, name = key
    problems = schema_problems({section: {name: value}}, SCHEMA)
    return [_friendlier(p.path, p.message) for p in problems]


def _layer_environ(environ: Mapping[str, str], layers: _Layers) -> None:
    for key in _KNOWN:
        variable = env_name(*key)
        text = environ.get(variable, "")
        if text == "":
            continue
        layers.origins[key] = (variable, "")
        try:
            value = _coerce(*key, text)
        except ValueError as exc:
            layers.problem(key, str(exc))
            continue
        messages = _check_one(key, value)
        for message in messages:
            layers.problem(key, message)
        if not messages:
            layers.set(key, value, variable, "")
    known = {env_name(*key) for key in _KNOWN} | {TOKEN_VARIABLE}
    # OPSVAULT_SECRETS_* is left alone: OPSVAULT_SECRET_<NAME> holds secrets, and a
    # secret whose name starts with "S_" looks just like a setting of [secrets].
    checked = tuple(
        f"{ENV_PREFIX}{section.upper()}_"
        for section in ("forge", "dispatcher", "planner", "runner", "webhook", "web")
    )
    for variable in sorted(environ):
        if variable.startswith(checked) and variable not in known:
            layers.problems.append(
                SettingProblem(
                    variable,
                    "",
                    "unknown setting; remove it or check its spelling "
                    "(see `vault dispatcher check-config --help`)",
                )
            )


def _layer_overrides(overrides: Mapping[str, object], layers: _Layers) -> None:
    for dotted, value in overrides.items():
        where = f"override {dotted}"
        section, _, name = dotted.partition(".")
        key = (section, name)
        if key not in _KNOWN:
            layers.problems.append(SettingProblem(where, "", "unknown setting"))
            continue
        if value is None or value == "":
            continue
        if isinstance(value, Path):
            value = str(value)
        layers.origins[key] = (where, "")
        if isinstance(value, str):
            try:
                value = _coerce(section, name, value)
            except ValueError as exc:
                layers.problem(key, str(exc))
                continue
        messages = _check_one(key, value)
        for message in messages:
            layers.problem(key, message)
        if not messages:
            layers.set(key, value, where, "")


# -- semantics ------------------------------------------------------------------------


def _duration(layers: _Layers, key: Key, default: timedelta) -> timedelta:
    if key not in layers.values:
        return default
    try:
        return parse_duration(str(layers.values[key]))
    except ValueError as exc:  # the schema pattern makes this unreachable in practice
        layers.problem(key, str(exc))
        return default


def _missing(layers: _Layers, file: Path | None, key: Key, why: str) -> None:
    if key in layers.origins:  # given, but invalid: that problem is reported already
        return
    section, name = key
    where = str(file) if file is not None else "configuration"
    layers.problems.append(
        SettingProblem(
            where,
            f"$.{section}.{name}",
            f"required {why}; set {name} in [{section}] or {env_name(section, name)}",
        )
    )


def read_private_file(path: Path, what: str, key: str) -> bytes:
    """Return the bytes of *path* (at most 64 KiB); refuse a file group or others may access.

    The mode is checked on the opened file, so a swap between check and read
    cannot slip another file in. Raise ConfigError naming the file, *what* it
    holds and the fix (*key* names the setting).
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ConfigError(
            str(path), f"cannot read the {what} file: {exc.strerror}", f"check {key}"
        ) from exc
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(str(path), f"the {what} file is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise ConfigError(
                str(path),
                f"the {what} file is accessible by group or others (mode {mode:04o})",
                f"run `chmod 600 {path}`",
            )
        return handle.read(64 * 1024)


def load_token_file(path: Path) -> ForgeToken:
    """Return the token held in *path* (see ``read_private_file``)."""
    data = read_private_file(path, "forge token", "forge.token_file")
    try:
        return ForgeToken(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), "the forge token file is not UTF-8") from exc
    except ConfigError as exc:  # names "forge token"; name the file instead
        raise ConfigError(str(path), f"the forge token {exc.problem}") from exc


def _token(
    layers: _Layers, environ: Mapping[str, str], token_file: Path | None
) -> ForgeToken | None:
    if environ.get(TOKEN_VARIABLE, "") != "":
        try:
            return ForgeToken.from_environ(environ, TOKEN_VARIABLE)
        except ConfigError as exc:  # the message never holds the value
            layers.problems.append(SettingProblem(TOKEN_VARIABLE, "", exc.problem))
            return None
    if token_file is None:
        return None
    try:
        return load_token_file(token_file)
    except ConfigError as exc:
        problem = f"{exc.problem}; {exc.hint}" if exc.hint else exc.problem
        layers.problems.append(SettingProblem(exc.where, "", problem))
        return None


def _path(layers: _Layers, key: Key) -> Path | None:
    value = layers.values.get(key)
    return Path(value) if value is not None else None


def _build(layers: _Layers, environ: Mapping[str, str], file: Path | None) -> Settings:
    v = layers.values
    kind = ForgeKind(v.get(("forge", "kind"), ForgeKind.LOCAL))
    ops_path = _path(layers, ("forge", "path"))
    token_file = _path(layers, ("forge", "token_file"))
    token: ForgeToken | None = None
    if kind is ForgeKind.FORGEJO:
        for name in ("url", "repo"):
            if ("forge", name) not in v:
                _missing(layers, file, ("forge", name), "when forge.kind is 'forgejo'")
        seen = len(layers.problems)
        token = _token(layers, environ, token_file)
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
        _missing(layers, file, ("forge", "path"), "when forge.kind is 'local'")
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
    secrets_dir = _path(layers, ("secrets", "dir"))
    if secrets_dir is not None and not secrets_dir.is_dir():
        layers.problem(
            ("secrets", "dir"),
            f"{str(secrets_dir)!r} is not a directory; create it or unset secrets.dir",
        )
    read_only = tuple(
        Path(item).absolute() for item in v.get(("runner", "read_only"), ())
    )
    for item in read_only:
        if not item.is_dir():
            layers.problem(
                ("runner", "read_only"),
                f"{str(item)!r} is not a directory; create it or remove it from runner.read_only",
            )
    state_dir = _path(layers, ("dispatcher", "state_dir"))
    if state_dir is None:
        state_dir = DEFAULT_STATE_DIR
        # Local mode keeps its state beside the repository's own, out of the work tree.
        local_git = ops_path / ".git" if ops_path is not None else None
        if kind is ForgeKind.LOCAL and local_git is not None and local_git.is_dir():
            state_dir = local_git / "opsvault"
    issues = v.get(("planner", "issues_repo"), ())
    webhook = _webhook(layers, file, kind)
    defaults = DispatcherSettings()
    runner_defaults = RunnerSettings()
    return Settings(
        forge=ForgeSettings(
            kind=kind,
            url=str(v.get(("forge", "url"), "")),
            repo=str(v.get(("forge", "repo"), "")),
            token_file=token_file,
            git_url=str(v.get(("forge", "git_url"), "")),
            path=ops_path,
            operator=str(v.get(("forge", "operator"), ForgeSettings().operator)),
            branch=branch,
            token=token,
        ),
        dispatcher=DispatcherSettings(
            identity=str(v.get(("dispatcher", "identity"), defaults.identity)),
            interval=_duration(layers, ("dispatcher", "interval"), defaults.interval),
            state_dir=state_dir,
            max_concurrency=int(
                v.get(("dispatcher", "max_concurrency"), defaults.max_concurrency)
            ),
            queue_limit=int(v.get(("dispatcher", "queue_limit"), defaults.queue_limit)),
            grace=_duration(layers, ("dispatcher", "grace"), defaults.grace),
        ),
        secrets=SecretsSettings(dir=secrets_dir),
        planner=PlannerSettings(
            interval=_duration(
                layers, ("planner", "interval"), PlannerSettings().interval
            ),
            issues_repo=(issues,) if isinstance(issues, str) else tuple(issues),
        ),
        runner=RunnerSettings(
            sandbox=str(v.get(("runner", "sandbox"), runner_defaults.sandbox)),
            bwrap=str(v.get(("runner", "bwrap"), runner_defaults.bwrap)),
            read_only=read_only,
        ),
        webhook=webhook,
        web=WebSettings(
            port=None if v.get(("web", "port")) is None else int(v[("web", "port")]),
            bind=str(v.get(("web", "bind"), WebSettings().bind)),
        ),
        file=file,
        sources=tuple(
            sorted(
                (f"{section}.{name}", where)
                for (section, name), (where, _) in layers.origins.items()
                if (section, name) in v
            )
        ),
    )


def _webhook(layers: _Layers, file: Path | None, kind: ForgeKind) -> WebhookSettings:
    v = layers.values
    port = v.get(("webhook", "port"))
    secret_file = _path(layers, ("webhook", "secret_file"))
    if port is not None:
        if kind is not ForgeKind.FORGEJO:
            layers.problem(
                ("webhook", "port"),
                "webhooks come from Forgejo; unset webhook.port or set forge.kind = 'forgejo'",
            )
        if secret_file is None:
            _missing(
                layers, file, ("webhook", "secret_file"), "when webhook.port is set"
            )
    defaults = WebhookSettings()
    return WebhookSettings(
        port=None if port is None else int(port),
        bind=str(v.get(("webhook", "bind"), defaults.bind)),
        secret_file=secret_file,
        max_body=int(v.get(("webhook", "max_body"), defaults.max_body)),
    )


_KNOWN: tuple[Key, ...] = setting_keys()


def load_settings(
    environ: Mapping[str, str],
    path: Path | None,
    overrides: Mapping[str, object] | None = None,
) -> Settings:
    """Return the effective settings from *overrides* > *environ* > the file *path* > defaults.

    *overrides* maps ``"section.key"`` to a value (a CLI flag); ``None`` or ``""``
    means not given. Raise InvalidConfigError listing every problem found.
    """
    layers = _Layers()
    if path is not None:
        _layer_file(path, layers)
    _layer_environ(environ, layers)
    _layer_overrides(overrides or {}, layers)
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
