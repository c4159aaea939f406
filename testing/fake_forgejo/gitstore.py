"""Bare git repositories behind the fake: branches, commits, diffs and merges."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pygit2
from pygit2.enums import DeltaStatus, FileMode, MergeAnalysis, ReferenceFilter

from testing.fake_forgejo.treemerge import (
    NotTrivial,
    pruned_trees,
    single_merge_base,
    trivial_merge,
)

# git keeps a push of more than this many objects as a pack (receive.unpackLimit).
UNPACK_LIMIT = 100

_STATUS = {
    DeltaStatus.ADDED: "added",
    DeltaStatus.DELETED: "deleted",
    DeltaStatus.RENAMED: "renamed",
    DeltaStatus.COPIED: "copied",
}


@dataclass(frozen=True, slots=True)
class FileChange:
    """One entry of a PR diff, with the status names Forgejo uses (never ``modified``)."""

    filename: str
    previous_filename: str
    status: str
    additions: int
    deletions: int


@dataclass(frozen=True, slots=True)
class Entry:
    """A path at a commit: a blob (``data`` set) or a tree (``children`` set)."""

    path: str
    kind: str
    sha: str
    size: int
    data: bytes | None
    children: tuple[tuple[str, str, str, int], ...]  # name, kind, sha, size


class GitStore:
    """One bare repository; every method takes full SHAs or branch names."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.repo = pygit2.Repository(str(path))
        self.lock = threading.RLock()
        self._diff_cache: dict[tuple[str, str], tuple[FileChange, ...]] = {}
        self._mergeable_cache: dict[tuple[str, str], bool] = {}
        self._base_cache: dict[tuple[str, str], str | None] = {}

    @classmethod
    def create(
        cls,
        path: Path,
        files: Mapping[str, str | bytes],
        signature: pygit2.Signature,
        branch: str = "main",
    ) -> GitStore:
        pygit2.init_repository(str(path), bare=True, initial_head=branch)
        store = cls(path)
        store.commit(branch, files, "initial commit", signature, signature, parent=None)
        return store

    def tip(self, branch: str) -> str | None:
        ref = self.repo.references.get(f"refs/heads/{branch}")
        return None if ref is None else str(ref.resolve().target)

    def branch_tips(self) -> dict[str, str]:
        """Return every branch's tip, read in one pass (what ``tip`` gives, for each branch)."""
        out: dict[str, str] = {}
        for ref in self.repo.references.iterator(ReferenceFilter.BRANCHES):
            out[ref.name.removeprefix("refs/heads/")] = str(ref.resolve().target)
        return out

    def ref(self, name: str) -> str | None:
        ref = self.repo.references.get(name)
        return None if ref is None else str(ref.resolve().target)

    def set_ref(self, name: str, sha: str) -> None:
        self.repo.references.create(name, pygit2.Oid(hex=sha), force=True)

    def set_refs_packed(self, refs: Mapping[str, str]) -> None:
        """Create many new refs at once through ``packed-refs`` (one file write, not one per ref)."""
        with self.lock:
            packed = self.path / "packed-refs"
            lines = packed.read_text().splitlines() if packed.exists() else []
            body = [line for line in lines if line and not line.startswith("#")]
            body += [f"{sha} {name}" for name, sha in refs.items()]
            body.sort(key=lambda line: line.split(" ", 1)[1])
            header = "# pack-refs with: peeled fully-peeled sorted "
            packed.write_text("\n".join([header, *body]) + "\n")

    def delete_branch(self, branch: str) -> None:
        self.repo.references.delete(f"refs/heads/{branch}")

    def branches(self) -> list[str]:
        return sorted(self.repo.branches.local)

    def resolve(self, ref: str) -> str | None:
        """Return the commit SHA for a branch, tag, full or abbreviated SHA."""
        for name in (f"refs/heads/{ref}", f"refs/tags/{ref}", ref):
            if name.startswith("refs/") and name in self.repo.references:
                return str(self.repo.references[name].peel(pygit2.Commit).id)
        if 4 <= len(ref) <= 40 and all(c in "0123456789abcdef" for c in ref):
            try:
                obj = self.repo.revparse_single(ref)
            except (KeyError, ValueError, pygit2.GitError):
                return None
            if isinstance(obj, pygit2.Commit):
                return str(obj.id)
        return None

    def commit_info(self, sha: str) -> pygit2.Commit:
        commit = self.repo.get(sha)
        assert isinstance(commit, pygit2.Commit)
        return commit

    def commit(
        self,
        branch: str,
        changes: Mapping[str, str | bytes | None],
        message: str,
        author: pygit2.Signature,
        committer: pygit2.Signature,
        *,
        parent: str | None,
    ) -> str:
        """Commit *changes* (``None`` deletes) on top of *parent* and point *branch* at it."""
        with self.lock:
            index = pygit2.Index()
            if parent is not None:
                index.read_tree(self.commit_info(parent).tree)
            for path, content in changes.items():
                if content is None:
                    index.remove(path)
                else:
                    raw = content.encode() if isinstance(content, str) else content
                    index.add(
                        pygit2.IndexEntry(
                            path, self.repo.create_blob(raw), FileMode.BLOB
                        )
                    )
            tree = index.write_tree(self.repo)
            parents = [] if parent is None else [pygit2.Oid(hex=parent)]
            oid = self.repo.create_commit(
                None, author, committer, message, tree, parents
            )
            self.set_ref(f"refs/heads/{branch}", str(oid))
            if len(changes) > UNPACK_LIMIT:
                self.pack_loose_objects()
            return str(oid)

    def pack_loose_objects(self) -> None:
        """Move loose objects into a pack, as a big push to Forgejo arrives (``git repack -d``).

        pygit2 writes every object loose. Left so, thousands of seeded files
        make the next push's ``git gc --auto`` repack them in the background,
        in the middle of whatever the test or benchmark does next.
        """
        subprocess.run(
            ["git", "repack", "-d", "-q"],
            cwd=self.path,
            check=True,
            capture_output=True,
        )

    def entry(self, sha: str, path: str) -> Entry | None:
        tree = self.commit_info(sha).tree
        path = path.strip("/")
        mode = FileMode.TREE
        if path:
            try:
                item = tree[path]
            except KeyError:
                return None
            mode = FileMode(item.filemode)
            obj = self.repo.get(item.id)
        else:
            obj = tree
        if isinstance(obj, pygit2.Blob):
            kind = "symlink" if mode == FileMode.LINK else "file"
            return Entry(path, kind, str(obj.id), obj.size, obj.data, ())
        if isinstance(obj, pygit2.Tree):
            children = tuple(
                (
                    c.name or "",
                    "dir"
                    if c.type_str == "tree"
                    else "symlink"
                    if c.filemode == FileMode.LINK
                    else "file",
                    str(c.id),
                    _size(self.repo, c),
                )
                for c in obj
            )
            return Entry(path, "dir", str(obj.id), 0, None, children)
        return None

    def last_commit_for(self, sha: str, path: str, limit: int = 500) -> str:
        """Return the newest commit (first-parent walk) that changed *path*."""
        current = self.commit_info(sha)
        blob = _blob_id(current, path)
        for _ in range(limit):
            if not current.parents:
                return str(current.id)
            parent = current.parents[0]
            if _blob_id(parent, path) != blob:
                return str(current.id)
            current = parent
        return str(current.id)

    def merge_base(self, a: str, b: str) -> str | None:
        key = (a, b)
        if key not in self._base_cache:
            found = self.repo.merge_base(pygit2.Oid(hex=a), pygit2.Oid(hex=b))
            self._base_cache[key] = None if found is None else str(found)
        return self._base_cache[key]

    def diff(self, base: str, head: str) -> tuple[FileChange, ...]:
        """Return the changed files between two commits (renames detected)."""
        key = (base, head)
        cached = self._diff_cache.get(key)
        if cached is not None:
            return cached
        old, new = self.pruned_trees(base, head)
        diff = old.diff_to_tree(new)
        diff.find_similar()
        out: list[FileChange] = []
        for patch in diff:
            if patch is None:
                continue
            delta = patch.delta
            _, adds, dels = patch.line_stats
            status = _STATUS.get(
                delta.status, "changed" if adds or dels else "unchanged"
            )
            deleted = delta.status == DeltaStatus.DELETED
            name = delta.old_file.path if deleted else delta.new_file.path
            previous = (
                delta.old_file.path if delta.status == DeltaStatus.RENAMED else ""
            )
            out.append(FileChange(name, previous, status, adds, dels))
        result = tuple(sorted(out, key=lambda c: c.filename))
        self._diff_cache[key] = result
        return result

    def pruned_trees(self, base: str, head: str) -> tuple[pygit2.Tree, pygit2.Tree]:
        """Return trees of only the files that differ: their diff is the full trees' diff (treemerge.py)."""
        return pruned_trees(
            self.repo, self.commit_info(base).tree, self.commit_info(head).tree
        )

    def _trivial_merge(self, base: str, head: str) -> pygit2.Oid | None:
        """Return the merged tree when no path changed on both sides (treemerge.py), else None."""
        ancestor = single_merge_base(
            self.repo, pygit2.Oid(hex=base), pygit2.Oid(hex=head)
        )
        if ancestor is None:
            return None
        try:
            return trivial_merge(
                self.repo,
                self.commit_info(str(ancestor)).tree,
                self.commit_info(base).tree,
                self.commit_info(head).tree,
            )
        except NotTrivial:
            return None

    def mergeable(self, base: str, head: str) -> bool:
        key = (base, head)
        if key not in self._mergeable_cache:
            if self._trivial_merge(base, head) is not None:
                self._mergeable_cache[key] = True
            else:
                index = self.repo.merge_commits(
                    pygit2.Oid(hex=base), pygit2.Oid(hex=head)
                )
                self._mergeable_cache[key] = index.conflicts is None
        return self._mergeable_cache[key]

    def merge(
        self,
        base_branch: str,
        head: str,
        message: str,
        signature: pygit2.Signature,
        *,
        squash: bool = False,
    ) -> str:
        """Merge *head* into *base_branch* with a real two-parent commit (one parent if squashing)."""
        with self.lock:
            base = self.tip(base_branch)
            assert base is not None
            analysis, _ = self.repo.merge_analysis(
                pygit2.Oid(hex=head), f"refs/heads/{base_branch}"
            )
            if analysis & MergeAnalysis.UP_TO_DATE:
                raise ValueError("head is already contained in base")
            tree = self._trivial_merge(base, head)
            if tree is None:
                index = self.repo.merge_commits(
                    pygit2.Oid(hex=base), pygit2.Oid(hex=head)
                )
                if index.conflicts is not None:
                    raise ValueError("merge conflict")
                tree = index.write_tree(self.repo)
            parents = (
                [pygit2.Oid(hex=base)]
                if squash
                else [pygit2.Oid(hex=base), pygit2.Oid(hex=head)]
            )
            oid = self.repo.create_commit(
                None, signature, signature, message, tree, parents
            )
            self.set_ref(f"refs/heads/{base_branch}", str(oid))
            return str(oid)


def _blob_id(commit: pygit2.Commit, path: str) -> str | None:
    try:
        return str(commit.tree[path].id)
    except KeyError:
        return None


def _size(repo: pygit2.Repository, entry: pygit2.Object) -> int:
    if entry.type_str != "blob":
        return 0
    blob = repo.get(entry.id)
    return blob.size if isinstance(blob, pygit2.Blob) else 0
