"""``ForgejoClient``: the ``Forge`` port over Forgejo's REST API.

Endpoint behaviour and traps are documented in ``shared/forgejo/API-NOTES.md``
(section numbers below refer to it). Writes that are not idempotent are never
repeated blindly: when their answer is lost, the client reads the state back and
repeats only if the write is not there.
"""

from __future__ import annotations

import base64
import logging
import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from opsvault.errors import ForgeAuthError, ForgeConflict, ForgeError, ForgeNotFound
from opsvault.forge.base import (
    BranchProtection,
    ChangedFileInfo,
    Comment,
    CommitStatus,
    Issue,
    Label,
    ListState,
    MergeResult,
    MergeStyle,
    Permission,
    Proposal,
    PullRequest,
    Review,
    ReviewState,
    TimelineEvent,
    ensure_marker,
    settle_merge,
)
from opsvault.forge.errors import ForgeOutcomeUnknown
from opsvault.forge.parse import (
    changed_file_ref,
    parse_branch_protection,
    parse_changed_file,
    parse_comment,
    parse_issue,
    parse_label,
    parse_permission,
    parse_pull_request,
    parse_review,
    parse_time,
    parse_timeline_event,
)
from opsvault.forge.session import Backoff, RequestBudget, Session, error_for
from opsvault.forge.token import ForgeToken

log = logging.getLogger(__name__)

T = TypeVar("T")


def _seg(value: str) -> str:
    return quote(value, safe="")


def _path(value: str) -> str:
    return "/".join(_seg(part) for part in value.split("/"))


def _rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()


