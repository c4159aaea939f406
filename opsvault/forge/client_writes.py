"""The ops repo's endpoints on one Session, and the Forgejo writes that read back.

``RepoApi`` names the ops repository's API paths and runs a non-idempotent
write so that a lost answer is never repeated blindly: the state is read back
first. ``Conversation`` (comments, the timeline, labels; API-NOTES §6, §7) and
``ProposalWrites`` (a branch holding files, then its PR; §5) are the parts of
``ForgejoClient`` built on that; they change when those endpoints do.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

from opsvault.errors import ForgeError, ForgeNotFound
from opsvault.forge.errors import ForgeOutcomeUnknown
from opsvault.forge.parse import (
    parse_comment,
    parse_label,
    parse_pull_request,
    parse_timeline_event,
)
from opsvault.forge.session import Session, error_for
from opsvault.forge.types import (
    Comment,
    Label,
    Proposal,
    PullRequest,
    TimelineEvent,
    ensure_marker,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


def seg(value: str) -> str:
    """*value* as one URL path segment."""
    return quote(value, safe="")


def file_path(value: str) -> str:
    """Repository path *value* as URL path segments."""
    return "/".join(seg(part) for part in value.split("/"))


class RepoApi:
    """The API of repository ``owner/repo`` over *session*."""

    def __init__(self, session: Session, owner: str, repo: str) -> None:
        self.session = session
        self._prefix = f"/repos/{seg(owner)}/{seg(repo)}"

    def r(self, suffix: str) -> str:
        return self._prefix + suffix

    def write(self, attempt: Callable[[], T], landed: Callable[[], T | None]) -> T:
        """Run the non-idempotent *attempt*; after a lost answer, ask *landed* first.

        *landed* reads the forge and returns the result if the write is there,
        else None (then the write is attempted again, at most ``attempts`` times).
        """
        attempts = self.session.backoff.attempts
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
                self.session.wait(n)
        raise AssertionError("unreachable")  # pragma: no cover


class Conversation:
    """Comments, the timeline and labels of the repository's issues and PRs."""

    def __init__(self, api: RepoApi, whoami: Callable[[], str]) -> None:
        self._api = api
        self._session = api.session
        self._whoami = whoami

    def fetch_comments(self, number: int) -> list[Comment]:
        # §6: this endpoint is not paginated; one answer holds every comment.
        data = self._session.json("GET", self._api.r(f"/issues/{number}/comments"))
        if not isinstance(data, list):
            raise ForgeError(f"GET comments of #{number}: expected a list")
        return [parse_comment(c) for c in data if c is not None]

    def fetch_timeline(self, number: int) -> list[TimelineEvent]:
        # Without ``page`` Forgejo v15 does not paginate the timeline: one answer
        # holds every entry, oldest first (routers/api/v1/repo/issue_comment.go
        # ListIssueCommentsAndTimeline; models/issues/comment.go FindComments).
        data = self._session.json("GET", self._api.r(f"/issues/{number}/timeline"))
        if not isinstance(data, list):
            raise ForgeError(f"GET timeline of #{number}: expected a list")
        events = (parse_timeline_event(e) for e in data if e is not None)
        return [e for e in events if e is not None]

    def create_comment(self, number: int, body: str) -> Comment:
        path = self._api.r(f"/issues/{number}/comments")

        def landed() -> Comment | None:
            me = self._whoami()
            mine = [
                c
                for c in self.fetch_comments(number)
                if c.author == me and c.body == body
            ]
            return mine[-1] if mine else None

        return self._api.write(
            lambda: parse_comment(
                self._session.json("POST", path, body={"body": body})
            ),
            landed,
        )

    def edit_comment(self, comment_id: int, body: str) -> Comment:
        # PATCH with the full body is idempotent.
        data = self._session.json(
            "PATCH",
            self._api.r(f"/issues/comments/{comment_id}"),
            body={"body": body},
            idempotent=True,
        )
        return parse_comment(data)

    def upsert_comment(self, number: int, marker: str, body: str) -> Comment:
        body = ensure_marker(body, marker)
        me = self._whoami()
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

    def _repo_labels(self) -> list[Label]:
        return [parse_label(x) for x in self._session.paginate(self._api.r("/labels"))]

    def ensure_label(self, name: str, color: str, description: str = "") -> Label:
        def existing() -> Label | None:
            return next((x for x in self._repo_labels() if x.name == name), None)

        found = existing()
        if found is not None:
            return found
        body = {"name": name, "color": color, "description": description}
        return self._api.write(
            lambda: parse_label(
                self._session.json("POST", self._api.r("/labels"), body=body)
            ),
            existing,
        )

    def _issue_labels(self, number: int) -> list[Label]:
        data = self._session.json("GET", self._api.r(f"/issues/{number}/labels"))
        return [parse_label(x) for x in data] if isinstance(data, list) else []

    def add_labels(self, number: int, names: Sequence[str]) -> list[Label]:
        path = self._api.r(f"/issues/{number}/labels")

        def attempt() -> list[Label]:
            data = self._session.json("POST", path, body={"labels": list(names)})
            return [parse_label(x) for x in data] if isinstance(data, list) else []

        def landed() -> list[Label] | None:
            current = self._issue_labels(number)
            return current if set(names) <= {x.name for x in current} else None

        return self._api.write(attempt, landed)

    def remove_label(self, number: int, name: str) -> None:
        # Delete by ID: names may contain "/" and unknown names answer 422 (§7).
        for label in self._issue_labels(number):
            if label.name == name and label.id is not None:
                self._session.call(
                    "DELETE", self._api.r(f"/issues/{number}/labels/{label.id}")
                )


class ProposalWrites:
    """Open a proposal: a new branch holding its files in one commit, then its PR.

    *fetch_file* and *open_pulls* are the client's reads, used to recognise
    what an earlier attempt already created.
    """

    def __init__(
        self,
        api: RepoApi,
        fetch_file: Callable[[str, str], bytes],
        open_pulls: Callable[[], list[PullRequest]],
    ) -> None:
        self._api = api
        self._session = api.session
        self._fetch_file = fetch_file
        self._open_pulls = open_pulls

    def open(self, proposal: Proposal) -> PullRequest:
        self._create_branch_with_files(proposal)
        return self._create_pull(proposal)

    def _branch_has(self, proposal: Proposal) -> bool:
        try:
            return all(
                self._fetch_file(p, proposal.branch) == c for p, c in proposal.files
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
            url = self._api.r(f"/contents/{file_path(path)}")
            body["content"] = b64(content)
        else:
            url = self._api.r("/contents")
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

        self._api.write(attempt, lambda: True if self._branch_has(proposal) else None)

    def _find_pull(self, proposal: Proposal) -> PullRequest | None:
        # Only on recovery paths (409, lost answer). GET /pulls/{base}/{head}
        # would be one request, but it returns PRs in any state; listing open
        # PRs finds exactly the one that blocks a new PR for this head.
        for pr in self._open_pulls():
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
        url = self._api.r("/pulls")

        def attempt() -> PullRequest:
            response = self._session.send("POST", url, body=body)
            if response.status_code == 409:
                existing = self._find_pull(proposal)  # §5.3: an open PR for head exists
                if existing is not None:
                    return existing
            if not response.is_success:
                raise error_for("POST", url, response)
            return parse_pull_request(response.json())

        return self._api.write(attempt, lambda: self._find_pull(proposal))
