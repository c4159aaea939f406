"""Where raw setting values come from: the configuration file, ``OPSVAULT_*`` variables, overrides.

Each layer is read into ``Layers``: the raw value of every (section, key) it
gives, where it came from (a file and a JSON path, a variable, an override)
and every problem seen, checked against the ``config`` JSON Schema key by
key. Turning the merged values into ``Settings`` (and checking what one
setting means for another) is ``opsvault.config``'s part. The forge token and
the webhook secret are read here too, from files only their owner may read.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from opsvault.errors import ConfigError, InvalidFileError
from opsvault.forge.token import DEFAULT_TOKEN_VARIABLE, ForgeToken
from opsvault.vault.duration import parse_duration
from opsvault.vault.schema import load_schema, parse_toml, schema_problems

ENV_PREFIX = "OPSVAULT_"
TOKEN_VARIABLE = DEFAULT_TOKEN_VARIABLE
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


@dataclass(slots=True)
class Layers:
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

    def missing(self, file: Path | None, key: Key, why: str) -> None:
        """Report *key* as required (*why*), unless it was given and is invalid."""
        if key in self.origins:  # given, but invalid: that problem is reported already
            return
        section, name = key
        where = str(file) if file is not None else "configuration"
        self.problems.append(
            SettingProblem(
                where,
                f"$.{section}.{name}",
                f"required {why}; set {name} in [{section}] or {env_name(section, name)}",
            )
        )

    def path(self, key: Key) -> Path | None:
        value = self.values.get(key)
        return Path(value) if value is not None else None

    def duration(self, key: Key, default: timedelta) -> timedelta:
        if key not in self.values:
            return default
        try:
            return parse_duration(str(self.values[key]))
        except ValueError as exc:
            # The schema's pattern makes this unreachable in practice.
            self.problem(key, str(exc))
            return default


def layer_file(path: Path, layers: Layers) -> None:
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
            if (section, key) not in KNOWN or value == "":
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


def layer_environ(environ: Mapping[str, str], layers: Layers) -> None:
    for key in KNOWN:
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
    known = {env_name(*key) for key in KNOWN} | {TOKEN_VARIABLE}
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


def layer_overrides(overrides: Mapping[str, object], layers: Layers) -> None:
    for dotted, value in overrides.items():
        where = f"override {dotted}"
        section, _, name = dotted.partition(".")
        key = (section, name)
        if key not in KNOWN:
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


def read_token(
    layers: Layers, environ: Mapping[str, str], token_file: Path | None
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


KNOWN: tuple[Key, ...] = setting_keys()
