"""The fake forge's state and what every route shares: lookups, PR/git sync, paging."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pygit2

from testing.fake_forgejo import checking, protection
from testing.fake_forgejo.model import (
    Access,
    Issue,
    Repo,
    State,
    User,
    iso,
)
from testing.fake_forgejo.render import Renderer


class ApiError(Exception):
    """Answer *status* with an ``APIError`` body (or *payload* when given)."""

    def __init__(
        self, status: int, message: str, payload: object | None = None
    ) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.payload = payload


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str  # below the base path, e.g. /repos/ops/vault/pulls
    params: Mapping[str, str]
    query: Mapping[str, Sequence[str]]
    body: Any
    viewer: str | None
    headers: Mapping[str, str] = field(default_factory=dict)

    def arg(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[-1] if values else default


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    payload: object | None = None
    raw: bytes | None = None
    headers: tuple[tuple[str, str], ...] = field(default=())


class ForgeState:
    """State plus the operations shared by the route modules.

    ``clock`` supplies "now" for timestamps and commit signatures; pass a fixed
    one for deterministic tests.
    """

    version = "15.0.3+gitea-1.22.0"

    def __init__(
        self,
        git_root: Path,
        *,
        max_response_items: int = 50,
        default_paging_num: int = 30,
        clock: Callable[[], datetime] | None = None,
        checking_seconds: float = 3.0,
    ) -> None:
        self.git_root = Path(git_root)
        self.git_root.mkdir(parents=True, exist_ok=True)
        self.max_response_items = max_response_items
        self.default_paging_num = default_paging_num
        self.clock = clock or (lambda: datetime.now(UTC))
        # How long (fake clock) a PR stays "checking" after a push to its head or
        # base (services/pull/check.go): its merge answers 405 meanwhile.
        self.checking_seconds = checking_seconds
        self._pushes_seen: dict[int, int] = {}
        self.state = State()
        self.root_url = "http://fake-forgejo.invalid"
        self.render = Renderer(self.state, self.root_url)

    # -- lookups -------------------------------------------------------------

    def now(self) -> str:
        return iso(self.clock())

    def render_time(self, commit: pygit2.Commit) -> str:
        zone = timezone(timedelta(minutes=commit.commit_time_offset))
        return iso(datetime.fromtimestamp(commit.commit_time, zone))

    def signature(self, login: str) -> pygit2.Signature:
        user = self._user(login)
        moment = self.clock()
        offset = int((moment.utcoffset() or timedelta()).total_seconds() // 60)
        return pygit2.Signature(
            user.full_name or user.login, user.email, int(moment.timestamp()), offset
        )

    def _user(self, login: str) -> User:
        user = self.state.user(login)
        if user is None:
            raise KeyError(f"no user {login!r}")
        return user

    def repo(self, full_name: str) -> Repo:
        return self.state.repos[full_name.lower()]

    def find_repo(self, req: Request) -> Repo:
        repo = self.state.repos.get(
            f"{req.params['owner']}/{req.params['repo']}".lower()
        )
        if repo is None or self.state.access(repo, req.viewer) is Access.NONE:
            raise ApiError(404, "The target couldn't be found.")
        return repo

    def require(self, repo: Repo, req: Request, level: Access) -> None:
        if self.state.access(repo, req.viewer).rank < level.rank:
            raise ApiError(
                403, f"user does not have {level.value} permission on {repo.full_name}"
            )

    def find_issue(
        self, repo: Repo, req: Request, *, pull: bool | None = None
    ) -> Issue:
        issue = repo.issues.get(int(req.params["index"]))
        if issue is None or (pull is True and issue.pull is None):
            raise ApiError(404, "The target couldn't be found.")
        return issue

    def _new_issue(
        self, repo: Repo, title: str, body: str, author: str, when: str | None = None
    ) -> Issue:
        stamp = when or self.now()
        number = len(repo.issues) + 1
        issue = Issue(
            self.state.new_id(),
            number,
            title,
            body,
            self._user(author).login,
            stamp,
            stamp,
        )
        repo.issues[number] = issue
        return issue

    # -- pull request git state ----------------------------------------------

    def sync_pull(
        self, repo: Repo, issue: Issue, tips: Mapping[str, str] | None = None
    ) -> tuple[str, str]:
        """Catch up with pushes (checking.py); return (live head sha, base sha).

        ``head.sha`` is the live tip of the head branch for every PR, merged ones
        included (services/convert/pull.go:200-233); only when the branch is gone
        is it ``refs/pull/N/head``. *tips* is a snapshot of every branch
        (``GitStore.branch_tips``, read once for many PRs); without it each tip
        is read from the repository.
        """
        pull = issue.pull
        assert pull is not None
        tip_of = repo.git.tip if tips is None else tips.get
        checking.observe(repo, issue, self.clock(), self.checking_seconds, tip_of)
        base_sha = tip_of(pull.base_branch) or ""
        live = tip_of(pull.head_branch)
        return live or pull.head_sha, base_sha

    def notice_git_pushes(self) -> None:
        """Sync the PRs of every repository a ``git push`` reached since the last call.

        The post-receive hook counts pushes; the server asks before each request,
        so a pushed base or head starts its check at (about) the push's time.
        """
        with self.state.lock:
            for repo in self.state.repos.values():
                seen = protection.push_count(repo.git.path)
                if seen != self._pushes_seen.get(repo.id, 0):
                    self._pushes_seen[repo.id] = seen
                    tips = repo.git.branch_tips()
                    for issue in repo.issues.values():
                        if issue.pull is not None and issue.state == "open":
                            self.sync_pull(repo, issue, tips)

    def notice_pushes(self) -> None:
        """Notice every push to a PR's head or base now (starting its check), as Forgejo's hook does."""
        with self.state.lock:
            for repo in self.state.repos.values():
                for issue in repo.issues.values():
                    if issue.pull is not None:
                        self.sync_pull(repo, issue)

    def settle(self) -> None:
        """Let the (fake) background checks finish now, as waiting on a real server would.

        Notices every push first, then ends every running "checking" window.
        The clock does not move; tests about timing move the clock instead.
        """
        with self.state.lock:
            for repo in self.state.repos.values():
                for issue in repo.issues.values():
                    if issue.pull is not None:
                        self.sync_pull(repo, issue)
                        issue.pull.checking_until = ""

    def is_checking(self, issue: Issue) -> bool:
        assert issue.pull is not None
        return checking.is_checking(issue.pull, self.clock())

    # -- paging --------------------------------------------------------------

    def page_args(self, req: Request) -> tuple[int, int]:
        page = max(int(req.arg("page", "1") or 1), 1)
        limit = int(req.arg("limit", "0") or 0)
        if limit <= 0:
            limit = self.default_paging_num
        return page, min(limit, self.max_response_items)

    def paginate(
        self,
        req: Request,
        items: Sequence[Any],
        *,
        link: bool = True,
        x_headers: bool = False,
    ) -> tuple[list[Any], tuple[tuple[str, str], ...]]:
        """Slice *items* for the requested page and build Forgejo's paging headers."""
        page, limit = self.page_args(req)
        total = len(items)
        chunk = list(items[(page - 1) * limit : page * limit])
        headers: list[tuple[str, str]] = [("X-Total-Count", str(total))]
        last = max((total + limit - 1) // limit, 1)
        if link:
            links = []
            query = {k: list(v) for k, v in req.query.items()}

            def url(p: int) -> str:
                query["page"] = [str(p)]
                text = urlencode(sorted(query.items()), doseq=True)
                return f"<{self.root_url}/api/v1{req.path}?{text}>"

            if page < last:
                links += [f'{url(page + 1)}; rel="next"', f'{url(last)}; rel="last"']
            if page > 1:
                links += [f'{url(1)}; rel="first"', f'{url(page - 1)}; rel="prev"']
            if links:
                headers.append(("Link", ",".join(links)))
        if x_headers:
            headers += [
                ("X-Page", str(page)),
                ("X-PerPage", str(limit)),
                ("X-PageCount", str(last)),
                ("X-HasMore", "true" if page < last else "false"),
            ]
        return chunk, tuple(headers)
