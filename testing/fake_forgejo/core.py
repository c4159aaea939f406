"""The fake forge without HTTP: seeding API, lookups, PR/git sync and paging."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pygit2

from testing.fake_forgejo import checking, protection
from testing.fake_forgejo.gitstore import GitStore
from testing.fake_forgejo.model import (
    Access,
    BranchProtection,
    Issue,
    Label,
    PullInfo,
    Repo,
    State,
    Team,
    Token,
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


class ForgeCore:
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

    # -- seeding -------------------------------------------------------------

    def add_user(
        self,
        login: str,
        *,
        is_admin: bool = False,
        is_bot: bool = False,
        email: str = "",
        full_name: str = "",
    ) -> str:
        """Create a user and return a fresh token for it (all scopes)."""
        with self.state.lock:
            user = User(
                self.state.new_id(),
                login,
                email or f"{login}@example.invalid",
                full_name,
                is_admin=is_admin,
                is_bot=is_bot,
                created=self.now(),
            )
            self.state.users[login.lower()] = user
            return self.add_token(login)

    def add_token(
        self, login: str, scopes: Iterable[str] = ("all",), value: str | None = None
    ) -> str:
        token = value or secrets.token_hex(20)
        self.state.tokens[token] = Token(
            token, self._user(login).login, frozenset(scopes)
        )
        return token

    def add_org(self, name: str) -> None:
        with self.state.lock:
            self.state.users[name.lower()] = User(
                self.state.new_id(),
                name,
                f"{name}@example.invalid",
                is_org=True,
                created=self.now(),
            )

    def add_team(
        self,
        org: str,
        name: str,
        permission: Access | str = Access.WRITE,
        *,
        members: Iterable[str] = (),
        repos: Iterable[str] = (),
        includes_all_repositories: bool = False,
    ) -> int:
        """Create a team in *org* and return its id; *repos* are ``owner/name``."""
        with self.state.lock:
            team = Team(
                self.state.new_id(),
                org,
                name,
                Access(permission),
                set(members),
                set(repos),
                includes_all_repositories,
            )
            self.state.teams[team.id] = team
            self.refresh_hooks()
            return team.id

    def create_repo(
        self,
        owner: str,
        name: str,
        files: Mapping[str, str | bytes],
        *,
        default_branch: str = "main",
    ) -> Repo:
        with self.state.lock:
            self._user(owner)
            git = GitStore.create(
                self.git_root / owner / f"{name}.git",
                files,
                self.signature(owner),
                default_branch,
            )
            repo = Repo(
                self.state.new_id(),
                owner,
                name,
                git,
                default_branch,
                created=self.now(),
            )
            self.state.repos[repo.full_name.lower()] = repo
            protection.install_hook(git.path)
            protection.write_config(self.state, repo)
            return repo

    def refresh_hooks(self) -> None:
        """Rewrite what every repository's pre-receive hook knows (rules, writers)."""
        with self.state.lock:
            for repo in self.state.repos.values():
                protection.write_config(self.state, repo)

    def add_collaborator(
        self, repo: str, login: str, permission: Access | str = Access.WRITE
    ) -> None:
        self.repo(repo).collaborators[self._user(login).login] = Access(permission)
        self.refresh_hooks()

    def protect_branch(self, repo: str, rule: BranchProtection) -> None:
        with self.state.lock:
            target = self.repo(repo)
            names = [p.rule_name for p in target.protections]
            if rule.rule_name in names:  # an edit keeps the rule's age (its place)
                target.protections[names.index(rule.rule_name)] = rule
            else:
                target.protections.append(rule)
            protection.write_config(self.state, target)

    def add_label(
        self,
        repo: str,
        name: str,
        color: str = "#00aabb",
        description: str = "",
        *,
        exclusive: bool = False,
    ) -> int:
        with self.state.lock:
            label = Label(self.state.new_id(), name, color, description, exclusive)
            self.repo(repo).labels[label.id] = label
            return label.id

    def add_org_label(
        self,
        org: str,
        name: str,
        color: str = "#00aabb",
        description: str = "",
        *,
        exclusive: bool = False,
    ) -> int:
        """Create a label of organisation *org*, usable on every repository it owns."""
        with self.state.lock:
            label = Label(self.state.new_id(), name, color, description, exclusive)
            self.state.org_labels.setdefault(org.lower(), {})[label.id] = label
            return label.id

    def add_issue(
        self, repo: str, title: str, *, author: str, body: str = "", state: str = "open"
    ) -> int:
        with self.state.lock:
            target = self.repo(repo)
            issue = self._new_issue(target, title, body, author)
            if state == "closed":
                issue.state, issue.closed_at = "closed", issue.created
            return issue.number

    def push(
        self,
        repo: str,
        branch: str,
        files: Mapping[str, str | bytes | None],
        *,
        author: str,
        message: str = "change",
        start: str | None = None,
    ) -> str:
        """Commit *files* on *branch* (created from *start* or the default branch) as *author*."""
        with self.state.lock:
            target = self.repo(repo)
            parent = target.git.tip(branch) or target.git.resolve(
                start or target.default_branch
            )
            sig = self.signature(author)
            return target.git.commit(branch, files, message, sig, sig, parent=parent)

    def open_pull(
        self,
        repo: str,
        *,
        head: str,
        base: str | None = None,
        title: str,
        author: str,
        body: str = "",
    ) -> int:
        """Open a PR from branch *head* (which must exist) and return its number."""
        with self.state.lock:
            target = self.repo(repo)
            sha = target.git.tip(head)
            if sha is None:
                raise KeyError(f"{repo}: no branch {head!r}")
            issue = self._new_issue(target, title, body, author)
            base_branch = base or target.default_branch
            issue.pull = PullInfo(
                head,
                base_branch,
                head_sha=sha,
                tested_base=target.git.tip(base_branch) or "",
            )
            # A new PR is queued for its conflict check like a pushed one.
            checking.start_check(issue.pull, self.clock(), self.checking_seconds)
            target.git.set_ref(f"refs/pull/{issue.number}/head", sha)
            return issue.number

    def create_pulls_bulk(
        self,
        repo: str,
        count: int,
        *,
        author: str,
        files: Mapping[str, str | bytes] | None = None,
        branch_prefix: str = "bulk/",
        title: str = "bulk proposal {n}",
    ) -> list[int]:
        """Open *count* PRs cheaply: one commit, *count* branches pointing at it."""
        with self.state.lock:
            target = self.repo(repo)
            base = target.git.tip(target.default_branch)
            sig = self.signature(author)
            changes = files or {f"{branch_prefix}marker.txt": "bulk\n"}
            start = self.clock()
            head = target.git.commit(
                f"{branch_prefix}0", changes, "bulk change", sig, sig, parent=base
            )
            numbers = []
            refs: dict[str, str] = {}
            for n in range(count):
                if n:  # branch 0 was created by the commit
                    refs[f"refs/heads/{branch_prefix}{n}"] = head
                issue = self._new_issue(
                    target,
                    title.format(n=n),
                    "",
                    author,
                    iso(start + timedelta(seconds=n)),
                )
                issue.pull = PullInfo(
                    f"{branch_prefix}{n}",
                    target.default_branch,
                    head_sha=head,
                    tested_base=base or "",
                )
                refs[f"refs/pull/{issue.number}/head"] = head
                numbers.append(issue.number)
            target.git.set_refs_packed(refs)
            return numbers

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

    def sync_pull(self, repo: Repo, issue: Issue) -> tuple[str, str]:
        """Catch up with pushes (checking.py); return (live head sha, base sha).

        ``head.sha`` is the live tip of the head branch for every PR, merged ones
        included (services/convert/pull.go:200-233); only when the branch is gone
        is it ``refs/pull/N/head``.
        """
        pull = issue.pull
        assert pull is not None
        checking.observe(repo, issue, self.clock(), self.checking_seconds)
        base_sha = repo.git.tip(pull.base_branch) or ""
        live = repo.git.tip(pull.head_branch)
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
                    for issue in repo.issues.values():
                        if issue.pull is not None and issue.state == "open":
                            self.sync_pull(repo, issue)

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
