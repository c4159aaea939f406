"""Server info, repository, contents, branches, statuses and branch protection endpoints."""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pygit2

from opsvault.testing.fake_forgejo import merging, protection
from opsvault.testing.fake_forgejo.core import ApiError, ForgeCore, Reply, Request
from opsvault.testing.fake_forgejo.gitstore import Entry
from opsvault.testing.fake_forgejo.model import (
    Access,
    BranchProtection,
    CommitStatus,
    Repo,
)
from opsvault.testing.fake_forgejo.render import Json

Handler = Callable[[ForgeCore, Request], Reply]
_NOT_FOUND = "The target couldn't be found."
_STATUS_STATES = ("pending", "success", "error", "failure", "warning")
MAX_BLOB_SIZE = 10 * 1024 * 1024  # [api] DEFAULT_MAX_BLOB_SIZE
# Worst first (modules/structs/commit_status.go:23-29): warning ranks below pending.
_STATUS_PRIORITY = {"error": 0, "failure": 1, "warning": 2, "pending": 3, "success": 4}


def version(forge: ForgeCore, req: Request) -> Reply:
    return Reply(200, {"version": forge.version})


def api_settings(forge: ForgeCore, req: Request) -> Reply:
    return Reply(
        200,
        {
            "max_response_items": forge.max_response_items,
            "default_paging_num": forge.default_paging_num,
            "default_git_trees_per_page": 1000,
            "default_max_blob_size": MAX_BLOB_SIZE,
        },
    )


def get_repo(forge: ForgeCore, req: Request) -> Reply:
    return Reply(200, forge.render.repo(forge.find_repo(req), req.viewer))


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
    if (
        entry.kind == "symlink"
    ):  # the link target, no content (files/content.go:206-213)
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


def _branch_json(forge: ForgeCore, repo: Repo, req: Request, name: str) -> Json:
    sha = repo.git.tip(name)
    assert sha is not None
    commit = repo.git.commit_info(sha)
    rule = repo.protection_for(name)
    can_write = forge.state.access(repo, req.viewer).rank >= Access.WRITE.rank
    person = {"name": commit.author.name, "email": commit.author.email, "username": ""}
    return {
        "name": name,
        "commit": {
            "id": sha,
            "message": commit.message,
            "url": f"{forge.root_url}/{repo.full_name}/commit/{sha}",
            "author": person,
            "committer": person,
            "timestamp": forge.render_time(commit),
            "added": None,
            "removed": None,
            "modified": None,
            "verification": None,
        },
        "protected": rule is not None,
        "required_approvals": rule.required_approvals if rule else 0,
        "enable_status_check": rule.enable_status_check if rule else False,
        "status_check_contexts": list(rule.status_check_contexts) if rule else [],
        "user_can_push": can_write and (rule is None or rule.enable_push),
        "user_can_merge": req.viewer is not None
        and forge.state.can_merge(repo, req.viewer, rule),
        "effective_branch_protection_name": rule.rule_name if rule else "",
    }


