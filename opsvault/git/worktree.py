"""Write a change into a local-mode work tree without ever following a link (I4, review R-7).

libgit2's checkout checks nothing at write time: a directory swapped for a
symlink after opsvault looked (another local process) is written through.
Here every directory on the way is opened relative to its parent's file
descriptor with ``O_NOFOLLOW | O_DIRECTORY``, and every file is written to a
fresh temporary name in that directory and renamed over the old one, so a
symlink standing anywhere on the path makes the write fail (ELOOP/ENOTDIR)
instead of landing elsewhere. Only this module writes work-tree files.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import pygit2

from opsvault.git.base import (
    GITLINK_MODE,
    SYMLINK_MODE,
    TREE_MODE,
    TYPE_BITS,
    ChangedFile,
    ChangeKind,
)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@contextmanager
def _parent(root: Path, path: str, *, create: bool) -> Iterator[tuple[int, str]]:
    """Yield (fd of the directory holding *path*, its last component), links never followed."""
    *dirs, name = path.split("/")
    fd = os.open(root, _DIR_FLAGS)
    try:
        for part in dirs:
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, 0o777, dir_fd=fd)
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
        yield fd, name
    finally:
        os.close(fd)


def _remove(root: Path, path: str) -> None:
    try:
        with _parent(root, path, create=False) as (fd, name):
            os.unlink(name, dir_fd=fd)
    except FileNotFoundError:
        return
    # git leaves no empty directory behind a deletion; neither do we.
    parts = path.split("/")[:-1]
    while parts:
        try:
            with _parent(root, "/".join(parts), create=False) as (fd, name):
                os.rmdir(name, dir_fd=fd)
        except OSError:
            return
        parts.pop()


def _write(root: Path, path: str, mode: int, data: bytes) -> None:
    with _parent(root, path, create=True) as (fd, name):
        kind = mode & TYPE_BITS
        if kind in (GITLINK_MODE, TREE_MODE):
            # git checks a submodule out as an empty directory.
            with suppress(FileExistsError):
                os.mkdir(name, 0o777, dir_fd=fd)
            return
        temp = f".opsvault-{secrets.token_hex(8)}"
        if kind == SYMLINK_MODE:
            os.symlink(data, temp, dir_fd=fd)
        else:
            perms = 0o777 if mode & 0o111 else 0o666  # less the umask, as git does
            out = os.open(temp, _NEW_FILE, perms, dir_fd=fd)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(out, view) :]
            finally:
                os.close(out)
        try:
            # rename replaces a file or a symlink at *name* itself, never its target.
            os.replace(temp, name, src_dir_fd=fd, dst_dir_fd=fd)
        except OSError:
            os.unlink(temp, dir_fd=fd)
            raise


def apply_to_worktree(
    repo: pygit2.Repository,
    root: Path,
    changes: Sequence[ChangedFile],
    tree: pygit2.Tree,
) -> None:
    """Make the files of *changes* under *root* what *tree* holds (removing deleted ones).

    Modes are the raw ones of the change. Raise OSError on the first path that
    cannot be written without following a link.
    """
    removed = [c.old_path for c in changes if c.old_path is not None]
    removed += [c.path for c in changes if c.kind is ChangeKind.DELETED]
    for path in sorted(removed, reverse=True):
        _remove(root, path)
    for change in sorted(changes, key=lambda c: c.path):
        if change.kind is ChangeKind.DELETED:
            continue
        data = b""
        if change.mode & TYPE_BITS in (0o100000, SYMLINK_MODE):
            data = bytes(repo[tree[change.path].id].peel(pygit2.Blob).data)
        _write(root, change.path, change.mode, data)
