"""Pull request endpoints: list, get, create, edit, files, reviews, merge."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import replace

from opsvault.testing.fake_forgejo.core import ApiError, ForgeCore, Reply, Request
from opsvault.testing.fake_forgejo.model import (
    Access,
    BranchProtection,
    Issue,
    PullInfo,
    Repo,
    Review,
    State,
)
from opsvault.testing.fake_forgejo.render import Json, is_draft

Handler = Callable[[ForgeCore, Request], Reply]

_SORTS: dict[str, tuple[Callable[[Issue], object], bool]] = {
    "oldest": (lambda i: (i.created, i.id), False),
    "recentupdate": (lambda i: (i.updated, i.id), True),
    "leastupdate": (lambda i: (i.updated, i.id), False),
    "recentclose": (lambda i: (i.closed_at or "", i.id), True),
    "mostcomment": (lambda i: (len(i.comments), i.id), True),
    "leastcomment": (lambda i: (len(i.comments), i.id), False),
}
_CLOSING = re.compile(r"(?i)\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\s+#(\d+)")


def _pull_json(
    forge: ForgeCore,
    repo: Repo,
    issue: Issue,
    req: Request,
    repo_json: Json | None = None,
) -> Json:
    head, base = forge.sync_pull(repo, issue)
    return forge.render.pull(
        repo, issue, req.viewer, head_sha=head, base_sha=base, repo_json=repo_json
    )


def list_pulls(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    state = req.arg("state", "open")
    pulls = [
        i
        for i in repo.issues.values()
        if i.pull is not None and state in {"all", i.state}
    ]
    if poster := req.arg("poster"):
        if forge.state.user(poster) is None:
            raise ApiError(400, f"user does not exist [name: {poster}]")
        pulls = [i for i in pulls if i.author.lower() == poster.lower()]
    if wanted := {int(v) for v in req.query.get("labels", [])}:
        pulls = [i for i in pulls if wanted <= set(i.labels)]
    for issue in pulls:  # head moves re-stamp updated_at, so sync before sorting
        forge.sync_pull(repo, issue)
    key, reverse = _SORTS.get(req.arg("sort"), (lambda i: (i.created, i.id), True))
    pulls.sort(key=key, reverse=reverse)
    chunk, headers = forge.paginate(req, pulls)
    repo_json = forge.render.repo(repo, req.viewer)
    return Reply(
        200,
        [_pull_json(forge, repo, i, req, repo_json) for i in chunk],
        headers=headers,
    )


def get_pull(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    return Reply(
        200, _pull_json(forge, repo, forge.find_issue(repo, req, pull=True), req)
    )


def create_pull(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    forge.require(repo, req, Access.READ)
    body = req.body or {}
    head, base, title = (
        body.get("head", ""),
        body.get("base", ""),
        body.get("title", ""),
    )
    if not title:
        raise ApiError(422, "[Title]: Required")
    head = head.split(":", 1)[-1]
    if repo.git.tip(head) is None or repo.git.tip(base) is None:
        raise ApiError(404, "The target couldn't be found.")
    if head == base:
        raise ApiError(
            422,
            "Invalid PullRequest: There are no changes between the head and the base",
        )
    for issue in repo.issues.values():
        pull = issue.pull
        if (
            pull
            and issue.state == "open"
            and (pull.head_branch, pull.base_branch) == (head, base)
        ):
            raise ApiError(
                409,
                f"pull request already exists for these targets [id: {issue.id}, issue_id: {issue.id}, "
                f"head_repo_id: {repo.id}, base_repo_id: {repo.id}, head_branch: {head}, base_branch: {base}]",
            )
    assert req.viewer is not None
    number = forge.open_pull(
        repo.full_name, head=head, base=base, title=title, author=req.viewer
    )
    issue = repo.issues[number]
    issue.body = body.get("body", "")
    issue.labels = [i for i in body.get("labels", []) if i in repo.labels]
    return Reply(201, _pull_json(forge, repo, issue, req))


def edit_pull(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    issue = forge.find_issue(repo, req, pull=True)
    assert issue.pull is not None
    if issue.author != req.viewer:
        forge.require(repo, req, Access.WRITE)
    body = req.body or {}
    if "state" in body and body["state"] != issue.state:
        if issue.pull.merged:
            raise ApiError(
                412, "cannot change state of this pull request, it was already merged"
            )
        issue.state = body["state"]
        issue.closed_at = forge.now() if issue.state == "closed" else None
    if "title" in body:
        issue.title = body["title"]
    if "body" in body:
        issue.body = body["body"]
    if "labels" in body:
        issue.labels = [i for i in body["labels"] if i in repo.labels]
    issue.updated = forge.now()
    return Reply(201, _pull_json(forge, repo, issue, req))


def pull_files(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    issue = forge.find_issue(repo, req, pull=True)
    head, base = forge.sync_pull(repo, issue)
    assert issue.pull is not None
    merge_base = issue.pull.merge_base or repo.git.merge_base(base, head) or base
    changes = list(repo.git.diff(merge_base, head))
    if skip := req.arg("skip-to"):
        changes = [c for c in changes if c.filename >= skip]
    chunk, headers = forge.paginate(req, changes, x_headers=True)
    api = f"{forge.root_url}/api/v1/repos/{repo.full_name}"
    web = f"{forge.root_url}/{repo.full_name}"
    files = [
        {
            "filename": c.filename,
            "previous_filename": c.previous_filename,
            "status": c.status,
            "additions": c.additions,
            "deletions": c.deletions,
            "changes": c.additions + c.deletions,
            "html_url": f"{web}/src/commit/{head}/{c.filename}",
            "contents_url": f"{api}/contents/{c.filename}?ref={head}",
            "raw_url": f"{web}/raw/commit/{head}/{c.filename}",
        }
        for c in chunk
    ]
    return Reply(200, files, headers=headers)


def list_reviews(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    issue = forge.find_issue(repo, req, pull=True)
    forge.sync_pull(repo, issue)
    assert issue.pull is not None
    visible = [
        r for r in issue.pull.reviews if r.state != "PENDING" or r.author == req.viewer
    ]
    chunk, headers = forge.paginate(req, visible, link=False)
    return Reply(
        200,
        [forge.render.review(repo, issue.number, r, req.viewer) for r in chunk],
        headers=headers,
    )


def create_review(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    issue = forge.find_issue(repo, req, pull=True)
    pull = issue.pull
    assert pull is not None and req.viewer is not None
    head, _ = forge.sync_pull(repo, issue)
    body = req.body or {}
    event, text = body.get("event", ""), body.get("body", "")
    state = event if event in {"APPROVED", "REQUEST_CHANGES", "COMMENT"} else "PENDING"
    if state in {"APPROVED", "REQUEST_CHANGES"} and issue.author == req.viewer:
        word = "approve" if state == "APPROVED" else "reject"
        raise ApiError(422, f"{word} your own pull is not allowed")
    if state == "REQUEST_CHANGES" and not text.strip():
        raise ApiError(422, "review event REQUEST_CHANGES requires a body")
    if state == "COMMENT" and not text.strip() and not body.get("comments"):
        raise ApiError(422, "review event COMMENT requires a body or comment")
    commit = body.get("commit_id") or head
    official = state in {
        "APPROVED",
        "REQUEST_CHANGES",
    } and forge.state.is_official_reviewer(
        repo, req.viewer, repo.protection_for(pull.base_branch)
    )
    if official:  # only the reviewer's latest approve/reject stays official
        pull.reviews = [
            replace(r, official=False) if r.author == req.viewer else r
            for r in pull.reviews
        ]
    review = Review(
        forge.state.new_id(),
        req.viewer,
        state,
        text,
        commit,
        official,
        forge.now(),
        commit != head,
    )
    pull.reviews.append(review)
    issue.updated = forge.now()
    return Reply(200, forge.render.review(repo, issue.number, review, req.viewer))


def is_merged(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    issue = forge.find_issue(repo, req, pull=True)
    return Reply(204 if issue.pull is not None and issue.pull.merged else 404)


def _protection_problem(
    state: State, repo: Repo, pull: PullInfo, head: str, rule: BranchProtection
) -> str | None:
    latest: dict[str, Review] = {}
    for review in pull.reviews:
        if (
            review.state in {"APPROVED", "REQUEST_CHANGES"}
            and review.official
            and not review.dismissed
        ):
            latest[review.author] = review
    approvals = [
        r
        for r in latest.values()
        if r.state == "APPROVED" and not (rule.ignore_stale_approvals and r.stale)
    ]
    if rule.enable_status_check:
        latest_status = {s.context: s.state for s in repo.statuses.get(head, [])}
        patterns = rule.status_check_contexts or ("*",)
        for pattern in patterns:
            matched = [
                s for c, s in latest_status.items() if fnmatch.fnmatchcase(c, pattern)
            ]
            if not matched or any(s != "success" for s in matched):
                return "Not all required status checks successful"
    if len(approvals) < rule.required_approvals:
        return "Does not have enough approvals"
    if rule.block_on_rejected_reviews and any(
        r.state == "REQUEST_CHANGES" for r in latest.values()
    ):
        return "There are requested changes"
    base = repo.git.tip(pull.base_branch)
    if (
        rule.block_on_outdated_branch
        and base is not None
        and repo.git.merge_base(base, head) != base
    ):
        return "The head branch is behind the base branch"
    return None


def merge_pull(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    issue = forge.find_issue(repo, req, pull=True)
    pull = issue.pull
    assert pull is not None and req.viewer is not None
    if issue.state == "closed" and not pull.merged:
        raise ApiError(404, "The target couldn't be found.")
    if pull.merged:
        raise ApiError(405, "")
    head, base = forge.sync_pull(repo, issue)
    body = req.body or {}
    rule = repo.protection_for(pull.base_branch)
    if not forge.state.can_merge(repo, req.viewer, rule):
        raise ApiError(405, "User not allowed to merge PR")
    if body.get("Do") not in {"merge", "squash"}:
        raise ApiError(
            405,
            f"merge style {body.get('Do')!r} is not allowed (the fake offers merge and squash)",
        )
    if is_draft(issue.title):
        raise ApiError(
            405, "The given pull request is a work in progress and cannot be merged"
        )
    if not repo.git.mergeable(base, head):
        raise ApiError(405, "Please try again later")
    if rule is not None:
        problem = _protection_problem(forge.state, repo, pull, head, rule)
        user = forge.state.user(req.viewer)
        admin_override = user is not None and (
            user.is_admin
            or (
                forge.state.access(repo, req.viewer) is Access.OWNER
                and not rule.apply_to_admins
            )
        )
        if problem and not (body.get("force_merge") and admin_override):
            raise ApiError(405, f"not allowed to merge [reason: {problem}]")
    pin = body.get("head_commit_id")
    if pin and pin != head:
        raise ApiError(409, "head out of date")
    title = (
        body.get("MergeTitleField")
        or f"Merge pull request '{issue.title}' (#{issue.number})"
    )
    message = title + (
        "\n\n" + body["MergeMessageField"] if body.get("MergeMessageField") else ""
    )
    with repo.git.lock:
        pull.merge_base = repo.git.merge_base(base, head)
        try:
            sha = repo.git.merge(
                pull.base_branch,
                head,
                message,
                forge.signature(req.viewer),
                squash=body["Do"] == "squash",
            )
        except ValueError as exc:
            raise ApiError(409, str(exc)) from exc
    pull.merged, pull.merged_by, pull.merge_commit_sha = True, req.viewer, sha
    issue.state = "closed"
    pull.merged_at = issue.closed_at = issue.updated = forge.now()
    for number in _CLOSING.findall(issue.body):
        target = repo.issues.get(int(number))
        if target is not None and target.pull is None and target.state == "open":
            target.state, target.closed_at, target.updated = (
                "closed",
                pull.merged_at,
                pull.merged_at,
            )
    if (
        body.get("delete_branch_after_merge")
        and pull.head_branch != repo.default_branch
    ):
        repo.git.delete_branch(pull.head_branch)
    return Reply(200)


HANDLERS: dict[str, Handler] = {
    "repoListPullRequests": list_pulls,
    "repoGetPullRequest": get_pull,
    "repoCreatePullRequest": create_pull,
    "repoEditPullRequest": edit_pull,
    "repoGetPullRequestFiles": pull_files,
    "repoListPullReviews": list_reviews,
    "repoCreatePullReview": create_review,
    "repoPullRequestIsMerged": is_merged,
    "repoMergePullRequest": merge_pull,
}
