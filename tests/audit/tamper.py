"""Tampering with an ops repo's history as an attacker with the repo's git would: real objects.

``rebuild`` replays first-parent commits in a chosen order, each applying its
own change (against its original first parent) onto the new parent, merges
keeping their other parents: a force-push of a rewritten history. ``edit``
writes or removes files from a commit onwards.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pygit2

from opsvault.dispatcher.chain import (
    GENESIS,
    is_record_path,
    parse_chain_trailer,
    record_hash,
)

SIGNATURE = pygit2.Signature("mallory", "mallory@example.invalid", 0, 0)


def open_raw(path: Path | str) -> pygit2.Repository:
    return pygit2.Repository(str(path))


def first_parents(repo: pygit2.Repository, branch: str = "main") -> list[pygit2.Commit]:
    """Return *branch*'s first-parent commits, oldest first."""
    commit = repo.revparse_single(f"refs/heads/{branch}").peel(pygit2.Commit)
    out = [commit]
    while commit.parents:
        commit = commit.parents[0]
        out.append(commit)
    return out[::-1]


def _changes(
    repo: pygit2.Repository, commit: pygit2.Commit
) -> dict[str, tuple[pygit2.Oid, int] | None]:
    parent = commit.parents[0].tree if commit.parents else None
    diff = (
        parent.diff_to_tree(commit.tree)
        if parent is not None
        else commit.tree.diff_to_tree(swap=True)
    )
    out: dict[str, tuple[pygit2.Oid, int] | None] = {}
    for delta in diff.deltas:
        if delta.status == pygit2.GIT_DELTA_DELETED:
            out[delta.old_file.path] = None
        else:
            if delta.old_file.path != delta.new_file.path:
                out[delta.old_file.path] = None
            out[delta.new_file.path] = (delta.new_file.id, delta.new_file.mode)
    return out


def _apply(
    repo: pygit2.Repository,
    tree: pygit2.Tree,
    changes: Mapping[str, tuple[pygit2.Oid, int] | None],
) -> pygit2.Oid:
    index = pygit2.Index()
    index.read_tree(tree)
    for path, entry in changes.items():
        if entry is None:
            if path in index:
                index.remove(path)
        else:
            index.add(
                pygit2.IndexEntry(path, entry[0], pygit2.enums.FileMode(entry[1]))
            )
    return index.write_tree(repo)


def rebuild(
    repo: pygit2.Repository,
    keep: int,
    order: Sequence[pygit2.Commit],
    *,
    edits: Mapping[str, Mapping[str, bytes | None]] | None = None,
    messages: Mapping[str, str] | None = None,
    branch: str = "main",
    reseal: bool = False,
) -> str:
    """Force *branch* to its first *keep* first-parent commits, then *order* replayed on top.

    *edits* maps an original commit id to files it writes (bytes) or removes
    (None) besides its own change; *messages* to a new message. With *reseal*,
    the records replayed name the replayed commits and are chained again, as
    an attacker who knows the chain's rules would do. Return the new tip.
    """
    history = first_parents(repo, branch)
    parent = history[keep - 1]
    renamed: dict[str, str] = {}  # old commit id -> its replay
    head = _head_before(history[:keep]) if reseal else None
    for commit in order:
        changes: dict[str, tuple[pygit2.Oid, int] | None] = dict(_changes(repo, commit))
        for path, content in (edits or {}).get(str(commit.id), {}).items():
            changes[path] = (
                None
                if content is None
                else (repo.create_blob(content), pygit2.GIT_FILEMODE_BLOB)
            )
        message = (messages or {}).get(str(commit.id), commit.message)
        if reseal and len(commit.parents) == 1:
            head, message = _reseal(
                repo, changes, renamed, head, str(parent.id), message
            )
        tree = _apply(repo, parent.tree, changes)
        oid = repo.create_commit(
            None,
            commit.author,
            commit.committer,
            message,
            tree,
            [parent.id, *[p.id for p in commit.parents[1:]]],
        )
        renamed[str(commit.id)] = str(oid)
        parent = repo[oid].peel(pygit2.Commit)
    repo.references[f"refs/heads/{branch}"].set_target(parent.id)
    return str(parent.id)


def push_direct(
    repo: pygit2.Repository,
    files: Mapping[str, bytes | None],
    message: str,
    branch: str = "main",
) -> str:
    """Commit *files* straight onto *branch* (someone who can write the repo's refs)."""
    tip = repo.revparse_single(f"refs/heads/{branch}").peel(pygit2.Commit)
    changes = {
        p: None if c is None else (repo.create_blob(c), pygit2.GIT_FILEMODE_BLOB)
        for p, c in files.items()
    }
    tree = _apply(repo, tip.tree, changes)
    oid = repo.create_commit(None, SIGNATURE, SIGNATURE, message, tree, [tip.id])
    repo.references[f"refs/heads/{branch}"].set_target(oid)
    return str(oid)


def find(
    commits: Sequence[pygit2.Commit], wanted: Callable[[pygit2.Commit], bool]
) -> list[int]:
    """Return the positions of the commits *wanted* says yes to."""
    return [i for i, c in enumerate(commits) if wanted(c)]


def blob(repo: pygit2.Repository, commit: pygit2.Commit, path: str) -> bytes:
    """Return the bytes of *path* in *commit*."""
    return repo[commit.tree[path].id].peel(pygit2.Blob).data


def _head_before(commits: Sequence[pygit2.Commit]) -> str | None:
    for commit in reversed(commits):
        head = parse_chain_trailer(commit.message)
        if head is not None and len(commit.parents) == 1:
            return head
    return None


def _reseal(
    repo: pygit2.Repository,
    changes: dict[str, tuple[pygit2.Oid, int] | None],
    renamed: Mapping[str, str],
    head: str | None,
    base: str,
    message: str,
) -> tuple[str | None, str]:
    """Rewrite the records in *changes* to name replayed commits, chained again from *head*."""
    for path in sorted(changes):
        entry = changes[path]
        if entry is None or not is_record_path(path):
            continue
        data = json.loads(repo[entry[0]].peel(pygit2.Blob).data)
        merge = renamed.get(data.get("merge_commit") or "")
        if merge is not None:
            data["merge_commit"] = merge
            data["policy_commit"] = str(repo[merge].peel(pygit2.Commit).parents[0].id)
        data["chain_prev"], data["chain_base"] = head or GENESIS, base
        content = (
            json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        ).encode()
        changes[path] = (repo.create_blob(content), pygit2.GIT_FILEMODE_BLOB)
        head = record_hash(content)
    old = parse_chain_trailer(message)
    if old is not None and head is not None:
        message = message.replace(old, head)
    return head, message
