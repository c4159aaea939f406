"""The git port: the calls opsvault makes on the ops repo, and their value types.

Everything here works on git objects and refs, never on a working tree or an
index, so the same calls serve a bare dispatcher clone and a local-mode checkout.
Commits are named by 40-hex ids; ``resolve`` turns a ref into one.

Every failure is an :class:`opsvault.errors.GitError`. :class:`PushRejected` (a
subclass) means exactly "the ref was not where you expected": the compare-and-swap
lost, re-read and decide again (ADR 0002).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from opsvault.errors import GitError

# No file opsvault reads is bigger (action files, policy and formulas stop at 64 KiB).
MAX_BLOB_BYTES = 1024 * 1024
# A commit object (headers and message) is never read past this; its size comes from the header.
MAX_COMMIT_BYTES = 1024 * 1024


class ChangeKind(StrEnum):
    """How one path differs between two trees."""

    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"
    RENAMED = "renamed"


# Git tree entry modes a change can carry (``git ls-tree`` shows them in octal).
FILE_MODE = 0o100644
EXECUTABLE_MODE = 0o100755
SYMLINK_MODE = 0o120000
GITLINK_MODE = 0o160000  # a submodule commit
TREE_MODE = 0o040000
TYPE_BITS = 0o170000  # git decides what an entry is from these bits alone
# The only modes git itself writes for the entries a change leaves (and trees).
CANONICAL_MODES = frozenset(
    (FILE_MODE, EXECUTABLE_MODE, SYMLINK_MODE, GITLINK_MODE, TREE_MODE)
)
# Bounds on the paths a change may hold (I5): NAME_MAX and well under PATH_MAX.
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 1024


@dataclass(frozen=True, slots=True)
class ChangedFile:
    """One changed file. ``path`` is the new path for renames, the old one for deletions.

    ``mode`` is the raw git mode of the entry the change leaves at ``path`` (for
    a deletion, the mode of the entry removed), so a symlink or a gitlink can be
    told from a file without reading anything (security invariant I4). ``size``
    is the size of the blob left there, from its object header (0 if none).
    """

    path: str
    kind: ChangeKind
    old_path: str | None = None
    mode: int = FILE_MODE
    size: int = field(default=0, compare=False)  # a fact of the blob, not of the change

    @property
    def is_link(self) -> bool:
        """Return whether the change leaves a symlink or a gitlink (submodule) at ``path``.

        Decided by the type bits, as git does: ``120755`` is a symlink too (R-1).
        """
        return self.kind is not ChangeKind.DELETED and self.mode & TYPE_BITS in (
            SYMLINK_MODE,
            GITLINK_MODE,
        )

    @property
    def odd_mode(self) -> bool:
        """Return whether the change leaves an entry with a mode git never writes itself."""
        return self.kind is not ChangeKind.DELETED and self.mode not in CANONICAL_MODES


@dataclass(frozen=True, slots=True)
class Identity:
    """Who authored or committed a commit."""

    name: str
    email: str


@dataclass(frozen=True, slots=True)
class CommitInfo:
    """The metadata of one commit. ``time`` is the committer time (unix seconds)."""

    id: str
    parents: tuple[str, ...]
    author: Identity
    committer: Identity
    message: str
    time: int


def check_repo_path(path: str) -> str:
    """Return *path* if it is a safe repo-relative posix file path; raise GitError if not.

    Refused: the empty path, absolute paths, backslashes, NUL, and empty, ``.``,
    ``..`` or ``.git`` components. Action ids become paths, so this is defence in
    depth behind the request schema.
    """
    problem = _path_problem(path)
    if problem:
        raise GitError(repr(path), problem)
    return path


def check_repo_dir(prefix: str) -> str:
    """Return *prefix* as a directory path without a trailing ``/`` ("" = the root).

    Raise GitError for anything :func:`check_repo_path` would refuse.
    """
    trimmed = prefix[:-1] if prefix.endswith("/") else prefix
    if trimmed == "":
        return ""
    problem = _path_problem(trimmed)
    if problem:
        raise GitError(repr(prefix), problem)
    return trimmed


# Characters HFS+ ignores in names, so ".g\u200cit" is ".git" on macOS (git's is_hfs_dotgit).
_HFS_IGNORED = dict.fromkeys(
    [*range(0x200C, 0x2010), *range(0x202A, 0x202F), *range(0x206A, 0x2070), 0xFEFF]
)


def tree_path_problem(path: str) -> str:
    """Return why git would refuse to check out *path*, or a bound it breaks ("" if fine).

    Everything :func:`check_repo_path` refuses, plus what git refuses in tree
    entries on any file system: ``.git`` in any case, with trailing dots or
    spaces (NTFS) or HFS-ignored characters, its 8.3 name ``git~1`` and NTFS
    streams (``.git::$INDEX_ALLOCATION``); and components over
    ``MAX_NAME_BYTES`` or paths over ``MAX_PATH_BYTES`` (security review R-3, R-4, R-9).
    """
    problem = _path_problem(path)
    if problem:
        return problem
    size = len(path.encode("utf-8", errors="surrogatepass"))
    if size > MAX_PATH_BYTES:
        return f"path is {size} bytes, over the limit of {MAX_PATH_BYTES}"
    for part in path.split("/"):
        if len(part.encode("utf-8", errors="surrogatepass")) > MAX_NAME_BYTES:
            return f"a path component is over {MAX_NAME_BYTES} bytes"
        name = part.translate(_HFS_IGNORED).lower().split(":", 1)[0].rstrip(" .")
        if name in (".git", "git~1"):
            return f"path has a component git refuses ({part!r}, read as '.git')"
    return ""


def _path_problem(path: str) -> str:
    if path == "":
        return "path is empty"
    if path.startswith("/"):
        return "path must be relative to the repo root"
    if "\\" in path:
        return "path must use '/' separators, not backslashes"
    if "\0" in path:
        return "path contains a NUL byte"
    for part in path.split("/"):
        if part == "":
            return "path has an empty component"
        if part in (".", ".."):
            return f"path has a {part!r} component"
        if part.lower() == ".git":
            return "path has a '.git' component"
    return ""


class OpsRepo(Protocol):
    """The ops repo as opsvault sees it: objects and refs, never a working tree.

    Methods taking a ``commit`` accept anything :meth:`resolve` accepts. Methods
    taking a repo path refuse unsafe paths (see :func:`check_repo_path`) with
    GitError. No method here writes the working tree or the index.
    """

    @property
    def path(self) -> Path:
        """Return the repository directory (the work tree, or the bare repo)."""
        ...

    def resolve(self, ref: str) -> str:
        """Return the 40-hex id of the commit *ref* names.

        *ref* is a (short) sha, ``HEAD``, a full ref (``refs/...``, annotated
        tags peeled), ``origin/main`` (``refs/remotes/`` first) or a local
        branch, optionally followed by ``~N``/``^N``. Tags are never guessed
        from a bare name, so a pushed branch or tag cannot shadow
        ``origin/main``. Raise GitError whose ``where`` is *ref* if it is
        unknown or does not name a commit.
        """
        ...

    def read_file(
        self, commit: str, path: str, max_bytes: int = MAX_BLOB_BYTES
    ) -> bytes | None:
        """Return the content of file *path* at *commit*, or None if absent or a directory.

        Raise FileTooLargeError, without reading the blob, when its size (taken
        from the object header) is over *max_bytes* (security invariant I5).
        """
        ...

    def blob_id(self, commit: str, path: str) -> str | None:
        """Return the blob id of file *path* at *commit*, or None if absent or a directory."""
        ...

    def list_files(self, commit: str, prefix: str) -> tuple[str, ...]:
        """Return every file path below directory *prefix* at *commit*, recursively.

        Paths are repo-relative and sorted; ``()`` if *prefix* is absent or a
        file; ``""`` lists the whole tree. Cost grows with the listed subtree only.
        """
        ...

    def list_dirs(self, commit: str, prefix: str) -> tuple[str, ...]:
        """Return the names of the directories directly below *prefix* at *commit*, sorted.

        Lets a caller look into dated archives (``vault/fired/2026/11``) without
        listing every file in them.
        """
        ...

    def merge_base(self, a: str, b: str) -> str | None:
        """Return the best common ancestor of *a* and *b*, or None if unrelated."""
        ...

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """Return whether *ancestor* is reachable from *descendant* (a commit is its own)."""
        ...

    def changed_files(self, base: str, head: str) -> tuple[ChangedFile, ...]:
        """Return what merging *head* into *base* would change (a PR's diff), sorted by path.

        The diff runs from ``merge_base(base, head)`` to *head*, so later commits
        on *base* do not show up. Only exact-content renames are RENAMED: a file
        both moved and edited is a DELETED old path plus an ADDED new one, so
        no similarity heuristic a proposer could steer decides what a change is.
        Raise GitError if the two histories are unrelated.
        """
        ...

    def commit_files(
        self,
        parent: str | None,
        changes: Mapping[str, bytes | None],
        message: str,
        author: Identity,
        committer: Identity | None = None,
        when: int | None = None,
    ) -> str:
        """Create a commit of *parent*'s tree with *changes* applied; return its id.

        ``bytes`` writes a file (creating directories; an existing file keeps its
        executable bit), ``None`` deletes one (absent paths are ignored;
        directories left empty disappear). *parent* None makes a root commit.
        *committer* defaults to *author*; *when* (unix seconds, UTC) defaults to
        now. No ref moves. Raise GitError for an unsafe path, for writing over a
        directory, for a path below an existing file, or for deleting a directory.
        """
        ...

    def merge(
        self,
        base: str,
        head: str,
        message: str,
        author: Identity,
        when: int | None = None,
    ) -> str:
        """Create a merge commit with parents (*base*, *head*); return its id.

        Never fast-forwards and moves no ref. Raise GitError if the trees
        conflict, if *base* already contains *head*, or if they share no history.
        """
        ...

    def update_ref(self, ref: str, new: str, expected_old: str | None) -> None:
        """Set local *ref* (``refs/heads/main``) to *new* if it is still at *expected_old*.

        *expected_old* None means the ref must not exist yet. Atomic against other
        git writers. Raise PushRejected if the ref holds anything else.
        """
        ...

    def branches(self, prefix: str = "") -> dict[str, str]:
        """Return local branch name -> commit id for branches whose name starts with *prefix*."""
        ...

    def delete_branch(self, name: str) -> None:
        """Delete local branch *name*; raise GitError if absent or checked out."""
        ...

    def fetch_refspec(self, remote: str, refspec: str) -> None:
        """Fetch one explicit ``<src>:<dst>`` refspec from *remote* (a PR head, say)."""
        ...

    def fetch(self, remote: str = "origin") -> None:
        """Mirror every branch of *remote* into ``refs/remotes/<remote>/*`` (pruning).

        Raise GitError if the remote is not configured or cannot be reached.
        """
        ...

    def push(
        self, branch: str, new: str, expected_old: str | None, remote: str = "origin"
    ) -> None:
        """Set *branch* on *remote* to *new* if and only if it is still at *expected_old*.

        This is the compare-and-swap that makes every action fire at most once
        (ADR 0002). *expected_old* None means the branch must not exist yet.
        *new* must descend from *expected_old* (never rewrites history; GitError
        otherwise). Raise PushRejected when the remote branch is anywhere else,
        including when a competitor fast-forwarded it, or already holds *new*.
        Any other GitError means the outcome is unknown: fetch and look before
        assuming the push did not land.
        """
        ...

    def log_first_parent(self, commit: str, limit: int) -> tuple[str, ...]:
        """Return up to *limit* commit ids along first parents from *commit*, newest first."""
        ...

    def commit_info(self, commit: str) -> CommitInfo:
        """Return the metadata of *commit*."""
        ...
