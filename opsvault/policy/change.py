"""A change as the classifier reads it: one ``ChangedFile`` per path, and the path rules.

These are core value types and pure rules: the classifier takes them as input
and the git adapters (``opsvault.git``) produce them from two trees and apply
the same path rules before any write, so the classifier depends on nothing of
the git port.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from opsvault.vault.bounded import MAX_BLOB_BYTES as MAX_BLOB_BYTES

# Bounds on the paths a change may hold (I5): NAME_MAX and well under PATH_MAX.
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 1024


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


# Characters HFS+ ignores in names, so ".g\u200cit" is ".git" on macOS (git's is_hfs_dotgit).
_HFS_IGNORED = dict.fromkeys(
    [*range(0x200C, 0x2010), *range(0x202A, 0x202F), *range(0x206A, 0x2070), 0xFEFF]
)


def tree_path_problem(path: str) -> str:
    """Return why git would refuse to check out *path*, or a bound it breaks ("" if fine).

    Everything :func:`path_problem` finds (what ``git.base.check_repo_path``
    refuses), plus what git refuses in tree entries on any file system: ``.git`` in any case, with trailing dots or
    spaces (NTFS) or HFS-ignored characters, its 8.3 name ``git~1`` and NTFS
    streams (``.git::$INDEX_ALLOCATION``); and components over
    ``MAX_NAME_BYTES`` or paths over ``MAX_PATH_BYTES`` (security review R-3, R-4, R-9).
    """
    problem = path_problem(path)
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


def path_problem(path: str) -> str:
    """Return why *path* is not a safe repo-relative posix file path ("" if it is)."""
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
