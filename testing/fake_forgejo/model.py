"""State of the fake forge: users, orgs, teams, repositories, issues and PRs.

Users, teams, labels, comments, statuses, reviews and protection rules are
frozen values replaced with ``dataclasses.replace``. Repositories, issues and
pull requests are entities that the handlers mutate under ``State.lock``.
"""

from __future__ import annotations

import fnmatch
import threading
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from testing.fake_forgejo.gitstore import GitStore


class Access(StrEnum):
    NONE = "none"
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"
    OWNER = "owner"

    @property
    def rank(self) -> int:
        return list(Access).index(self)


@dataclass(frozen=True, slots=True)
class User:
    id: int
    login: str
    email: str
    full_name: str = ""
    is_admin: bool = False
    is_bot: bool = False
    is_org: bool = False
    created: str = "2024-01-01T00:00:00Z"


@dataclass(frozen=True, slots=True)
class Token:
    value: str
    login: str
    scopes: frozenset[str] = frozenset({"all"})


@dataclass(slots=True)
class Team:
    id: int
    org: str
    name: str
    permission: Access
    members: set[str] = field(default_factory=set)
    repos: set[str] = field(default_factory=set)
    includes_all_repositories: bool = False


@dataclass(frozen=True, slots=True)
class Label:
    id: int
    name: str
    color: str
    description: str = ""
    exclusive: bool = False


@dataclass(frozen=True, slots=True)
class Comment:
    id: int
    issue: int
    author: str
    body: str
    created: str
    updated: str


@dataclass(frozen=True, slots=True)
class CommitStatus:
    id: int
    sha: str
    state: str
    context: str
    description: str
    target_url: str
    creator: str
    created: str


@dataclass(frozen=True, slots=True)
class Review:
    id: int
    author: str
    state: str
    body: str
    commit_id: str
    official: bool
    submitted: str
    stale: bool = False
    dismissed: bool = False


@dataclass(frozen=True, slots=True)
class BranchProtection:
    """A protection rule; field names are the JSON keys of ``BranchProtection``."""

    rule_name: str
    enable_push: bool = False
    enable_push_whitelist: bool = False
    push_whitelist_usernames: tuple[str, ...] = ()
    push_whitelist_teams: tuple[str, ...] = ()
    push_whitelist_deploy_keys: bool = False
    enable_merge_whitelist: bool = False
    merge_whitelist_usernames: tuple[str, ...] = ()
    merge_whitelist_teams: tuple[str, ...] = ()
    enable_status_check: bool = False
    status_check_contexts: tuple[str, ...] = ()
    required_approvals: int = 0
    enable_approvals_whitelist: bool = False
    approvals_whitelist_username: tuple[str, ...] = ()
    approvals_whitelist_teams: tuple[str, ...] = ()
    block_on_rejected_reviews: bool = False
    block_on_official_review_requests: bool = False
    block_on_outdated_branch: bool = False
    dismiss_stale_approvals: bool = False
    ignore_stale_approvals: bool = False
    require_signed_commits: bool = False
    protected_file_patterns: str = ""
    unprotected_file_patterns: str = ""
    apply_to_admins: bool = False
    created_at: str = "2024-01-01T00:00:00Z"
    updated_at: str = "2024-01-01T00:00:00Z"

    def matches(self, branch: str) -> bool:
        return fnmatch.fnmatchcase(branch, self.rule_name)


@dataclass(slots=True)
class PullInfo:
    head_branch: str
    base_branch: str
    merged: bool = False
    merged_at: str | None = None
    merged_by: str | None = None
    merge_commit_sha: str | None = None
    merge_base: str | None = None
    head_sha: str = (
        ""  # last synced refs/pull/N/head (kept after the branch is deleted)
    )
    reviews: list[Review] = field(default_factory=list)
    # Asynchronous mergeability (checking.py): the base tip last tested and
    # until when (fake clock) the PR is "checking" after a push to head or base.
    tested_base: str = ""
    checking_until: str = ""
    # Auto-merge scheduled with merge_when_checks_succeed: (doer, style).
    auto_merge: tuple[str, str] | None = None


