"""A change as the classifier reads it: one ``ChangedFile`` per path.

These are core value types: the classifier takes them as input and the git
adapters (``opsvault.git``) produce them from two trees, so the classifier
depends on nothing of the git port.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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


@dataclass(frozen=True, slots=True)
class ChangedFile:
    """One changed file. ``path`` is the new path for renames, the old one for deletions.

    ``mode`` is the git mode of the entry the change leaves at ``path`` (for a
    deletion, the mode of the entry removed), so a symlink or a gitlink can be
    told from a file without reading anything (security invariant I4).
    """

    path: str
    kind: ChangeKind
    old_path: str | None = None
    mode: int = FILE_MODE

    @property
    def is_link(self) -> bool:
        """Return whether the change leaves a symlink or a gitlink (submodule) at ``path``."""
        return self.kind is not ChangeKind.DELETED and self.mode in (
            SYMLINK_MODE,
            GITLINK_MODE,
        )
