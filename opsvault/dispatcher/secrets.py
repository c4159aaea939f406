"""Where secret values come from: a directory of files, ``OPSVAULT_SECRET_*`` or a chain.

Names are restricted to ``^[A-Z][A-Z0-9_]*$`` so a name is always a safe file
name and a safe environment variable name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from opsvault.errors import RunnerError

SECRET_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
ENV_PREFIX = "OPSVAULT_SECRET_"


class SecretSource(Protocol):
    """Look up secret values by name."""

    def get(self, name: str) -> str | None:
        """Return the value of secret *name*, or None if this source does not have it.

        Raise RunnerError if *name* is not ``^[A-Z][A-Z0-9_]*$`` or the source
        refuses to read it (e.g. a file that resolves outside the directory).
        """
        ...


def check_secret_name(name: str) -> None:
    """Raise RunnerError unless *name* is a valid secret name."""
    if not SECRET_NAME.fullmatch(name):
        raise RunnerError(
            f"secret {name!r}", "invalid secret name; names match '^[A-Z][A-Z0-9_]*$'"
        )


class DirectorySecrets:
    """One file per secret, named exactly like the secret; one trailing newline is stripped.

    This is the layout of systemd credentials (``$CREDENTIALS_DIRECTORY``) and of
    container secret mounts. Symlinks are followed only while they resolve inside
    the directory (Kubernetes mounts are symlinks into ``..data/``).
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def get(self, name: str) -> str | None:
        check_secret_name(name)
        root = self.path.resolve()
        target = (root / name).resolve()
        if not target.is_relative_to(root):
            raise RunnerError(
                f"secret {name!r}",
                f"{str(self.path / name)!r} resolves outside {str(root)!r}",
            )
        if not target.is_file():
            return None
        value = target.read_text(encoding="utf-8")
        if value.endswith("\r\n"):
            return value[:-2]
        return value.removesuffix("\n")

    def __repr__(self) -> str:
        return f"DirectorySecrets({str(self.path)!r})"


class EnvSecrets:
    """Secrets from ``OPSVAULT_SECRET_<NAME>`` entries of *environ* (passed in, never read here)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def get(self, name: str) -> str | None:
        check_secret_name(name)
        return self._environ.get(ENV_PREFIX + name)

    def __repr__(self) -> str:  # never show the mapping: it holds secret values
        names = sorted(
            k.removeprefix(ENV_PREFIX)
            for k in self._environ
            if k.startswith(ENV_PREFIX)
        )
        return f"EnvSecrets(names={names!r})"


class ChainSecrets:
    """Ask each source in order; the first one that has the secret wins."""

    def __init__(self, *sources: SecretSource) -> None:
        self.sources = sources

    def get(self, name: str) -> str | None:
        check_secret_name(name)
        for source in self.sources:
            value = source.get(name)
            if value is not None:
                return value
        return None

    def __repr__(self) -> str:
        return f"ChainSecrets{self.sources!r}"
