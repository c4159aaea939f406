"""Pull request endpoints: list, get, create, edit, files, reviews, merge."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

from testing.fake_forgejo import checking, merging
from testing.fake_forgejo.core import ApiError, ForgeCore, Reply, Request
from testing.fake_forgejo.model import (
    Access,
    Issue,
    Repo,
    Review,
)
from testing.fake_forgejo.render import Json, is_draft
from testing.fake_forgejo.routes_timeline import record_state_change

Handler = Callable[[ForgeCore, Request], Reply]

_SORTS: dict[str, tuple[Callable[[Issue], object], bool]] = {
    "oldest": (lambda i: (i.created, i.id), False),
    "recentupdate": (lambda i: (i.updated, i.id), True),
    "leastupdate": (lambda i: (i.updated, i.id), False),
    "recentclose": (lambda i: (i.closed_at or "", i.id), True),
    "mostcomment": (lambda i: (len(i.comments), i.id), True),
    "leastcomment": (lambda i: (len(i.comments), i.id), False),
}


def _pull_json(
    forge: ForgeCore,
    repo: Repo,
    issue: Issue,
    req: Request,
    repo_json: Json | None = None,
    *,
    listed: bool = False,
    tips: Mapping[str, str] | None = None,
) -> Json:
    head, base = forge.sync_pull(repo, issue, tips)
    return forge.render.pull(
        repo,
        issue,
        req.viewer,
        head_sha=head,
        base_sha=base,
        repo_json=repo_json,
        checking=forge.is_checking(issue),
        listed=listed,
    )


def list_pulls(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    merging.detect_manual_merges(forge, repo)
    merging.run_auto_merges(forge, repo)  # a finished check re-evaluates them
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
    # Head moves re-stamp updated_at, so sync before sorting; every branch tip is
    # read once for the whole listing, not one ref lookup per PR.
    tips = repo.git.branch_tips()
    for issue in pulls:
        forge.sync_pull(repo, issue, tips)
    key, reverse = _SORTS.get(req.arg("sort"), (lambda i: (i.created, i.id), True))
    pulls.sort(key=key, reverse=reverse)
    chunk, headers = forge.paginate(req, pulls)
    repo_json = forge.render.repo(repo, req.viewer)
    return Reply(
        200,
        [
            _pull_json(forge, repo, i, req, repo_json, listed=True, tips=tips)
            for i in chunk
        ],
        headers=headers,
    )


def get_pull(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    merging.detect_manual_merges(forge, repo)
    merging.run_auto_merges(forge, repo)  # a finished check re-evaluates them
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
    if "state" in body and issue.pull.merged:  # any state (pull.go:738-742)
        raise ApiError(
            412, "cannot change state of this pull request, it was already merged"
        )
    if "state" in body and body["state"] != issue.state:
        issue.state = body["state"]
        issue.closed_at = forge.now() if issue.state == "closed" else None
        record_state_change(
            forge, repo, issue.number, req.viewer, issue.state == "closed"
        )
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
    assert issue.pull is not None
    # Computed at refs/pull/N/head, which follows a push only once Forgejo's
    # queue has run (here: once the PR was read again), pull.go:1588-1631.
    head = repo.git.ref(f"refs/pull/{issue.number}/head") or issue.pull.head_sha
    base = repo.git.tip(issue.pull.base_branch) or head
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
    head = repo.git.ref(f"refs/pull/{issue.number}/head") or head
    commit = body.get("commit_id") or head
    base_tip = repo.git.tip(pull.base_branch) or head
    # Stale only if the diff at *commit* differs from the diff at the head
    # (services/pull/review.go:295-318), and only for approve/reject.
    stale = (
        state in {"APPROVED", "REQUEST_CHANGES"}
        and commit != head
        and (
            repo.git.resolve(commit) is None
            or checking.diff_differs(repo.git, base_tip, commit, head)
        )
    )
    official = state in {
        "APPROVED",
        "REQUEST_CHANGES",
    } and forge.state.is_official_reviewer(
        repo, req.viewer, repo.protection_for(pull.base_branch)
    )
    if state in {"APPROVED", "REQUEST_CHANGES"}:
        # A new approve/reject clears official on the reviewer's older ones,
        # whether or not the new one is official (models/issues/review.go:422-430).
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
        stale,
    )
    pull.reviews.append(review)
    issue.updated = forge.now()
    if state == "APPROVED":  # an approval re-evaluates scheduled auto-merges
        merging.run_auto_merges(forge, repo)
    return Reply(200, forge.render.review(repo, issue.number, review, req.viewer))


def is_merged(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    issue = forge.find_issue(repo, req, pull=True)
    return Reply(204 if issue.pull is not None and issue.pull.merged else 404)


def merge_pull(forge: ForgeCore, req: Request) -> Reply:
    """POST .../merge in the order of Forgejo's CheckPullMergeable (services/pull/check.go:68-150)."""
    repo = forge.find_repo(req)
    issue = forge.find_issue(repo, req, pull=True)
    pull = issue.pull
    assert pull is not None and req.viewer is not None
    if pull.merged:
        raise ApiError(405, "")
    if issue.state == "closed":
        raise ApiError(404, "The target couldn't be found.")
    head, base = forge.sync_pull(repo, issue)
    body = req.body or {}
    rule = repo.protection_for(pull.base_branch)
    if not forge.state.can_merge(repo, req.viewer, rule):
        raise ApiError(405, "User not allowed to merge PR")
    style = body.get("Do")
    if style == "manually-merged":  # nothing else is checked (check.go:96-98)
        merging.mark_merged(
            forge, repo, issue, req.viewer, body.get("MergeCommitID", "")
        )
        return Reply(200)
    if style not in {"merge", "squash"}:
        raise ApiError(
            405,
            f"merge style {style!r} is not allowed (the fake offers merge, squash and manually-merged)",
        )
    if is_draft(issue.title):
        raise ApiError(405, "Work in progress PRs cannot be merged")
    if forge.is_checking(issue) or not repo.git.mergeable(base, head):
        raise ApiError(405, "Please try again later")
    auto = bool(body.get("merge_when_checks_succeed"))
    if rule is not None and not auto:  # a scheduled merge skips protection now
        problem = merging.protection_problem(forge, repo, pull, head, rule)
        if problem and not (
            body.get("force_merge")
            and merging.may_override(forge, repo, req.viewer, rule)
        ):
            raise ApiError(405, f"not allowed to merge [reason: {problem}]")
    if auto:  # no head pin for a scheduled merge (automerge.go:206-231)
        if pull.auto_merge is not None:
            raise ApiError(409, "auto merge already scheduled")
        pull.auto_merge = (req.viewer, style)
        return Reply(201)
    pin = body.get("head_commit_id")
    if pin and pin != head:
        raise ApiError(409, "head out of date")
    merging.merge_now(
        forge,
        repo,
        issue,
        req.viewer,
        head,
        style,
        title=body.get("MergeTitleField", ""),
        extra=body.get("MergeMessageField", ""),
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
