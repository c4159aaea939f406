"""Server info, repository, contents, branches, statuses and branch protection endpoints."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from testing.fake_forgejo import merging
from testing.fake_forgejo.core import ApiError, ForgeCore, Reply, Request
from testing.fake_forgejo.model import (
    Access,
    BranchProtection,
    CommitStatus,
    Repo,
)
from testing.fake_forgejo.render import Json
from testing.fake_forgejo.routes_contents import MAX_BLOB_SIZE

Handler = Callable[[ForgeCore, Request], Reply]
_NOT_FOUND = "The target couldn't be found."
_STATUS_STATES = ("pending", "success", "error", "failure", "warning")
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
    return Reply(200, [forge.render.protection(repo, p) for p in repo.protections])


def get_protection(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    forge.require(repo, req, Access.ADMIN)
    found = [p for p in repo.protections if p.rule_name == req.params["name"]]
    if not found:
        raise ApiError(404, _NOT_FOUND)
    return Reply(200, forge.render.protection(repo, found[0]))


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
    return Reply(201, forge.render.protection(repo, rule))


# EditBranchProtectionOption keys that replace a field of the rule as given.
_EDITABLE = (
    "enable_merge_whitelist",
    "enable_status_check",
    "status_check_contexts",
    "enable_approvals_whitelist",
    "block_on_rejected_reviews",
    "block_on_official_review_requests",
    "dismiss_stale_approvals",
    "ignore_stale_approvals",
    "require_signed_commits",
    "protected_file_patterns",
    "unprotected_file_patterns",
    "block_on_outdated_branch",
    "apply_to_admins",
    "push_whitelist_usernames",
    "merge_whitelist_usernames",
    "approvals_whitelist_username",
    "push_whitelist_teams",
    "merge_whitelist_teams",
    "approvals_whitelist_teams",
)


def edit_protection(forge: ForgeCore, req: Request) -> Reply:
    """``PATCH …/branch_protections/{name}``: only the fields sent change.

    routers/api/v1/repo/branch.go:756-1000 (EditBranchProtection): turning
    ``enable_push`` off also turns the push whitelist and its deploy keys off;
    a negative ``required_approvals`` is ignored.
    """
    repo = forge.find_repo(req)
    forge.require(repo, req, Access.ADMIN)
    found = [p for p in repo.protections if p.rule_name == req.params["name"]]
    if not found:
        raise ApiError(404, _NOT_FOUND)
    rule = found[0]
    body = dict(req.body or {})
    changes: dict[str, Any] = {
        k: tuple(body[k]) if isinstance(body[k], list) else body[k]
        for k in _EDITABLE
        if body.get(k) is not None
    }
    if body.get("enable_push") is False:
        changes.update(
            enable_push=False,
            enable_push_whitelist=False,
            push_whitelist_deploy_keys=False,
        )
    elif body.get("enable_push") is True:
        changes["enable_push"] = True
        if body.get("enable_push_whitelist") is False:
            changes.update(
                enable_push_whitelist=False, push_whitelist_deploy_keys=False
            )
        elif body.get("enable_push_whitelist") is True:
            changes["enable_push_whitelist"] = True
            if body.get("push_whitelist_deploy_keys") is not None:
                changes["push_whitelist_deploy_keys"] = body[
                    "push_whitelist_deploy_keys"
                ]
    approvals = body.get("required_approvals")
    if isinstance(approvals, int) and approvals >= 0:
        changes["required_approvals"] = approvals
    edited = dataclasses.replace(rule, updated_at=forge.now(), **changes)
    forge.protect_branch(repo.full_name, edited)
    return Reply(200, forge.render.protection(repo, edited))


HANDLERS: dict[str, Handler] = {
    "getVersion": version,
    "getGeneralAPISettings": api_settings,
    "repoGet": get_repo,
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
    "repoEditBranchProtection": edit_protection,
}
