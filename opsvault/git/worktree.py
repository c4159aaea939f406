"""Keep a local-mode work tree in step with its branch, never writing through a link (I4, R-7).

``clean_index`` and ``move_worktree`` decide whether a sync may touch the
work tree at all (a clean tree on the moved branch, no untracked file in the
way, no path at or below a symlink or outside the tree) and restore the old
files when a write fails (R-4). ``apply_to_worktree`` writes.


libgit2's checkout checks nothing at write time: a directory swapped for a
symlink after opsvault looked (another local process) is written through.
Here every directory on the way is opened relative to its parent's file
descriptor with ``O_NOFOLLOW | O_DIRECTORY``, and every file is written to a
fresh temporary name in that directory and renamed over the old one, so a
symlink standing anywhere on the path makes the write fail (ELOOP/ENOTDIR)
instead of landing elsewhere. Only this module writes work-tree files.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import pygit2
from pygit2.enums import FileMode, FileStatus

from opsvault.atomic_write import write_atomic
from opsvault.errors import GitError
from opsvault.git.revisions import PYGIT2_ERRORS
from opsvault.git.treediff import diff_trees
from opsvault.policy.change import (
    GITLINK_MODE,
    SYMLINK_MODE,
    TREE_MODE,
    TYPE_BITS,
    ChangedFile,
    ChangeKind,
)

log = logging.getLogger(__name__)

OUT_OF_SYNC_NOTE = "opsvault/worktree-out-of-sync"  # below the git directory
_WT_CHANGES = (
    FileStatus.WT_MODIFIED
    | FileStatus.WT_DELETED
    | FileStatus.WT_TYPECHANGE
    | FileStatus.WT_RENAMED
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


def clean_index(
    repo: pygit2.Repository, tree_id: pygit2.Oid
) -> tuple[pygit2.Index, set[str]] | None:
    """Return the index and the untracked paths if index and work tree hold *tree_id*; else None."""
    index = repo.index
    index.read()
    if str(index.write_tree()) != str(tree_id):
        return None
    status = repo.status()
    if any(flags & _WT_CHANGES for flags in status.values()):
        return None
    return index, {p for p, f in status.items() if f & FileStatus.WT_NEW}


def move_worktree(
    repo: pygit2.Repository,
    branch: str,
    index: pygit2.Index,
    untracked: set[str],
    old: pygit2.Commit,
    new: pygit2.Commit,
    changes: tuple[ChangedFile, ...],
) -> bool:
    """Write *changes* (from *old* to *new*) into the clean work tree; return whether it was done.

    Touch nothing (return False) when an untracked file stands where the new
    commit puts one, or a changed path is at or below a symlink or resolves
    outside the work tree (logged; security invariant I4). A write that fails
    half way puts the old files back and leaves a note (``restore_worktree``).
    """
    changed = {c.path for c in changes} | {
        c.old_path for c in changes if c.old_path is not None
    }
    if untracked & changed:
        return False
    unsafe = unsafe_write(repo, changed)
    if unsafe:
        log.warning("work tree of %r not updated: %s", branch, unsafe)
        return False
    tree = new.tree
    try:
        apply_to_worktree(repo, Path(repo.workdir), changes, tree)
    except OSError as exc:
        restore_worktree(repo, branch, old, new, exc)
        return False
    update_index(index, changes, tree)
    return True


def update_index(
    index: pygit2.Index, changes: tuple[ChangedFile, ...], tree: pygit2.Tree
) -> None:
    """Record the files a sync wrote in the index, keeping the stat data of the others."""
    try:
        for change in changes:
            for gone in (
                change.old_path,
                change.path if change.kind is ChangeKind.DELETED else None,
            ):
                if gone is not None and gone in index:
                    index.remove(gone)
            if (
                change.kind is ChangeKind.DELETED
                or change.mode & TYPE_BITS == TREE_MODE
            ):
                continue
            if change.mode & TYPE_BITS == GITLINK_MODE:
                entry = tree[change.path]
                index.add(pygit2.IndexEntry(change.path, entry.id, FileMode.COMMIT))
            else:
                index.add(change.path)  # stats and hashes what was just written
    except PYGIT2_ERRORS:
        pass  # the check below falls back to the tree itself
    if index.write_tree() != tree.id:
        index.read_tree(tree)
    index.write()


def restore_worktree(
    repo: pygit2.Repository,
    branch: str,
    old: pygit2.Commit,
    new: pygit2.Commit,
    exc: OSError,
) -> None:
    """Put the files of a failed sync back as *old* has them, and leave a note (R-4).

    The work tree is then what it is whenever a sync is refused: the old
    commit's files and index, HEAD on the moved branch. The note in
    ``.git/opsvault/worktree-out-of-sync`` says so until the operator resyncs.
    """
    message = (
        f"work tree of {branch!r} could not be moved from {old.id} to {new.id}: {exc}; "
        f"run `git reset --hard {branch}` (or `git checkout -f {branch}`) after checking "
        "that nothing links out of the work tree"
    )
    log.error("%s", message)
    try:
        old_tree, new_tree = old.tree, new.tree
        back = diff_trees(repo, new_tree.id, old_tree.id, f"{new.id}..{old.id}")
        apply_to_worktree(repo, Path(repo.workdir), back, old_tree)
    except (OSError, GitError) as again:
        log.error("work tree of %r only partly restored: %s", branch, again)
        message += f" (restoring the old files failed too: {again})"
    note = Path(repo.path) / OUT_OF_SYNC_NOTE
    try:
        write_atomic(note, (message + "\n").encode("utf-8"), mode=0o666)
    except OSError as again:
        log.error("could not write %s: %s", note, again)


def unsafe_write(repo: pygit2.Repository, paths: set[str]) -> str:
    """Return why writing *paths* into the work tree could land elsewhere ("" if it cannot).

    libgit2 writes through a symlink standing where a file or a parent
    directory goes (security invariant I4), so no path is written at or
    below a symlink, and every path must stay inside the work tree and
    outside the git directory, links resolved.
    """
    workdir = Path(repo.workdir).resolve()
    git_dir = Path(repo.path).resolve()
    for path in sorted(paths):
        current = workdir
        try:
            for part in path.split("/"):
                current = current / part
                if current.is_symlink():
                    return f"{path!r}: {current.relative_to(workdir).as_posix()!r} is a symlink"
                if not current.exists():
                    break
            real = Path(os.path.realpath(current))
        except OSError as exc:
            # e.g. ENAMETOOLONG: what cannot be checked is unsafe.
            return f"{path!r} cannot be checked: {exc.strerror or exc}"
        if not real.is_relative_to(workdir) or real.is_relative_to(git_dir):
            return f"{path!r} resolves to {str(real)!r}, outside the work tree"
    return ""
