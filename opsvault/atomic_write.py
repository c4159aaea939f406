"""``write_atomic``: replace a file so that a reader, or a crash, sees the old bytes or the new.

The dispatcher's own state files (the local forge's ``forge.json``, the tick's
cache, ``runner.json``, notes in ``.git/opsvault``) are written through here
and nowhere else: a temporary file in the same directory, flushed to disk,
renamed over the target, then the directory flushed so the rename itself
survives a power cut (rename(2) is atomic, but only durable once the directory
entry is on disk).
"""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def write_atomic(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace *path* with *data*, durably; create its directory if needed.

    *mode* is the new file's permission bits before the umask (the default
    0o600 is what ``tempfile.mkstemp`` gives). Raise OSError if the directory
    cannot be made or written; the temporary file is removed then, and *path*
    keeps its old content.
    """
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    temporary = directory / f".{path.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(temporary, _FLAGS, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_directory(directory)


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # a file system that cannot sync a directory
            raise
    finally:
        os.close(fd)
