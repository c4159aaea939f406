"""``ForgejoClient``: the ``Forge`` port over Forgejo's REST API.

Endpoint behaviour and traps are documented in ``shared/forgejo/API-NOTES.md``
(section numbers below refer to it). Writes that are not idempotent are never
repeated blindly: when their answer is lost, the client reads the state back and
repeats only if the write is not there (``client_writes.RepoApi.write``). The
conversation's calls and opening proposals are in ``client_writes.py``; HTTP
itself (auth, budget, retries, paging) in ``session.py``.
"""

from __future__ import annotations

import base64
import logging
import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from opsvault.errors import ForgeAuthError, ForgeConflict, ForgeError, ForgeNotFound
from opsvault.forge.client_writes import (
    CommentCalls,
    ProposalWrites,
    RepoApi,
    file_path,
    seg,
)
from opsvault.forge.errors import ForgeOutcomeUnknown
from opsvault.forge.parse import (
    changed_file_ref,
    parse_branch_protection,
    parse_changed_file,
    parse_issue,
    parse_permission,
    parse_pull_request,
    parse_review,
    parse_time,
)
from opsvault.forge.session import Backoff, RequestBudget, Session, error_for
from opsvault.forge.teams import Teams
from opsvault.forge.token import ForgeToken
from opsvault.forge.types import (
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
    settle_merge,
)

log = logging.getLogger(__name__)


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
        self._api = RepoApi(self._session, owner, repo)
        self._talk = CommentCalls(self._api, self.whoami)
        self._proposals = ProposalWrites(
            self._api, self.fetch_file, lambda: self.fetch_pull_requests(ListState.OPEN)
        )
        self._login = bot_login
        self._teams = Teams(self._session)

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
        return self._api.r(suffix)

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
        if updated_since is not None and self._nothing_since(params, older):
            return []
        result: dict[int, PullRequest] = {}
        for item in self._session.paginate(self._r("/pulls"), params, stop=older):
            pr = parse_pull_request(item)
            result.setdefault(pr.number, pr)  # entries can shift between pages
        return list(result.values())

    def _nothing_since(
        self, params: dict[str, str], older: Callable[[Any], bool]
    ) -> bool:
        """Ask for the one most recently updated PR: older than the watermark, none changed.

        Forgejo renders every PR of a page in full (both repositories, the
        diff counts), so an idle tick reads one PR, not a page of untouched
        ones (issue 11); when something did change, the listing that follows
        reads it again among the rest.
        """
        first = self._session.json(
            "GET", self._r("/pulls"), params={**params, "page": 1, "limit": 1}
        )
        if not isinstance(first, list):
            return False  # the listing reports what is wrong with the answer
        return not first or (first[0] is not None and older(first[0]))

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
            "GET", self._r(f"/contents/{file_path(path)}"), params={"ref": ref}
        )
        if not isinstance(data, dict) or data.get("type") != "file":
            raise ForgeNotFound(f"{path}@{ref}: not a file")
        content = data.get("content") or ""
        if not content and (data.get("size") or 0) > 0:
            # §4: blobs above default_max_blob_size come back empty; use /raw.
            response = self._session.call(
                "GET", self._r(f"/raw/{file_path(path)}"), params={"ref": ref}
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
        return self._proposals.open(proposal)

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
                if response.status_code not in (403, 404, 405, 409):
                    raise problem
            # §10, §16: 403/405/409 and lost answers can follow a successful merge;
            # 404 is also Forgejo's answer for a closed PR (§10): a conflict, not
            # a missing PR, which the re-read below tells apart.
            settled = settle_merge(self.fetch_pull_request(number), head_sha)
            if settled is not None:
                return settled
            if not _merge_may_succeed_later(problem) or n == attempts - 1:
                raise problem
            self._session.wait(n)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- the conversation (client_writes.py) ---------------------------------------

    def fetch_comments(self, number: int) -> list[Comment]:
        return self._talk.fetch_comments(number)

    def fetch_timeline(self, number: int) -> list[TimelineEvent]:
        return self._talk.fetch_timeline(number)

    def create_comment(self, number: int, body: str) -> Comment:
        return self._talk.create_comment(number, body)

    def edit_comment(self, comment_id: int, body: str) -> Comment:
        return self._talk.edit_comment(comment_id, body)

    def upsert_comment(self, number: int, marker: str, body: str) -> Comment:
        return self._talk.upsert_comment(number, marker, body)

    def ensure_label(self, name: str, color: str, description: str = "") -> Label:
        return self._talk.ensure_label(name, color, description)

    def add_labels(self, number: int, names: Sequence[str]) -> list[Label]:
        return self._talk.add_labels(number, names)

    def remove_label(self, number: int, name: str) -> None:
        self._talk.remove_label(number, name)

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
            data = self._session.json("GET", self._r(f"/commits/{seg(sha)}/status"))
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

        self._api.write(
            lambda: bool(
                self._session.call("POST", self._r(f"/statuses/{seg(sha)}"), body=body)
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

        return self._api.write(
            lambda: parse_review(
                self._session.json(
                    "POST", self._r(f"/pulls/{number}/reviews"), body=payload
                )
            ),
            landed,
        )

    # -- people and privileges (§11) --------------------------------------------------

    def is_team_member(self, team: str, username: str) -> bool:
        return self._teams.is_member(team, username)

    def fetch_permission(self, username: str) -> Permission:
        data = self._session.json(
            "GET", self._r(f"/collaborators/{seg(username)}/permission")
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
                "GET", self._r(f"/branch_protections/{seg(branch)}")
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
