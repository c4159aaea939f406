"""The fake forge's seeding API: what a test sets up (users, orgs, repos, pushes, PRs)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from datetime import timedelta

from testing.fake_forgejo import checking, protection
from testing.fake_forgejo.forge_state import ForgeState
from testing.fake_forgejo.gitstore import GitStore
from testing.fake_forgejo.model import (
    Access,
    BranchProtection,
    Label,
    PullInfo,
    Repo,
    Team,
    Token,
    User,
    iso,
)


class Seeding(ForgeState):
    """Users, orgs, teams, repos, labels, issues, pushes and pulls, created directly."""

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
