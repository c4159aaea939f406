"""Which commit a name means in an ops repo, by rules stricter than git's, and pygit2's errors as GitError.

A proposer can push branches and tags of any name, so a name is resolved in
a fixed order that never lets one shadow what opsvault reads: an object id
first, then ``refs/remotes/<name>`` (only fetch writes there), then
``refs/heads/<name>``; tags are never guessed. A commit object over
MAX_COMMIT_BYTES is refused from its header, before it is read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import pygit2

from opsvault.errors import GitError
from opsvault.git.base import MAX_COMMIT_BYTES

FULL_ID = re.compile(r"^[0-9a-f]{40}$")
_HEX = re.compile(r"^[0-9a-fA-F]{4,40}$")
# A name, then an optional ancestry suffix; "~" and "^" cannot occur in ref names.
_REVISION = re.compile(r"^(?P<name>[^~^:@{}\s]+)(?P<suffix>(?:[~^][0-9]*)*)$")

# pygit2 raises its own GitError and also KeyError/ValueError for bad input.
PYGIT2_ERRORS = (pygit2.GitError, KeyError, ValueError)


@contextmanager
def translated(where: str) -> Iterator[None]:
    """Turn pygit2's errors inside the block into GitError naming *where*."""
    try:
        yield
    except PYGIT2_ERRORS as exc:
        raise GitError(where, str(exc).strip("'\"") or type(exc).__name__) from exc


def check_id(value: str, where: str) -> str:
    """Return *value* if it is a full 40-hex commit id; raise GitError otherwise."""
    if not FULL_ID.match(value):
        raise GitError(where, f"expected a full 40-hex commit id, got {value!r}")
    return value


def check_name(name: str, kind: str) -> None:
    """Raise GitError unless *name* is a usable branch name (never an option: no leading ``-``)."""
    if (
        not name
        or name.startswith("-")
        or not pygit2.reference_is_valid_name(f"refs/heads/{name}")
    ):
        raise GitError(repr(name), f"not a valid {kind} name")


def check_commit_size(repo: pygit2.Repository, oid: pygit2.Oid, where: str) -> None:
    """Raise GitError if *oid* is a commit over MAX_COMMIT_BYTES (from its header, unread)."""
    with translated(where):
        kind, size = repo.odb.read_header(oid)
    if kind == pygit2.enums.ObjectType.COMMIT and size > MAX_COMMIT_BYTES:
        raise GitError(
            where,
            f"the commit object is {size} bytes, over the limit of {MAX_COMMIT_BYTES}; "
            "shorten its message",
        )


def lookup_name(repo: pygit2.Repository, name: str) -> pygit2.Oid | None:
    """Return the object a name (no ``~``/``^`` suffix) means, or None (see the module doc)."""
    if _HEX.match(name):
        try:
            oid = repo.revparse_single(name).id
        except PYGIT2_ERRORS:
            oid = None
        if oid is not None:
            return oid
    if name == "HEAD" or name.startswith("refs/"):
        candidates = [name]
    else:
        candidates = [f"refs/remotes/{name}", f"refs/heads/{name}"]
    for candidate in candidates:
        try:
            target = repo.lookup_reference(candidate).resolve().target
        except PYGIT2_ERRORS:
            continue
        if isinstance(target, pygit2.Oid):
            return target
    return None


def find_commit(repo: pygit2.Repository, rev: str) -> pygit2.Commit:
    """Return the commit *rev* (a name with an optional ``~N``/``^N`` suffix) means.

    Raise GitError for an unknown revision, one that names no commit, or a
    commit over MAX_COMMIT_BYTES.
    """
    match = _REVISION.match(rev)
    if match is None:
        raise GitError(rev if rev else repr(rev), "unknown revision")
    oid = lookup_name(repo, match["name"])
    if oid is None:
        raise GitError(rev, "unknown revision")
    check_commit_size(repo, oid, rev)
    try:
        obj = repo.revparse_single(f"{oid}{match['suffix']}")
    except PYGIT2_ERRORS as exc:
        raise GitError(rev, "unknown revision") from exc
    try:
        return obj.peel(pygit2.Commit)
    except PYGIT2_ERRORS as exc:
        raise GitError(rev, f"names a {obj.type_str}, not a commit") from exc
