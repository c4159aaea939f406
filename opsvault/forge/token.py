"""The forge API token: loaded from a file or an environment mapping, never shown."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from opsvault.errors import ConfigError

DEFAULT_TOKEN_VARIABLE = "OPSVAULT_FORGE_TOKEN"


class ForgeToken:
    """An API token whose ``repr`` and ``str`` are masked.

    Only :meth:`reveal` gives the value, and only the HTTP layer calls it.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        value = value.strip()
        if not value or any(c.isspace() for c in value):
            raise ConfigError("forge token", "is empty or contains whitespace")
        self._value = value

    @classmethod
    def from_file(cls, path: Path) -> ForgeToken:
        """Read the token from *path* (e.g. a systemd credential or secret mount)."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                str(path), f"cannot read forge token: {exc.strerror}"
            ) from exc
        return cls(text)

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str], name: str = DEFAULT_TOKEN_VARIABLE
    ) -> ForgeToken:
        """Read the token from *environ[name]*; the caller passes the environment in."""
        value = environ.get(name, "")
        if not value.strip():
            raise ConfigError(name, "forge token is not set")
        return cls(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "ForgeToken('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ForgeToken) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("ForgeToken cannot be pickled")
