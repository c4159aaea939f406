"""Secret values: where they come from, and how they are kept out of what is recorded.

Sources: a directory of files, ``OPSVAULT_SECRET_*`` variables, or a chain of
both. Names are restricted to ``^[A-Z][A-Z0-9_]*$`` so a name is always a safe file
name and a safe environment variable name.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import re
import sys
from collections.abc import Callable, Mapping, MutableMapping
from pathlib import Path

from opsvault.errors import RunnerError
from opsvault.ports import SecretSource

log = logging.getLogger(__name__)

SECRET_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
ENV_PREFIX = "OPSVAULT_SECRET_"

MIN_REDACTED_LENGTH = 4
"""Secret values shorter than this are not redacted: replacing every 'ab' in the
output would destroy it while hiding nothing a guess would not find."""


def known_secrets(source: SecretSource) -> dict[str, str]:
    """Return every secret *source* holds (name -> value), for redaction only.

    Values of unreadable entries are skipped (they cannot be handed to a step
    either).
    """
    return dict(source.known())


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

    def known(self) -> dict[str, str]:
        """Return every secret of the directory (names that are valid secret names)."""
        found: dict[str, str] = {}
        try:
            names = sorted(entry.name for entry in os.scandir(self.path))
        except OSError as exc:
            log.warning("cannot list the secrets directory %s: %s", self.path, exc)
            return found
        for name in names:
            if not SECRET_NAME.fullmatch(name):
                continue
            try:
                value = self.get(name)
            except (OSError, UnicodeDecodeError, RunnerError):
                continue
            if value:
                found[name] = value
        return found

    def __repr__(self) -> str:
        return f"DirectorySecrets({str(self.path)!r})"


class EnvSecrets:
    """Secrets from ``OPSVAULT_SECRET_<NAME>`` entries of *environ* (passed in, never read here)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def get(self, name: str) -> str | None:
        check_secret_name(name)
        return self._environ.get(ENV_PREFIX + name)

    def known(self) -> dict[str, str]:
        return {
            key.removeprefix(ENV_PREFIX): value
            for key, value in self._environ.items()
            if key.startswith(ENV_PREFIX) and value
        }

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

    def known(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for source in reversed(self.sources):  # the first source wins, as in get()
            found |= known_secrets(source)
        return found

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


FORGE_TOKEN_MARKER = "forge-token"
"""The name shown for the forge token: ``[REDACTED:forge-token]``. Lower case, so
it can never be a secret's name."""


class Redactor:
    """Replace every known secret value (and the forge token) in text meant to be recorded.

    Used on everything the dispatcher writes for people: result records, PR
    comments, notifications, tick reports and log lines. *load* is called by
    ``refresh`` (once per tick), so rotated secrets are picked up; values shorter
    than MIN_REDACTED_LENGTH are left alone, as in RedactingTail.
    """

    def __init__(self, load: Callable[[], Mapping[str, str]]) -> None:
        self._load = load
        self._names: dict[str, str] = {}  # value -> name
        self._pattern: re.Pattern[str] | None = None
        self._markers: dict[str, str] = {}
        self.refresh()

    def values(self) -> dict[str, str]:
        """Return name -> value of everything redacted (for the runner's tail)."""
        return {name: value for value, name in self._names.items()}

    def refresh(self) -> None:
        try:
            found = dict(self._load())
        except Exception as exc:  # keep the previous values rather than none
            log.warning("cannot reload the secrets to redact: %s", type(exc).__name__)
            return
        self._names = {}
        for name, value in sorted(found.items()):
            if len(value.encode()) >= MIN_REDACTED_LENGTH:
                self._names.setdefault(value, name)
        self._markers = {v: f"[REDACTED:{n}]" for v, n in self._names.items()}
        longest_first = sorted(self._markers, key=len, reverse=True)
        self._pattern = (
            re.compile("|".join(re.escape(v) for v in longest_first))
            if longest_first
            else None
        )

    def __call__(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(lambda m: self._markers[m.group()], text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts every record's rendered message with a Redactor."""

    def __init__(self, redact: Callable[[str], str]) -> None:
        super().__init__()
        self._redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self._redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            cleaned_exc = self._redact(text)
            if cleaned_exc != text:
                record.exc_info, record.exc_text = None, cleaned_exc
        return True


def install_log_redaction(redact: Callable[[str], str]) -> RedactingFilter:
    """Redact every log line this process writes: a filter on each root handler."""
    flt = RedactingFilter(redact)
    for handler in logging.getLogger().handlers:
        handler.addFilter(flt)
    return flt


PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3
SEALED_PREFIXES = (ENV_PREFIX, "OPSVAULT_FORGE_TOKEN")


def take_secret_environ(environ: MutableMapping[str, str]) -> dict[str, str]:
    """Remove ``OPSVAULT_SECRET_*`` and the forge token variable from *environ*; return them.

    Called once at start on ``os.environ``: the values then live only in the
    dispatcher's memory, so no child process (git, a step, a hook) inherits them.
    """
    taken = {k: v for k, v in environ.items() if k.startswith(SEALED_PREFIXES)}
    for key in taken:
        del environ[key]
    return taken


def set_non_dumpable() -> bool:
    """Mark this process non-dumpable (Linux); return whether that worked.

    A non-dumpable process's ``/proc/<pid>/environ``, ``mem``, ``maps`` and fds
    are readable only with CAP_SYS_PTRACE, so a process of the same user (a step
    run without the sandbox) cannot read the initial environment block, which
    ``unsetenv`` does not erase. It also forbids ptrace attach and core dumps.
    """
    if not sys.platform.startswith("linux"):
        return False
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0:
            return bool(libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0)
    return False