@dataclass(slots=True)
class Issue:
    id: int
    number: int
    title: str
    body: str
    author: str
    created: str
    updated: str
    state: str = "open"
    closed_at: str | None = None
    labels: list[int] = field(default_factory=list)
    comments: list[int] = field(default_factory=list)
    pull: PullInfo | None = None


@dataclass(slots=True)
class Repo:
    id: int
    owner: str
    name: str
    git: GitStore
    default_branch: str = "main"
    private: bool = False
    collaborators: dict[str, Access] = field(default_factory=dict)
    labels: dict[int, Label] = field(default_factory=dict)
    protections: list[BranchProtection] = field(default_factory=list)
    issues: dict[int, Issue] = field(default_factory=dict)
    comments: dict[int, Comment] = field(default_factory=dict)
    statuses: dict[str, list[CommitStatus]] = field(default_factory=dict)
    created: str = "2024-01-01T00:00:00Z"
    autodetect_manual_merge: bool = False

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def protection_for(self, branch: str) -> BranchProtection | None:
        """Return the rule for *branch*: plain names before globs, then oldest first."""
        plain = [p for p in self.protections if p.rule_name == branch]
        globbed = [
            p for p in self.protections if p.rule_name != branch and p.matches(branch)
        ]
        found = plain or globbed
        return found[0] if found else None


@dataclass(slots=True)
class State:
    """Everything the fake knows; guard every access with ``lock``."""

    users: dict[str, User] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)
    teams: dict[int, Team] = field(default_factory=dict)
    repos: dict[str, Repo] = field(default_factory=dict)
    org_labels: dict[str, dict[int, Label]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    next_id: int = 1

    def new_id(self) -> int:
        value = self.next_id
        self.next_id += 1
        return value

    def user(self, login: str) -> User | None:
        return self.users.get(login.lower())

    def usable_labels(self, repo: Repo) -> dict[int, Label]:
        """Return the labels an issue of *repo* can carry: its own, then its org's."""
        return {**repo.labels, **self.org_labels.get(repo.owner.lower(), {})}

    def teams_of(self, org: str) -> list[Team]:
        return [t for t in self.teams.values() if t.org.lower() == org.lower()]

    def in_team(self, login: str, org: str, names: tuple[str, ...]) -> bool:
        wanted = {n.lower() for n in names}
        return any(
            t.name.lower() in wanted and login in t.members for t in self.teams_of(org)
        )

    def access(self, repo: Repo, login: str | None) -> Access:
        """Return the effective repository access of *login* (as Forgejo computes it)."""
        if login is None:
            return Access.NONE if repo.private else Access.READ
        user = self.user(login)
        if user is None:
            return Access.NONE
        if user.is_admin or login == repo.owner:
            return Access.OWNER
        best = repo.collaborators.get(
            login, Access.NONE if repo.private else Access.READ
        )
        for team in self.teams_of(repo.owner):
            if login in team.members and (
                team.includes_all_repositories or repo.full_name in team.repos
            ):
                level = (
                    Access.OWNER
                    if team.permission.rank >= Access.ADMIN.rank
                    else team.permission
                )
                best = max(best, level, key=lambda a: a.rank)
        return best

    def can_merge(self, repo: Repo, login: str, rule: BranchProtection | None) -> bool:
        if rule is not None and rule.enable_merge_whitelist:
            return login in rule.merge_whitelist_usernames or self.in_team(
                login, repo.owner, rule.merge_whitelist_teams
            )
        return self.access(repo, login).rank >= Access.WRITE.rank

    def is_official_reviewer(
        self, repo: Repo, login: str, rule: BranchProtection | None
    ) -> bool:
        if rule is not None and rule.enable_approvals_whitelist:
            return login in rule.approvals_whitelist_username or self.in_team(
                login, repo.owner, rule.approvals_whitelist_teams
            )
        return self.access(repo, login).rank >= Access.WRITE.rank


def iso(moment: datetime) -> str:
    """Render a timestamp the way Forgejo does (RFC 3339, seconds)."""
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
