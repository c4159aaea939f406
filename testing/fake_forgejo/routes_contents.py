"""Contents endpoints: read files (contents, raw) and write them (one file or ChangeFiles)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass

import pygit2

from testing.fake_forgejo import protection
from testing.fake_forgejo.core import ApiError, ForgeCore, Reply, Request
from testing.fake_forgejo.gitstore import Entry
from testing.fake_forgejo.model import Access, Repo
from testing.fake_forgejo.render import Json

Handler = Callable[[ForgeCore, Request], Reply]
_NOT_FOUND = "The target couldn't be found."
MAX_BLOB_SIZE = 10 * 1024 * 1024  # [api] DEFAULT_MAX_BLOB_SIZE


def _at_ref(repo: Repo, req: Request) -> tuple[str, Entry]:
    ref = req.arg("ref") or repo.default_branch
    sha = repo.git.resolve(ref)
    entry = None if sha is None else repo.git.entry(sha, req.params["filepath"])
    if sha is None or entry is None:
        raise ApiError(404, _NOT_FOUND)
    return sha, entry


def _contents(
    forge: ForgeCore, repo: Repo, sha: str, path: str, kind: str, blob: str, size: int
) -> Json:
    api = f"{forge.root_url}/api/v1/repos/{repo.full_name}"
    web = f"{forge.root_url}/{repo.full_name}"
    last = repo.git.last_commit_for(sha, path)
    return {
        "name": path.rsplit("/", 1)[-1],
        "path": path,
        "sha": blob,
        "last_commit_sha": last,
        "last_commit_when": forge.render_time(repo.git.commit_info(last)),
        "type": kind,
        "size": size,
        "encoding": None,
        "content": None,
        "target": None,
        "url": f"{api}/contents/{path}?ref={sha}",
        "html_url": f"{web}/src/commit/{sha}/{path}",
        "git_url": f"{api}/git/{'trees' if kind == 'dir' else 'blobs'}/{blob}",
        "download_url": f"{web}/raw/commit/{sha}/{path}" if kind != "dir" else None,
        "submodule_git_url": None,
        "_links": {
            "self": f"{api}/contents/{path}?ref={sha}",
            "git": "",
            "html": f"{web}/src/commit/{sha}/{path}",
        },
    }


def get_contents(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    sha, entry = _at_ref(repo, req)
    if entry.data is None:  # a directory: an array of entries without content
        prefix = f"{entry.path}/" if entry.path else ""
        return Reply(
            200,
            [
                _contents(forge, repo, sha, prefix + n, k, s, z)
                for n, k, s, z in entry.children
            ],
        )
    out = _contents(forge, repo, sha, entry.path, entry.kind, entry.sha, entry.size)
    if entry.kind == "symlink":
        # The link target, no content (files/content.go:206-213).
        out["target"] = entry.data.decode(errors="replace")
        return Reply(200, out)
    # Above [api] DEFAULT_MAX_BLOB_SIZE the content is empty, without an error
    # (services/repository/files/content.go:277); /raw serves such files.
    too_large = entry.size > MAX_BLOB_SIZE
    out["encoding"] = "base64"
    out["content"] = "" if too_large else base64.b64encode(entry.data).decode()
    return Reply(200, out)


def get_raw(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    _, entry = _at_ref(repo, req)
    if entry.data is None:
        raise ApiError(404, _NOT_FOUND)
    etag = f'"{entry.sha}"'
    headers = (
        ("ETag", etag),
        ("X-Forgejo-Object-Type", "file"),
        ("X-Gitea-Object-Type", "file"),
    )
    if etag in {
        t.strip().removeprefix("W/")
        for t in req.headers.get("if-none-match", "").split(",")
    }:
        return Reply(304, headers=headers)
    return Reply(
        200,
        raw=entry.data,
        headers=(("Content-Type", "application/octet-stream"), *headers),
    )


def _check_push(
    forge: ForgeCore, repo: Repo, req: Request, branch: str, paths: list[str]
) -> None:
    """A commit straight onto *branch*: the pre-receive rules of protection.py apply."""
    forge.require(repo, req, Access.WRITE)
    rule = repo.protection_for(branch)
    if rule is None or req.viewer is None:
        return
    protected = protection.matching(
        paths, protection.split_patterns(rule.protected_file_patterns)
    )
    if protected:
        raise ApiError(
            403, f"branch {branch} is protected from changing file {protected[0]}"
        )
    whitelist = protection.push_whitelist(forge.state, repo, rule)
    allowed = rule.enable_push and (
        req.viewer in whitelist if rule.enable_push_whitelist else True
    )
    unprotected = protection.split_patterns(rule.unprotected_file_patterns)
    if not allowed and not (
        unprotected and len(protection.matching(paths, unprotected)) == len(paths)
    ):
        raise ApiError(403, f"Not allowed to push to protected branch {branch}")


@dataclass(frozen=True, slots=True)
class _FileOp:
    operation: str  # create | update | delete
    path: str
    content: bytes
    sha: str
    from_path: str


def _ops_of(req: Request) -> tuple[list[_FileOp], bool]:
    """Return the requested operations and whether they came from POST /contents."""
    body = req.body or {}
    if "filepath" not in req.params:
        items = body.get("files") or []
    else:
        kind = {"POST": "create", "PUT": "update", "DELETE": "delete"}[req.method]
        items = [{**body, "operation": kind, "path": req.params["filepath"]}]
    ops = []
    for item in items:
        try:
            content = base64.b64decode(item.get("content") or "", validate=True)
        except binascii.Error as exc:
            raise ApiError(422, f"content: invalid base64 ({exc})") from exc
        path = str(item.get("path", "")).strip("/")
        if not path or ".." in path.split("/"):
            raise ApiError(422, f"path is invalid [path: {path}]")
        ops.append(
            _FileOp(
                item["operation"],
                path,
                content,
                item.get("sha") or "",
                str(item.get("from_path") or "").strip("/"),
            )
        )
    return ops, "filepath" not in req.params


def write_file(forge: ForgeCore, req: Request) -> Reply:
    """POST/PUT /contents/{path} and POST /contents (ChangeFiles, api.go:1387): one commit."""
    repo = forge.find_repo(req)
    body = req.body or {}
    ops, multi = _ops_of(req)
    branch = body.get("branch") or repo.default_branch
    new_branch = body.get("new_branch") or branch
    base = repo.git.tip(branch)
    if base is None:
        raise ApiError(404, f"branch does not exist [name: {branch}]")
    if new_branch != branch and repo.git.tip(new_branch) is not None:
        raise ApiError(422, f"branch already exists [name: {new_branch}]")
    changes: dict[str, bytes | None] = {}
    for op in ops:
        current = repo.git.entry(base, op.from_path or op.path)
        if op.operation == "create":
            if current is not None:
                raise ApiError(422, f"repository file already exists [path: {op.path}]")
        elif not op.sha:
            if not (multi and new_branch != branch):
                raise ApiError(422, "sha: Required")
            if current is None:
                raise ApiError(404, f"file does not exist [path: {op.path}]")
        elif current is None or current.sha != op.sha:
            raise ApiError(
                409,
                f"sha does not match [given: {op.sha}, expected: {current and current.sha}]",
            )
        if op.from_path and op.from_path != op.path:
            changes[op.from_path] = None
        changes[op.path] = None if op.operation == "delete" else op.content
    if new_branch == branch:
        _check_push(forge, repo, req, branch, list(changes))
    else:  # a new branch is not protected: only code write is needed
        forge.require(repo, req, Access.WRITE)
    assert req.viewer is not None
    who = forge.signature(req.viewer)
    author = _identity(body.get("author") or body.get("committer"), who)
    committer = _identity(body.get("committer") or body.get("author"), who)
    verb = {"create": "Add", "update": "Update", "delete": "Delete"}
    message = body.get("message") or "\n".join(
        f"{verb[op.operation]} {op.path}" for op in ops
    )
    sha = repo.git.commit(new_branch, changes, message, author, committer, parent=base)
    contents: list[Json | None] = []
    for op in ops:
        entry = repo.git.entry(sha, op.path)
        contents.append(
            None
            if entry is None
            else _contents(forge, repo, sha, op.path, entry.kind, entry.sha, entry.size)
        )
    payload: Json = {
        "commit": _commit_json(forge, repo, sha, base, message, author, committer),
        "verification": {
            "verified": False,
            "reason": "gpg.error.not_signed_commit",
            "signature": "",
            "payload": "",
        },
    }
    if multi:
        payload["files"] = contents
    else:
        payload["content"] = contents[0]
    return Reply(201 if req.method == "POST" else 200, payload)


def _commit_json(
    forge: ForgeCore,
    repo: Repo,
    sha: str,
    base: str,
    message: str,
    author: pygit2.Signature,
    committer: pygit2.Signature,
) -> Json:
    commit = repo.git.commit_info(sha)
    when = forge.render_time(commit)
    api = f"{forge.root_url}/api/v1/repos/{repo.full_name}/git"
    return {
        "sha": sha,
        "url": f"{api}/commits/{sha}",
        "html_url": f"{forge.root_url}/{repo.full_name}/commit/{sha}",
        "created": when,
        "message": message,
        "author": {"name": author.name, "email": author.email, "date": when},
        "committer": {"name": committer.name, "email": committer.email, "date": when},
        "parents": [{"sha": base, "url": f"{api}/commits/{base}", "created": when}],
        "tree": {
            "sha": str(commit.tree_id),
            "url": f"{api}/trees/{commit.tree_id}",
            "created": when,
        },
    }


def _identity(given: object, default: pygit2.Signature) -> pygit2.Signature:
    if not isinstance(given, dict) or not given.get("name"):
        return default
    return pygit2.Signature(
        given["name"], given.get("email", ""), default.time, default.offset
    )


HANDLERS: dict[str, Handler] = {
    "repoGetContents": get_contents,
    "repoGetRawFile": get_raw,
    "repoCreateFile": write_file,
    "repoUpdateFile": write_file,
    "repoChangeFiles": write_file,
}
