"""``Pygit2OpsRepo``: the OpsRepo port on pygit2, with the git CLI for remotes.

Reads and commits work on objects only (tree builders, in-memory merge indexes),
so a local-mode work tree and its index are never touched except by
``checkout`` and ``sync_worktree`` (git/worktree.py). Beside it: which commit a
name means (git/revisions.py, which also turns pygit2's errors into GitError),
tree lookups (git/treeread.py), tree writes and merges (git/trees.py), bounded
diffs (git/treediff.py) and the git CLI for fetch and push (git/transport.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import pygit2
from pygit2.enums import FileMode, RepositoryOpenFlag

from opsvault.errors import FileTooLargeError, GitError, PushRejected
from opsvault.git import transport
from opsvault.git.base import CommitInfo, Identity, check_repo_dir, check_repo_path
from opsvault.git.revisions import (
    PYGIT2_ERRORS,
    check_commit_size,
    check_id,
    check_name,
    find_commit,
    translated,
)
from opsvault.git.treediff import TreeLimitError, diff_trees
from opsvault.git.treeread import TreeReader
from opsvault.git.trees import apply_changes, merge_trees
from opsvault.git.worktree import clean_index, move_worktree
from opsvault.policy.change import MAX_BLOB_BYTES, ChangedFile

log = logging.getLogger(__name__)


def _signature(identity: Identity, when: int | None) -> pygit2.Signature:
    with translated(f"{identity.name} <{identity.email}>"):
        if when is None:
            return pygit2.Signature(identity.name, identity.email)
        return pygit2.Signature(identity.name, identity.email, when, 0)


def _identity(signature: pygit2.Signature) -> Identity:
    return Identity(signature.name, signature.email)


class Pygit2OpsRepo:
    """An ops repo on disk (bare or with a work tree)."""

    def __init__(
        self, repo: pygit2.Repository, transport_env: Mapping[str, str] | None = None
    ) -> None:
        self._repo = repo
        self._reader = TreeReader(repo)
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
        with translated(str(path)):
            return cls(
                pygit2.Repository(str(path), RepositoryOpenFlag.NO_SEARCH),
                transport_env,
            )

    @classmethod
    def init(
        cls, path: Path | str, initial_branch: str = "main", *, bare: bool = False
    ) -> Pygit2OpsRepo:
        """Create an empty repository at *path* whose HEAD names *initial_branch*."""
        check_name(initial_branch, "branch")
        with translated(str(path)):
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
        with translated(str(url_or_path)):
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
        with translated(name):
            config = self._repo.config
            return str(config[name]) if name in config else None

    # -- reading ---------------------------------------------------------------

    def _commit(self, rev: str) -> pygit2.Commit:
        return find_commit(self._repo, rev)

    def resolve(self, ref: str) -> str:
        return str(self._commit(ref).id)

    def _find(self, commit: str, parts: list[str]) -> pygit2.Object | None:
        return self._reader.find(self._commit(commit).tree_id, parts)

    def _blob(self, commit: str, path: str) -> pygit2.Object | None:
        root = self._commit(commit).tree_id
        return self._reader.file_entry(root, check_repo_path(path).split("/"))

    def read_file(
        self, commit: str, path: str, max_bytes: int = MAX_BLOB_BYTES
    ) -> bytes | None:
        entry = self._blob(commit, path)
        if entry is None:
            return None
        with translated(path):
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
        return tuple(
            sorted(self._reader.files(tree, f"{directory}/" if directory else ""))
        )

    def list_dirs(self, commit: str, prefix: str) -> tuple[str, ...]:
        directory = check_repo_dir(prefix)
        tree = self._find(commit, directory.split("/") if directory else [])
        if not isinstance(tree, pygit2.Tree):
            return ()
        return tuple(sorted(str(e.name) for e in tree if e.filemode == FileMode.TREE))

    def merge_base(self, a: str, b: str) -> str | None:
        left, right = self._commit(a), self._commit(b)
        with translated(f"{a}...{b}"):
            base = self._repo.merge_base(left.id, right.id)
        return None if base is None else str(base)

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        older, newer = self._commit(ancestor), self._commit(descendant)
        if older.id == newer.id:
            return True
        with translated(f"{ancestor}..{descendant}"):
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
        with translated(where):
            old_tree = self._repo[fork].peel(pygit2.Commit).tree_id
            return diff_trees(self._repo, old_tree, head_commit.tree_id, where)

    def log_first_parent(self, commit: str, limit: int) -> tuple[str, ...]:
        current = self._commit(commit)
        ids: list[str] = []
        with translated(commit):
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
        with translated("commit_files"):
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
        with translated(where):
            tree = merge_trees(self._repo, ours, theirs, where)
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
            check_id(expected_old, ref)
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
        with translated("branches"):
            for name in self._repo.references:
                if not name.startswith(start):
                    continue
                try:
                    target = self._repo.references[name].target
                    if isinstance(target, pygit2.Oid):
                        check_commit_size(self._repo, target, name)
                    commit = self._repo.references[name].peel(pygit2.Commit)
                except (*PYGIT2_ERRORS, GitError) as exc:
                    # a branch that names no commit, or one too big to read, is nothing we can use
                    log.warning("ignoring branch %r: %s", name, exc)
                    continue
                found[name.removeprefix("refs/heads/")] = str(commit.id)
        return found

    def delete_branch(self, name: str) -> None:
        check_name(name, "branch")
        branch = self._repo.branches.local.get(name)
        if branch is None:
            raise GitError(name, "no such branch")
        with translated(name):
            branch.delete()

    def checkout(self, branch: str) -> None:
        """Switch HEAD, the index and the work tree to local *branch* (local mode only).

        Not part of OpsRepo: it is the one call that writes a work tree. It
        never overwrites uncommitted changes (libgit2 SAFE, recreating missing
        files); raise GitError if they would be lost, if the repo is bare, or
        if the branch does not exist.
        """
        check_name(branch, "branch")
        if self._repo.is_bare:
            raise GitError(str(self.path), "a bare repository has no work tree")
        ref = f"refs/heads/{branch}"
        if self._repo.references.get(ref) is None:
            raise GitError(branch, "no such branch")
        with translated(branch):
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
        with translated(branch):
            new = self.resolve(f"refs/heads/{branch}")
            clean = clean_index(repo, self._commit(old).tree.id)
            if clean is None:
                return False
            index, untracked = clean
            try:
                changes = self.changed_files(old, new)
            except TreeLimitError as exc:
                log.warning("work tree of %r not updated: %s", branch, exc)
                return False
            return move_worktree(
                repo,
                branch,
                index,
                untracked,
                self._commit(old),
                self._commit(new),
                changes,
            )

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
        check_name(branch, "branch")
        self._check_remote(remote)
        new_id = self.resolve(new)
        where = f"{remote}/{branch}"
        if expected_old is not None:
            check_id(expected_old, where)
            if not self.is_ancestor(expected_old, new_id):
                raise GitError(
                    where, f"{new_id!r} does not descend from {expected_old!r}"
                )
        transport.push_cas(
            self._git_dir, remote, branch, new_id, expected_old, self._transport_env
        )
