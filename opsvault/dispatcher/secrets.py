"""Secret values: where they come from, and how they are kept out of what is recorded.

Sources: a directory of files, ``OPSVAULT_SECRET_*`` variables, or a chain of
both. Names are restricted to ``^[A-Z][A-Z0-9_]*$`` so a name is always a safe file
name and a safe environment variable name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from opsvault.errors import RunnerError
from opsvault.ports import SecretSource

SECRET_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
ENV_PREFIX = "OPSVAULT_SECRET_"

MIN_REDACTED_LENGTH = 4
"""Secret values shorter than this are not redacted: replacing every 'ab' in the
output would destroy it while hiding nothing a guess would not find."""


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


class RedactingTail:
    """Keep the last *limit* bytes of a byte stream with every secret value redacted.

    Each value of at least MIN_REDACTED_LENGTH bytes becomes ``[REDACTED:NAME]``,
    also when it straddles chunks: the last ``longest - 1`` bytes are held back
    until the next chunk. Redaction happens before truncation, so no prefix or
    suffix of a secret survives at the cut. Memory stays bounded by *limit*, the
    chunk size and the longest secret.
    """

    def __init__(self, secrets: Mapping[str, str], limit: int) -> None:
        self._limit = limit
        self._markers: dict[bytes, bytes] = {}
        for name, value in sorted(secrets.items()):
            raw = value.encode()
            if len(raw) >= MIN_REDACTED_LENGTH:
                self._markers.setdefault(raw, f"[REDACTED:{name}]".encode())
        longest_first = sorted(self._markers, key=len, reverse=True)
        self._pattern = (
            re.compile(b"|".join(re.escape(v) for v in longest_first))
            if longest_first
            else None
        )
        self._hold = len(longest_first[0]) - 1 if longest_first else 0
        self._pending = b""
        self._tail = bytearray()
        self.dropped = 0  # bytes of redacted output cut off the front

    def feed(self, chunk: bytes) -> None:
        data = self._pending + chunk
        if self._pattern is None:
            self._pending = b""
            self._keep(data)
            return
        safe = len(data) - self._hold  # a secret starting before this is wholly in data
        pos = 0
        out: list[bytes] = []
        for match in self._pattern.finditer(data):
            if match.start() >= safe:
                break
            out += (data[pos : match.start()], self._markers[match.group()])
            pos = match.end()
        cut = max(pos, safe)
        out.append(data[pos:cut])
        self._pending = data[cut:]
        self._keep(b"".join(out))

    def note(self, text: str) -> None:
        """Record a line from the runner itself (redacted like step output)."""
        self.feed(f"[opsvault] {text}\n".encode())

    def text(self) -> str:
        """Flush what is held back and return the tail."""
        if self._pending:
            pending, self._pending = self._pending, b""
            if self._pattern is not None:
                pending = self._pattern.sub(lambda m: self._markers[m.group()], pending)
            self._keep(pending)
        return bytes(self._tail).decode("utf-8", errors="replace")

    def _keep(self, data: bytes) -> None:
        self._tail += data
        excess = len(self._tail) - self._limit
        if excess > 0:
            del self._tail[:excess]
            self.dropped += excess