class ForgejoClient:
    """Talks to one ops repository ``owner/repo`` on a Forgejo instance.

    *transport* and *sleep* exist for tests (``httpx.MockTransport``, no real
    sleeping). ``bot_login`` saves one ``GET /user`` when it is known.
    """

    def __init__(
        self,
        base_url: str,
        owner: str,
        repo: str,
        token: ForgeToken,
        *,
        bot_login: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 15.0,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.owner = owner
        self.repo = repo
        self._session = Session(
            base_url,
            token,
            transport=transport,
            timeout=timeout,
            backoff=backoff,
            sleep=sleep,
            rng=rng,
        )
        self._repo_path = f"/repos/{_seg(owner)}/{_seg(repo)}"
        self._login = bot_login
        self._team_ids: dict[tuple[str, str], int] = {}

    def __repr__(self) -> str:
        return (
            f"ForgejoClient({self._session!r}, repo={self.owner + '/' + self.repo!r})"
        )

    def close(self) -> None:
        self._session.close()

    # -- request budget ---------------------------------------------------------------

    def begin_tick(self, limit: int | None = None) -> RequestBudget:
        """Count requests afresh; beyond *limit* they raise ForgeBudgetExceeded."""
        self._session.budget = RequestBudget(limit)
        return self._session.budget

    def observe_requests(
        self, observer: Callable[[str, str, int | None], None] | None
    ) -> None:
        """Tell *observer* of every request: (method, path, HTTP status or None: no answer)."""
        self._session.observer = observer

    @property
    def requests_made(self) -> int:
        """Requests sent since the last :meth:`begin_tick` (or since creation)."""
        return self._session.budget.used

    # -- helpers ----------------------------------------------------------------------

    def _r(self, suffix: str) -> str:
        return self._repo_path + suffix

    def _write(self, attempt: Callable[[], T], landed: Callable[[], T | None]) -> T:
        """Run the non-idempotent *attempt*; after a lost answer, ask *landed* first.

        *landed* reads the forge and returns the result if the write is there,
        else None (then the write is attempted again, at most ``attempts`` times).
        """
        attempts = self._session.backoff.attempts
        for n in range(attempts):
            try:
                return attempt()
            except ForgeOutcomeUnknown as exc:
                log.warning("%s; reading back before any retry", exc)
                found = landed()
                if found is not None:
                    return found
                if n == attempts - 1:
                    raise
                self._session.wait(n)
        raise AssertionError("unreachable")  # pragma: no cover

    def whoami(self) -> str:
        """Return the login the token belongs to (asked once, then remembered)."""
        if self._login is None:
            data = self._session.json("GET", "/user")
            login = data.get("login") if isinstance(data, dict) else None
            if not isinstance(login, str):
                raise ForgeError("GET /user: answer has no login")
            self._login = login
        return self._login

    # -- pull requests ----------------------------------------------------------------

    def fetch_pull_requests(
        self,
        state: ListState = ListState.OPEN,
        *,
        updated_since: datetime | None = None,
    ) -> list[PullRequest]:
        def older(item: Any) -> bool:
            if updated_since is None or not isinstance(item, dict):
                return False
            updated = parse_time(item.get("updated_at"))
            return updated is not None and updated < updated_since

        params = {"state": str(state), "sort": "recentupdate"}
        result: dict[int, PullRequest] = {}
        for item in self._session.paginate(self._r("/pulls"), params, stop=older):
            pr = parse_pull_request(item)
            result.setdefault(pr.number, pr)  # entries can shift between pages
        return list(result.values())

    def fetch_pull_request(self, number: int) -> PullRequest:
        return parse_pull_request(
            self._session.json("GET", self._r(f"/pulls/{number}"))
        )

    def fetch_changed_files(self, number: int, head_sha: str) -> list[ChangedFileInfo]:
        # §3: /files lags behind head.sha after a push; contents_url tells which
        # commit the list was computed at.
        files: list[ChangedFileInfo] = []
        for item in self._session.paginate(self._r(f"/pulls/{number}/files")):
            ref = changed_file_ref(item)
            if ref is not None and ref != head_sha:
                raise ForgeConflict(
                    f"PR #{number}: file list computed at {ref!r}, "
                    f"not at head {head_sha!r}; "
                    "retry on the next tick"
                )
            files.append(parse_changed_file(item))
        return files

    def fetch_file(self, path: str, ref: str) -> bytes:
        data = self._session.json(
            "GET", self._r(f"/contents/{_path(path)}"), params={"ref": ref}
        )
        if not isinstance(data, dict) or data.get("type") != "file":
            raise ForgeNotFound(f"{path}@{ref}: not a file")
        content = data.get("content") or ""
        if not content and (data.get("size") or 0) > 0:
            # §4: blobs above default_max_blob_size come back empty; use /raw.
            response = self._session.call(
                "GET", self._r(f"/raw/{_path(path)}"), params={"ref": ref}
            )
            return response.content
        try:
            return base64.b64decode(content)
        except ValueError as exc:
            raise ForgeError(f"{path}@{ref}: content is not base64") from exc

    def fetch_reviews(self, number: int) -> list[Review]:
        return [
            parse_review(r)
            for r in self._session.paginate(self._r(f"/pulls/{number}/reviews"))
        ]

    def close_pull_request(self, number: int) -> PullRequest:
        # PATCH with an absolute state is idempotent, so it may be retried (§5.3).
        data = self._session.json(
            "PATCH",
            self._r(f"/pulls/{number}"),
            body={"state": "closed"},
            idempotent=True,
        )
        return parse_pull_request(data)

    def open_proposal(self, proposal: Proposal) -> PullRequest:
        self._create_branch_with_files(proposal)
        return self._create_pull(proposal)

    def _branch_has(self, proposal: Proposal) -> bool:
        try:
            return all(
                self.fetch_file(p, proposal.branch) == c for p, c in proposal.files
            )
        except ForgeNotFound:
            return False

    def _create_branch_with_files(self, proposal: Proposal) -> None:
        def b64(content: bytes) -> str:
            return base64.b64encode(content).decode("ascii")

        body: dict[str, Any] = {
            "branch": proposal.base,
            "new_branch": proposal.branch,
            "message": proposal.message,
        }
        if len(proposal.files) == 1:
            # §5.1: one file, one commit on a new branch.
            ((path, content),) = proposal.files
            url = self._r(f"/contents/{_path(path)}")
            body["content"] = b64(content)
        else:
            url = self._r("/contents")
            body["files"] = [
                {"operation": "create", "path": p, "content": b64(c)}
                for p, c in proposal.files
            ]

        def attempt() -> bool:
            response = self._session.send("POST", url, body=body)
            if response.status_code == 422 and self._branch_has(proposal):
                return True  # an earlier attempt created it (§5.1: 422 = branch exists)
            if not response.is_success:
                raise error_for("POST", url, response)
            return True

        self._write(attempt, lambda: True if self._branch_has(proposal) else None)

    def _find_pull(self, proposal: Proposal) -> PullRequest | None:
        # Only on recovery paths (409, lost answer). GET /pulls/{base}/{head}
        # would be one request, but it returns PRs in any state; listing open
        # PRs finds exactly the one that blocks a new PR for this head.
        for pr in self.fetch_pull_requests(ListState.OPEN):
            if pr.head_ref == proposal.branch and pr.base_ref == proposal.base:
                return pr
        return None

    def _create_pull(self, proposal: Proposal) -> PullRequest:
        body = {
            "head": proposal.branch,
            "base": proposal.base,
            "title": proposal.title,
            "body": proposal.body,
        }

        def attempt() -> PullRequest:
            response = self._session.send("POST", self._r("/pulls"), body=body)
            if response.status_code == 409:
                existing = self._find_pull(proposal)  # §5.3: an open PR for head exists
                if existing is not None:
                    return existing
            if not response.is_success:
                raise error_for("POST", self._r("/pulls"), response)
            return parse_pull_request(response.json())

        return self._write(attempt, lambda: self._find_pull(proposal))

    # -- merge ------------------------------------------------------------------------

    def merge(
        self,
        number: int,
        head_sha: str,
        *,
        style: MergeStyle = MergeStyle.MERGE,
        message: str = "",
    ) -> MergeResult:
        path = self._r(f"/pulls/{number}/merge")
        body: dict[str, Any] = {"Do": str(style), "head_commit_id": head_sha}
        if message:
            body["MergeMessageField"] = message
        attempts = self._session.backoff.attempts
        for n in range(attempts):
            problem: ForgeError
            try:
                response = self._session.send("POST", path, body=body)
            except ForgeOutcomeUnknown as exc:
                problem = exc
            else:
                if response.is_success:
                    pr = self.fetch_pull_request(number)
                    return MergeResult(number, head_sha, pr.merge_commit_sha)
                problem = error_for("POST", path, response)
                if response.status_code not in (403, 405, 409):
                    raise problem
            # §10, §16: 403/405/409 and lost answers can follow a successful merge.
            settled = settle_merge(self.fetch_pull_request(number), head_sha)
            if settled is not None:
                return settled
            if not _merge_may_succeed_later(problem) or n == attempts - 1:
                raise problem
            self._session.wait(n)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- comments ---------------------------------------------------------------------

    def fetch_comments(self, number: int) -> list[Comment]:
        # §6: this endpoint is not paginated; one answer holds every comment.
        data = self._session.json("GET", self._r(f"/issues/{number}/comments"))
        if not isinstance(data, list):
            raise ForgeError(f"GET comments of #{number}: expected a list")
        return [parse_comment(c) for c in data if c is not None]

    def fetch_timeline(self, number: int) -> list[TimelineEvent]:
        # Without ``page`` Forgejo v15 does not paginate the timeline: one answer
        # holds every entry, oldest first (routers/api/v1/repo/issue_comment.go
        # ListIssueCommentsAndTimeline; models/issues/comment.go FindComments).
        data = self._session.json("GET", self._r(f"/issues/{number}/timeline"))
        if not isinstance(data, list):
            raise ForgeError(f"GET timeline of #{number}: expected a list")
        events = (parse_timeline_event(e) for e in data if e is not None)
        return [e for e in events if e is not None]

    def create_comment(self, number: int, body: str) -> Comment:
        path = self._r(f"/issues/{number}/comments")

        def landed() -> Comment | None:
            me = self.whoami()
            mine = [
                c
                for c in self.fetch_comments(number)
                if c.author == me and c.body == body
            ]
            return mine[-1] if mine else None

        return self._write(
            lambda: parse_comment(
                self._session.json("POST", path, body={"body": body})
            ),
            landed,
        )

    def edit_comment(self, comment_id: int, body: str) -> Comment:
        # PATCH with the full body is idempotent.
        data = self._session.json(
            "PATCH",
            self._r(f"/issues/comments/{comment_id}"),
            body={"body": body},
            idempotent=True,
        )
        return parse_comment(data)

    def upsert_comment(self, number: int, marker: str, body: str) -> Comment:
        body = ensure_marker(body, marker)
        me = self.whoami()
        ours = [
            c
            for c in self.fetch_comments(number)
            if c.author == me and marker in c.body
        ]
        if not ours:
            return self.create_comment(number, body)
        if ours[0].body == body:
            return ours[0]
        return self.edit_comment(ours[0].id, body)

    # -- labels -----------------------------------------------------------------------

    def _repo_labels(self) -> list[Label]:
        return [parse_label(x) for x in self._session.paginate(self._r("/labels"))]

    def ensure_label(self, name: str, color: str, description: str = "") -> Label:
        def existing() -> Label | None:
            return next((x for x in self._repo_labels() if x.name == name), None)

        found = existing()
        if found is not None:
            return found
        body = {"name": name, "color": color, "description": description}
        return self._write(
            lambda: parse_label(
                self._session.json("POST", self._r("/labels"), body=body)
            ),
            existing,
        )

    def _issue_labels(self, number: int) -> list[Label]:
        data = self._session.json("GET", self._r(f"/issues/{number}/labels"))
        return [parse_label(x) for x in data] if isinstance(data, list) else []

    def add_labels(self, number: int, names: Sequence[str]) -> list[Label]:
        path = self._r(f"/issues/{number}/labels")

        def attempt() -> list[Label]:
            data = self._session.json("POST", path, body={"labels": list(names)})
            return [parse_label(x) for x in data] if isinstance(data, list) else []

        def landed() -> list[Label] | None:
            current = self._issue_labels(number)
            return current if set(names) <= {x.name for x in current} else None

        return self._write(attempt, landed)

    def remove_label(self, number: int, name: str) -> None:
        # Delete by ID: names may contain "/" and unknown names answer 422 (§7).
        for label in self._issue_labels(number):
            if label.name == name and label.id is not None:
                self._session.call(
                    "DELETE", self._r(f"/issues/{number}/labels/{label.id}")
                )

    # -- statuses and reviews ---------------------------------------------------------

    def set_commit_status(self, sha: str, status: CommitStatus) -> None:
        # §9: the request says "state", the answer says "status".
        body = {
            "state": str(status.state),
            "context": status.context,
            "description": status.description,
            "target_url": status.target_url,
        }

        def landed() -> bool | None:
            data = self._session.json("GET", self._r(f"/commits/{_seg(sha)}/status"))
            rows = data.get("statuses") if isinstance(data, dict) else None
            for row in rows if isinstance(rows, list) else []:
                if (
                    isinstance(row, dict)
                    and row.get("context") == status.context
                    and row.get("status") == str(status.state)
                    and (row.get("description") or "") == status.description
                ):
                    return True
            return None

        self._write(
            lambda: bool(
                self._session.call("POST", self._r(f"/statuses/{_seg(sha)}"), body=body)
            ),
            landed,
        )

    def approve(self, number: int, head_sha: str, body: str = "") -> Review:
        payload = {"event": "APPROVED", "body": body, "commit_id": head_sha}

        def landed() -> Review | None:
            me = self.whoami()
            for review in reversed(self.fetch_reviews(number)):
                if (
                    review.reviewer == me
                    and review.state is ReviewState.APPROVED
                    and review.commit_id == head_sha
                    and not review.dismissed
                ):
                    return review
            return None

        return self._write(
            lambda: parse_review(
                self._session.json(
                    "POST", self._r(f"/pulls/{number}/reviews"), body=payload
                )
            ),
            landed,
        )

    # -- people and privileges (§11) --------------------------------------------------

    def _team_id(self, org: str, team: str) -> int:
        key = (org, team.lower())
        if key not in self._team_ids:
            for item in self._session.paginate(f"/orgs/{_seg(org)}/teams"):
                if (
                    isinstance(item, dict)
                    and str(item.get("name", "")).lower() == key[1]
                ):
                    self._team_ids[key] = int(item["id"])
                    break
            else:
                raise ForgeNotFound(
                    f"team {org + '/' + team!r}: no such team visible to the token"
                )
        return self._team_ids[key]

    def is_team_member(self, team: str, username: str) -> bool:
        org, sep, name = team.partition("/")
        if not sep or not org or not name:
            raise ForgeError(f"team {team!r}: expected the form 'org/team'")
        team_id = self._team_id(org, name)
        response = self._session.send(
            "GET", f"/teams/{team_id}/members/{_seg(username)}"
        )
        if response.status_code == 404:
            return False
        if not response.is_success:
            raise error_for("GET", f"/teams/{team_id}/members/{username}", response)
        return True

    def fetch_permission(self, username: str) -> Permission:
        data = self._session.json(
            "GET", self._r(f"/collaborators/{_seg(username)}/permission")
        )
        return parse_permission(data)

    # -- planner and settings ---------------------------------------------------------

    def fetch_issues(
        self, state: ListState = ListState.ALL, *, updated_since: datetime | None = None
    ) -> list[Issue]:
        params: dict[str, str | int] = {"state": str(state), "type": "issues"}
        if updated_since is not None:
            params["since"] = _rfc3339(updated_since)
        result: dict[int, Issue] = {}
        for item in self._session.paginate(self._r("/issues"), params):
            issue = parse_issue(item)
            result.setdefault(issue.number, issue)
        return list(result.values())

    def fetch_branch_protection(self, branch: str) -> BranchProtection | None:
        try:
            data = self._session.json(
                "GET", self._r(f"/branch_protections/{_seg(branch)}")
            )
        except ForgeNotFound:
            return None
        except ForgeAuthError as exc:
            raise ForgeAuthError(
                f"{exc}; reading branch protection needs repo admin"
            ) from exc
        return parse_branch_protection(data)


def _merge_may_succeed_later(problem: ForgeError) -> bool:
    """Lost answers, 5xx and "try again later" (still checking) may pass."""
    if isinstance(problem, ForgeOutcomeUnknown):
        return True
    return "try again later" in str(problem).lower()