def list_branches(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    chunk, headers = forge.paginate(req, repo.git.branches())
    return Reply(
        200, [_branch_json(forge, repo, req, b) for b in chunk], headers=headers
    )


def get_branch(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    if repo.git.tip(req.params["branch"]) is None:
        raise ApiError(404, _NOT_FOUND)
    return Reply(200, _branch_json(forge, repo, req, req.params["branch"]))


def create_branch(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    forge.require(repo, req, Access.WRITE)
    body = req.body or {}
    name = body["new_branch_name"]
    source = (
        body.get("old_ref_name") or body.get("old_branch_name") or repo.default_branch
    )
    if repo.git.tip(name) is not None or repo.git.ref(f"refs/tags/{name}") is not None:
        raise ApiError(409, f"The branch {name} already exists.")
    sha = repo.git.resolve(source)
    if sha is None:
        raise ApiError(404, f"The old branch {source} does not exist")
    repo.git.set_ref(f"refs/heads/{name}", sha)
    return Reply(201, _branch_json(forge, repo, req, name))


def delete_branch(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    forge.require(repo, req, Access.WRITE)
    name = req.params["branch"]
    if repo.git.tip(name) is None:
        raise ApiError(404, _NOT_FOUND)
    if name == repo.default_branch or repo.protection_for(name) is not None:
        raise ApiError(403, f"branch {name} is protected or the default branch")
    repo.git.delete_branch(name)
    return Reply(204)


def create_status(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    forge.require(repo, req, Access.WRITE)
    sha = repo.git.resolve(req.params["sha"])
    body = req.body or {}
    if sha is None:
        raise ApiError(404, _NOT_FOUND)
    if body.get("state") not in _STATUS_STATES:
        raise ApiError(400, f"invalid commit status state {body.get('state')!r}")
    assert req.viewer is not None
    status = CommitStatus(
        forge.state.new_id(),
        sha,
        body["state"],
        # All three are trimmed when stored (models/git/commit_status.go:411-413).
        (body.get("context") or "default").strip(),
        (body.get("description") or "").strip(),
        (body.get("target_url") or "").strip(),
        req.viewer,
        forge.now(),
    )
    repo.statuses.setdefault(sha, []).append(status)
    if status.state == "success":  # a success re-evaluates scheduled auto-merges
        merging.run_auto_merges(forge, repo, sha)
    return Reply(201, forge.render.status(repo, status, req.viewer))


def _statuses_of(repo: Repo, ref: str) -> tuple[str, list[CommitStatus]]:
    sha = repo.git.resolve(ref)
    if sha is None:
        raise ApiError(404, _NOT_FOUND)
    return sha, list(repo.statuses.get(sha, []))


def list_statuses(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    _, statuses = _statuses_of(repo, req.params.get("sha") or req.params["ref"])
    if state := req.arg("state"):
        statuses = [s for s in statuses if s.state == state]
    statuses.sort(key=lambda s: s.id, reverse=req.arg("sort") != "oldest")
    chunk, headers = forge.paginate(req, statuses)
    return Reply(
        200, [forge.render.status(repo, s, req.viewer) for s in chunk], headers=headers
    )


def combined_status(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    sha, statuses = _statuses_of(repo, req.params["ref"])
    latest = {s.context: s for s in statuses}  # later rows win
    if not latest:  # an empty CombinedStatus{} (routers/api/v1/repo/status.go:281-283)
        return Reply(
            200,
            {
                "state": "",
                "sha": "",
                "total_count": 0,
                "statuses": None,
                "repository": None,
                "commit_url": "",
                "url": "",
            },
        )
    # The worst state wins, error is reported as failure (services/convert/status.go:46-61).
    combined = min((s.state for s in latest.values()), key=_STATUS_PRIORITY.__getitem__)
    if combined == "error":
        combined = "failure"
    chunk, headers = forge.paginate(
        req, sorted(latest.values(), key=lambda s: s.id), link=False
    )
    return Reply(
        200,
        {
            "state": combined,
            "sha": sha,
            "total_count": len(latest),
            "statuses": [forge.render.status(repo, s, req.viewer) for s in chunk],
            "repository": forge.render.repo(repo, req.viewer),
            "commit_url": f"{forge.root_url}/api/v1/repos/{repo.full_name}/git/commits/{sha}",
            "url": f"{forge.root_url}/api/v1/repos/{repo.full_name}/commits/{sha}/status",
        },
        headers=headers,
    )


def list_protections(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    forge.require(repo, req, Access.ADMIN)
    return Reply(200, [forge.render.protection(p) for p in repo.protections])


def get_protection(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    forge.require(repo, req, Access.ADMIN)
    found = [p for p in repo.protections if p.rule_name == req.params["name"]]
    if not found:
        raise ApiError(404, _NOT_FOUND)
    return Reply(200, forge.render.protection(found[0]))


def create_protection(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    forge.require(repo, req, Access.ADMIN)
    body = dict(req.body or {})
    name = body.pop("rule_name", "") or body.pop("branch_name", "")
    body.pop("branch_name", None)
    if not name or any(p.rule_name == name for p in repo.protections):
        raise ApiError(
            403, f"branch protection for {name!r} already exists or has no name"
        )
    fields = {f.name for f in dataclasses.fields(BranchProtection)}
    values: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v
        for k, v in body.items()
        if k in fields
    }
    rule = BranchProtection(
        rule_name=name, created_at=forge.now(), updated_at=forge.now(), **values
    )
    forge.protect_branch(repo.full_name, rule)
    return Reply(201, forge.render.protection(rule))


HANDLERS: dict[str, Handler] = {
    "getVersion": version,
    "getGeneralAPISettings": api_settings,
    "repoGet": get_repo,
    "repoGetContents": get_contents,
    "repoGetRawFile": get_raw,
    "repoCreateFile": write_file,
    "repoUpdateFile": write_file,
    "repoChangeFiles": write_file,
    "repoListBranches": list_branches,
    "repoGetBranch": get_branch,
    "repoCreateBranch": create_branch,
    "repoDeleteBranch": delete_branch,
    "repoCreateStatus": create_status,
    "repoListStatuses": list_statuses,
    "repoListStatusesByRef": list_statuses,
    "repoGetCombinedStatusByRef": combined_status,
    "repoListBranchProtection": list_protections,
    "repoGetBranchProtection": get_protection,
    "repoCreateBranchProtection": create_protection,
}
