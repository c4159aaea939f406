"""``Pygit2OpsRepo``: the OpsRepo port on pygit2, with the git CLI for remotes.

Reads and commits work on objects only (tree builders, in-memory merge indexes),
so a local-mode work tree and its index are never touched. This is the only
module that catches ``pygit2.GitError``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pygit2
from pygit2.enums import FileMode, RepositoryOpenFlag

from opsvault.atomic_write import write_atomic
from opsvault.errors import FileTooLargeError, GitError, PushRejected
from opsvault.git import transport
from opsvault.git.base import (
    MAX_COMMIT_BYTES,
    CommitInfo,
    Identity,
    check_repo_dir,
    check_repo_path,
)
from opsvault.git.treediff import TreeLimitError, diff_trees
from opsvault.git.trees import apply_changes
from opsvault.git.worktree import apply_to_worktree
from opsvault.policy.change import (
    GITLINK_MODE,
    MAX_BLOB_BYTES,
    TREE_MODE,
    TYPE_BITS,
    ChangedFile,
    ChangeKind,
)

log = logging.getLogger(__name__)

_FULL_ID = re.compile(r"^[0-9a-f]{40}$")
_HEX = re.compile(r"^[0-9a-fA-F]{4,40}$")
# A name, then an optional ancestry suffix; "~" and "^" cannot occur in ref names.
_REVISION = re.compile(r"^(?P<name>[^~^:@{}\s]+)(?P<suffix>(?:[~^][0-9]*)*)$")

_TREE_CACHE_SIZE = 1024
_FILE_MODES = (FileMode.BLOB, FileMode.BLOB_EXECUTABLE, FileMode.LINK)

# pygit2 raises its own GitError and also KeyError/ValueError for bad input.
_PYGIT2_ERRORS = (pygit2.GitError, KeyError, ValueError)


@contextmanager
def _translated(where: str) -> Iterator[None]:
    try:
        yield
    except _PYGIT2_ERRORS as exc:
        raise GitError(where, str(exc).strip("'\"") or type(exc).__name__) from exc


def _signature(identity: Identity, when: int | None) -> pygit2.Signature:
    with _translated(f"{identity.name} <{identity.email}>"):
        if when is None:
            return pygit2.Signature(identity.name, identity.email)
        return pygit2.Signature(identity.name, identity.email, when, 0)


def _identity(signature: pygit2.Signature) -> Identity:
    return Identity(signature.name, signature.email)


def _check_id(value: str, where: str) -> str:
    if not _FULL_ID.match(value):
        raise GitError(where, f"expected a full 40-hex commit id, got {value!r}")
    return value


def _check_name(name: str, kind: str) -> None:
    if (
        not name
        or name.startswith("-")
        or not pygit2.reference_is_valid_name(f"refs/heads/{name}")
    ):
        raise GitError(repr(name), f"not a valid {kind} name")


def _update_index(
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
    except _PYGIT2_ERRORS:
        pass  # the check below falls back to the tree itself
    if index.write_tree() != tree.id:
        index.read_tree(tree)
    index.write()


class Pygit2OpsRepo:
    """An ops repo on disk (bare or with a work tree)."""

    def __init__(
        self, repo: pygit2.Repository, transport_env: Mapping[str, str] | None = None
    ) -> None:
        self._repo = repo
        self._trees: dict[pygit2.Oid, pygit2.Tree] = {}
        # Given to every git subprocess (fetch, push): credentials as GIT_CONFIG_*, never argv.
        self._transport_env = dict(transport_env or {})

    def __repr__(self) -> str:
        # Never show the transport environment: it may hold a token.
        return f"Pygit2OpsRepo({str(self.path)!r})"

    @classmethod
    def open(
        cls, path: Path | str, *, transport_env: Mapping[str, str] | None = None
    ) -> Pygit2OpsRepo:
        """Open the repository at exactly *path* (no search upwards)."""
        with _translated(str(path)):
            return cls(
                pygit2.Repository(str(path), RepositoryOpenFlag.NO_SEARCH),
                transport_env,
            )

    @classmethod
    def init(
        cls, path: Path | str, initial_branch: str = "main", *, bare: bool = False
    ) -> Pygit2OpsRepo:
        """Create an empty repository at *path* whose HEAD names *initial_branch*."""
        _check_name(initial_branch, "branch")
        with _translated(str(path)):
            return cls(
                pygit2.init_repository(
                    str(path), bare=bare, initial_head=initial_branch
                )
            )

    @classmethod
    def clone(
        cls,
        url_or_path: str | Path,
        path: Path | str,
        *,
        bare: bool = False,
        transport_env: Mapping[str, str] | None = None,
    ) -> Pygit2OpsRepo:
        """Clone *url_or_path* into *path*; ``origin/*`` is populated either way."""
        if not bare:
            transport.clone(str(url_or_path), Path(path), transport_env)
            return cls.open(path, transport_env=transport_env)
        # Not `git clone --bare`: it would copy every remote branch (and tag) to a
        # local ref, where stale copies and proposer-chosen names only confuse.
        repo = cls.init(path, bare=True)
        repo._transport_env = dict(transport_env or {})
        with _translated(str(url_or_path)):
            repo._repo.remotes.create(
                "origin", str(url_or_path), "+refs/heads/*:refs/remotes/origin/*"
            )
        repo.fetch("origin")
        return repo

    @property
    def path(self) -> Path:
        return Path(self._repo.workdir or self._repo.path)

    @property
    def _git_dir(self) -> Path:
        return Path(self._repo.path)

    @property
    def git_dir(self) -> Path:
        """Return the git directory (``.git`` of a work tree, or the bare repo itself)."""
        return self._git_dir

    def config_value(self, name: str) -> str | None:
        """Return the git config value *name* (e.g. ``opsvault.operator``), or None if unset."""
        with _translated(name):
            config = self._repo.config
            return str(config[name]) if name in config else None

    # -- reading ---------------------------------------------------------------

    def _commit(self, rev: str) -> pygit2.Commit:
        match = _REVISION.match(rev)
        if match is None:
            raise GitError(rev if rev else repr(rev), "unknown revision")
        oid = self._lookup_name(match["name"])
        if oid is None:
            raise GitError(rev, "unknown revision")
        self._check_size(oid, rev)
        try:
            obj = self._repo.revparse_single(f"{oid}{match['suffix']}")
        except _PYGIT2_ERRORS as exc:
            raise GitError(rev, "unknown revision") from exc
        try:
            return obj.peel(pygit2.Commit)
        except _PYGIT2_ERRORS as exc:
            raise GitError(rev, f"names a {obj.type_str}, not a commit") from exc

    def _check_size(self, oid: pygit2.Oid, where: str) -> None:
        """Raise GitError if *oid* is a commit over MAX_COMMIT_BYTES (from its header, unread)."""
        with _translated(where):
            kind, size = self._repo.odb.read_header(oid)
        if kind == pygit2.enums.ObjectType.COMMIT and size > MAX_COMMIT_BYTES:
            raise GitError(
                where,
                f"the commit object is {size} bytes, over the limit of {MAX_COMMIT_BYTES}; "
                "shorten its message",
            )

    def _lookup_name(self, name: str) -> pygit2.Oid | None:
        """Return the object a name (no ``~``/``^`` suffix) means, or None.

        Stricter than git's rules on purpose: a hex string is an object id
        first, then ``refs/remotes/<name>`` (only fetch writes there), then
        ``refs/heads/<name>``; tags are never guessed. So a proposer cannot
        shadow ``origin/main`` by pushing a branch or tag of that name.
        """
        if _HEX.match(name):
            try:
                oid = self._repo.revparse_single(name).id
            except _PYGIT2_ERRORS:
                oid = None
            if oid is not None:
                return oid
        if name == "HEAD" or name.startswith("refs/"):
            candidates = [name]
        else:
            candidates = [f"refs/remotes/{name}", f"refs/heads/{name}"]
        for candidate in candidates:
            try:
                target = self._repo.lookup_reference(candidate).resolve().target
            except _PYGIT2_ERRORS:
                continue
            if isinstance(target, pygit2.Oid):
                return target
        return None

    def resolve(self, ref: str) -> str:
        return str(self._commit(ref).id)

    def _tree(self, oid: pygit2.Oid) -> pygit2.Tree:
        # libgit2 does not cache trees over 4 KiB, and a path lookup through
        # `tree["a/b/c"]` re-reads and re-parses every directory on the way.
        # Objects are immutable, so parsed trees are kept by id (bounded).
        tree = self._trees.get(oid)
        if tree is None:
            if len(self._trees) >= _TREE_CACHE_SIZE:
                self._trees.clear()
            tree = self._repo[oid].peel(pygit2.Tree)
            self._trees[oid] = tree
        return tree

    def _find(self, commit: str, parts: list[str]) -> pygit2.Object | None:
        """Return the tree entry at path *parts* below *commit*'s root (the root if empty)."""
        node: pygit2.Object = self._tree(self._commit(commit).tree_id)
        for part in parts:
            if not isinstance(node, pygit2.Tree):
                return None
            try:
                entry = node[part]
            except KeyError:
                return None
            node = self._tree(entry.id) if entry.filemode == FileMode.TREE else entry
        return node

    def _blob(self, commit: str, path: str) -> pygit2.Object | None:
        entry = self._find(commit, check_repo_path(path).split("/"))
        if entry is None or entry.filemode not in _FILE_MODES:
            return None
        return entry

    def read_file(
        self, commit: str, path: str, max_bytes: int = MAX_BLOB_BYTES
    ) -> bytes | None:
        entry = self._blob(commit, path)
        if entry is None:
            return None
        with _translated(path):
            _kind, size = self._repo.odb.read_header(entry.id)
        if size > max_bytes:  # decided from the header: the blob is never inflated
            raise FileTooLargeError(path, size, max_bytes)
        return entry.peel(pygit2.Blob).data

    def blob_id(self, commit: str, path: str) -> str | None:
        entry = self._blob(commit, path)
        return None if entry is None else str(entry.id)

    def list_files(self, commit: str, prefix: str) -> tuple[str, ...]:
        directory = check_repo_dir(prefix)
        tree = self._find(commit, directory.split("/") if directory else [])
        if not isinstance(tree, pygit2.Tree):
            return ()
        found: list[str] = []
        self._walk(tree, f"{directory}/" if directory else "", found)
        return tuple(sorted(found))

    def list_dirs(self, commit: str, prefix: str) -> tuple[str, ...]:
        directory = check_repo_dir(prefix)
        tree = self._find(commit, directory.split("/") if directory else [])
        if not isinstance(tree, pygit2.Tree):
            return ()
        return tuple(sorted(str(e.name) for e in tree if e.filemode == FileMode.TREE))

    def _walk(self, tree: pygit2.Tree, prefix: str, found: list[str]) -> None:
        for entry in tree:
            name = f"{prefix}{entry.name}"
            if entry.filemode == FileMode.TREE:
                self._walk(self._tree(entry.id), f"{name}/", found)
            elif entry.filemode in _FILE_MODES:  # not submodules
                found.append(name)

    def merge_base(self, a: str, b: str) -> str | None:
        left, right = self._commit(a), self._commit(b)
        with _translated(f"{a}...{b}"):
            base = self._repo.merge_base(left.id, right.id)
        return None if base is None else str(base)

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        older, newer = self._commit(ancestor), self._commit(descendant)
        if older.id == newer.id:
            return True
        with _translated(f"{ancestor}..{descendant}"):
            return self._repo.descendant_of(newer.id, older.id)

    def changed_files(self, base: str, head: str) -> tuple[ChangedFile, ...]:
        """Return what *head* changes relative to its merge base with *base* (bounded, raw modes).

        Raise TreeLimitError (a GitError) past MAX_CHANGED_FILES files: see git/treediff.py.
        """
        head_commit = self._commit(head)
        fork = self.merge_base(base, head)
        if fork is None:
            raise GitError(f"{base}...{head}", "the histories are unrelated")
        where = f"{base}...{head}"
        with _translated(where):
            old_tree = self._repo[fork].peel(pygit2.Commit).tree_id
            return diff_trees(self._repo, old_tree, head_commit.tree_id, where)

    def log_first_parent(self, commit: str, limit: int) -> tuple[str, ...]:
        current = self._commit(commit)
        ids: list[str] = []
        with _translated(commit):
            while len(ids) < limit:
                ids.append(str(current.id))
                if not current.parent_ids:
                    break
                current = self._repo[current.parent_ids[0]].peel(pygit2.Commit)
        return tuple(ids)

    def commit_info(self, commit: str) -> CommitInfo:
        c = self._commit(commit)
        return CommitInfo(
            id=str(c.id),
            parents=tuple(str(p) for p in c.parent_ids),
            author=_identity(c.author),
            committer=_identity(c.committer),
            message=c.message,
            time=c.commit_time,
        )

    # -- writing objects ---------------------------------------------------------

    def commit_files(
        self,
        parent: str | None,
        changes: Mapping[str, bytes | None],
        message: str,
        author: Identity,
        committer: Identity | None = None,
        when: int | None = None,
    ) -> str:
        for path in changes:
            check_repo_path(path)
        parents = [] if parent is None else [self._commit(parent)]
        author_sig = _signature(author, when)
        committer_sig = _signature(committer or author, when)
        with _translated("commit_files"):
            base = parents[0].tree if parents else None
            tree = apply_changes(self._repo, base, changes)
            oid = self._repo.create_commit(
                None, author_sig, committer_sig, message, tree, [p.id for p in parents]
            )
        return str(oid)

    def merge(
        self,
        base: str,
        head: str,
        message: str,
        author: Identity,
        when: int | None = None,
    ) -> str:
        ours, theirs = self._commit(base), self._commit(head)
        where = f"{base}...{head}"
        if self.merge_base(str(ours.id), str(theirs.id)) is None:
            raise GitError(where, "refusing to merge unrelated histories")
        if self.is_ancestor(str(theirs.id), str(ours.id)):
            raise GitError(
                where, f"{base!r} already contains {head!r}; nothing to merge"
            )
        signature = _signature(author, when)
        with _translated(where):
            index = self._repo.merge_commits(ours, theirs)
            if index.conflicts is not None:
                paths = sorted(
                    {
                        entry.path
                        for triple in index.conflicts
                        for entry in triple
                        if entry
                    }
                )
                raise GitError(where, f"merge conflicts in {paths!r}")
            tree = index.write_tree(self._repo)
            oid = self._repo.create_commit(
                None, signature, signature, message, tree, [ours.id, theirs.id]
            )
        return str(oid)

    # -- refs --------------------------------------------------------------------

    def _ref_target(self, ref: str) -> str | None:
        reference = self._repo.references.get(ref)
        if reference is None:
            return None
        if reference.type != pygit2.enums.ReferenceType.DIRECT:
            raise GitError(ref, "is a symbolic ref; update the ref it points to")
        return str(reference.target)

    def update_ref(self, ref: str, new: str, expected_old: str | None) -> None:
        if not ref.startswith("refs/") or not pygit2.reference_is_valid_name(ref):
            raise GitError(repr(ref), "not a valid full ref name")
        target = self._commit(new).id
        if expected_old is not None:
            _check_id(expected_old, ref)
        try:
            with self._repo.transaction() as txn:
                # The lock is held until commit, so the check and the write are atomic.
                txn.lock_ref(ref)
                current = self._ref_target(ref)
                if current != expected_old:
                    raise PushRejected(ref, f"is at {current!r}, not {expected_old!r}")
                txn.set_target(ref, target, message=f"opsvault: update {ref}")
        except pygit2.GitError as exc:
            if "lock" in str(exc).lower():  # another writer holds the ref right now
                raise PushRejected(
                    ref, f"is being updated by someone else: {exc}"
                ) from exc
            raise GitError(ref, str(exc)) from exc

    def branches(self, prefix: str = "") -> dict[str, str]:
        found: dict[str, str] = {}
        start = f"refs/heads/{prefix}"
        with _translated("branches"):
            for name in self._repo.references:
                if not name.startswith(start):
                    continue
                try:
                    target = self._repo.references[name].target
                    if isinstance(target, pygit2.Oid):
                        self._check_size(target, name)
                    commit = self._repo.references[name].peel(pygit2.Commit)
                except (*_PYGIT2_ERRORS, GitError) as exc:
                    # a branch that names no commit, or one too big to read, is nothing we can use
                    log.warning("ignoring branch %r: %s", name, exc)
                    continue
                found[name.removeprefix("refs/heads/")] = str(commit.id)
        return found

    def delete_branch(self, name: str) -> None:
        _check_name(name, "branch")
        branch = self._repo.branches.local.get(name)
        if branch is None:
            raise GitError(name, "no such branch")
        with _translated(name):
            branch.delete()

    def checkout(self, branch: str) -> None:
        """Switch HEAD, the index and the work tree to local *branch* (local mode only).

        Not part of OpsRepo: it is the one call that writes a work tree. It
        never overwrites uncommitted changes (libgit2 SAFE, recreating missing
        files); raise GitError if they would be lost, if the repo is bare, or
        if the branch does not exist.
        """
        _check_name(branch, "branch")
        if self._repo.is_bare:
            raise GitError(str(self.path), "a bare repository has no work tree")
        ref = f"refs/heads/{branch}"
        if self._repo.references.get(ref) is None:
            raise GitError(branch, "no such branch")
        with _translated(branch):
            self._repo.checkout(ref)

    def sync_worktree(self, branch: str, old: str) -> bool:
        """Bring a clean work tree on *branch* forward after the ref moved from *old*.

        Local mode only: the dispatcher moves ``main`` by compare-and-swap while an
        operator may have it checked out. Touch nothing (return False) when the
        repo is bare, HEAD is another branch, the index or a tracked file differs
        from *old*, an untracked file stands where the new commit puts one, or a
        changed path is at or below a symlink in the work tree or resolves
        outside it (logged as a warning; never written through, security
        invariant I4). Return True when the work tree and index now match the branch.
        """
        repo = self._repo
        if (
            repo.is_bare
            or repo.head_is_detached
            or repo.head.name != f"refs/heads/{branch}"
        ):
            return False
        with _translated(branch):
            new = self.resolve(f"refs/heads/{branch}")
            index = repo.index
            index.read()
            if str(index.write_tree()) != str(self._commit(old).tree.id):
                return False
            wt_changes = (
                pygit2.enums.FileStatus.WT_MODIFIED
                | pygit2.enums.FileStatus.WT_DELETED
                | pygit2.enums.FileStatus.WT_TYPECHANGE
                | pygit2.enums.FileStatus.WT_RENAMED
            )
            status = repo.status()
            if any(flags & wt_changes for flags in status.values()):
                return False
            untracked = {
                p for p, f in status.items() if f & pygit2.enums.FileStatus.WT_NEW
            }
            try:
                changes = self.changed_files(old, new)
            except TreeLimitError as exc:
                log.warning("work tree of %r not updated: %s", branch, exc)
                return False
            changed = {c.path for c in changes} | {
                c.old_path for c in changes if c.old_path is not None
            }
            if untracked & changed:
                return False
            unsafe = self._unsafe_write(changed)
            if unsafe:
                log.warning("work tree of %r not updated: %s", branch, unsafe)
                return False
            tree = self._commit(new).tree
            root = Path(repo.workdir)
            try:
                apply_to_worktree(repo, root, changes, tree)
            except OSError as exc:
                self._restore_worktree(branch, old, new, exc)
                return False
            _update_index(index, changes, tree)
        return True

    def _restore_worktree(self, branch: str, old: str, new: str, exc: OSError) -> None:
        """Put the files of a failed sync back as *old* has them, and leave a note (R-4).

        The work tree is then what it is whenever a sync is refused: the old
        commit's files and index, HEAD on the moved branch. The note in
        ``.git/opsvault/worktree-out-of-sync`` says so until the operator resyncs.
        """
        message = (
            f"work tree of {branch!r} could not be moved from {old} to {new}: {exc}; "
            f"run `git reset --hard {branch}` (or `git checkout -f {branch}`) after checking "
            "that nothing links out of the work tree"
        )
        log.error("%s", message)
        try:
            old_tree, new_tree = self._commit(old).tree, self._commit(new).tree
            back = diff_trees(self._repo, new_tree.id, old_tree.id, f"{new}..{old}")
            apply_to_worktree(self._repo, Path(self._repo.workdir), back, old_tree)
        except (OSError, GitError) as again:
            log.error("work tree of %r only partly restored: %s", branch, again)
            message += f" (restoring the old files failed too: {again})"
        note = self._git_dir / "opsvault" / "worktree-out-of-sync"
        try:
            write_atomic(note, (message + "\n").encode("utf-8"), mode=0o666)
        except OSError as again:
            log.error("could not write %s: %s", note, again)

    def _unsafe_write(self, paths: set[str]) -> str:
        """Return why writing *paths* into the work tree could land elsewhere ("" if it cannot).

        libgit2 writes through a symlink standing where a file or a parent
        directory goes (security invariant I4), so no path is written at or
        below a symlink, and every path must stay inside the work tree and
        outside the git directory, links resolved.
        """
        workdir = Path(self._repo.workdir).resolve()
        git_dir = self._git_dir.resolve()
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

    # -- remotes -----------------------------------------------------------------

    def _check_remote(self, remote: str) -> None:
        if remote.startswith("-") or remote not in self._repo.remotes.names():
            raise GitError(repr(remote), "no such remote")

    def fetch(self, remote: str = "origin") -> None:
        self._check_remote(remote)
        transport.fetch(self._git_dir, remote, self._transport_env)

    def fetch_refspec(self, remote: str, refspec: str) -> None:
        """Fetch one explicit refspec from *remote* (e.g. ``+refs/pull/7/head:refs/remotes/origin/pull/7``)."""
        self._check_remote(remote)
        if refspec.lstrip("+").startswith("-") or ":" not in refspec:
            raise GitError(repr(refspec), "a refspec is <src>:<dst>")
        transport.fetch_refspec(self._git_dir, remote, refspec, self._transport_env)

    def push(
        self, branch: str, new: str, expected_old: str | None, remote: str = "origin"
    ) -> None:
        _check_name(branch, "branch")
        self._check_remote(remote)
        new_id = self.resolve(new)
        where = f"{remote}/{branch}"
        if expected_old is not None:
            _check_id(expected_old, where)
            if not self.is_ancestor(expected_old, new_id):
                raise GitError(
                    where, f"{new_id!r} does not descend from {expected_old!r}"
                )
        transport.push_cas(
            self._git_dir, remote, branch, new_id, expected_old, self._transport_env
        )
