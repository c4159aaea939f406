"""Render model objects as the JSON objects Forgejo sends (swagger field names only)."""

from __future__ import annotations

import dataclasses
from typing import Any

from testing.fake_forgejo.model import (
    Access,
    BranchProtection,
    Comment,
    CommitStatus,
    Issue,
    Label,
    Repo,
    Review,
    State,
    Team,
    User,
)

Json = dict[str, Any]


class Renderer:
    """Build response objects; *viewer* decides whether ``is_admin`` is shown (API-NOTES §11)."""

    def __init__(self, state: State, root: str) -> None:
        self.state = state
        self.root = root.rstrip("/")

    def user(
        self, user: User | str | None, viewer: str | None = None, *, blind: bool = False
    ) -> Json | None:
        if isinstance(user, str):
            user = self.state.user(user)
        if user is None:
            return None
        viewer_user = self.state.user(viewer) if viewer else None
        sees = (
            not blind
            and viewer_user is not None
            and (viewer_user.is_admin or viewer_user.login == user.login)
        )
        return {
            "id": user.id,
            "login": user.login,
            "login_name": "",
            "source_id": 0,
            "full_name": user.full_name,
            "email": user.email,
            "avatar_url": f"{self.root}/avatars/{user.id}",
            "html_url": f"{self.root}/{user.login}",
            "language": "",
            "is_admin": user.is_admin and sees,
            "last_login": user.created,
            "created": user.created,
            "restricted": False,
            "active": True,
            "prohibit_login": False,
            "location": "",
            "pronouns": "",
            "website": "",
            "description": "",
            "visibility": "public",
            "followers_count": 0,
            "following_count": 0,
            "starred_repos_count": 0,
        }

    def repo(self, repo: Repo, viewer: str | None) -> Json:
        access = self.state.access(repo, viewer)
        url = f"{self.root}/{repo.full_name}"
        return {
            "id": repo.id,
            "owner": self.user(repo.owner, viewer),
            "name": repo.name,
            "full_name": repo.full_name,
            "description": "",
            "empty": False,
            "private": repo.private,
            "fork": False,
            "template": False,
            "mirror": False,
            "archived": False,
            "size": 0,
            "html_url": url,
            "url": f"{self.root}/api/v1/repos/{repo.full_name}",
            "clone_url": f"{url}.git",
            "ssh_url": f"git@fake:{repo.full_name}.git",
            "default_branch": repo.default_branch,
            "created_at": repo.created,
            "updated_at": repo.created,
            "permissions": {
                "admin": access.rank >= Access.ADMIN.rank,
                "push": access.rank >= Access.WRITE.rank,
                "pull": access.rank >= Access.READ.rank,
            },
            "has_issues": True,
            "has_pull_requests": True,
            "allow_merge_commits": True,
            "allow_squash_merge": True,
            "allow_rebase": False,
            "allow_rebase_explicit": False,
            "allow_fast_forward_only_merge": False,
            "default_merge_style": "merge",
            "object_format_name": "sha1",
            "open_issues_count": sum(
                1 for i in repo.issues.values() if i.pull is None and i.state == "open"
            ),
            "open_pr_counter": sum(
                1
                for i in repo.issues.values()
                if i.pull is not None and i.state == "open"
            ),
        }

    def label(self, repo: Repo, label: Label) -> Json:
        return {
            "id": label.id,
            "name": label.name,
            "color": label.color,
            "description": label.description,
            "exclusive": label.exclusive,
            "is_archived": False,
            "url": f"{self.root}/api/v1/repos/{repo.full_name}/labels/{label.id}"
            if label.id in repo.labels
            else f"{self.root}/api/v1/orgs/{repo.owner}/labels/{label.id}",
        }

    def _issue_common(self, repo: Repo, issue: Issue, viewer: str | None) -> Json:
        usable = self.state.usable_labels(repo)
        kind = "pulls" if issue.pull is not None else "issues"
        return {
            "id": issue.id,
            "url": f"{self.root}/api/v1/repos/{repo.full_name}/{kind}/{issue.number}",
            "html_url": f"{self.root}/{repo.full_name}/{kind}/{issue.number}",
            "number": issue.number,
            "user": self.user(issue.author, viewer),
            "title": issue.title,
            "body": issue.body,
            "labels": [
                self.label(repo, usable[i]) for i in issue.labels if i in usable
            ],
            "milestone": None,
            "assignee": None,
            "assignees": None,
            "state": issue.state,
            "is_locked": False,
            "comments": len(issue.comments),
            "created_at": issue.created,
            "updated_at": issue.updated,
            "closed_at": issue.closed_at,
            "due_date": None,
            "pin_order": 0,
        }

    def issue(self, repo: Repo, issue: Issue, viewer: str | None) -> Json:
        out = self._issue_common(repo, issue, viewer)
        out["html_url"] = f"{self.root}/{repo.full_name}/issues/{issue.number}"
        out["url"] = f"{self.root}/api/v1/repos/{repo.full_name}/issues/{issue.number}"
        out.update(original_author="", original_author_id=0, ref="", assets=[])
        out["repository"] = {
            "id": repo.id,
            "name": repo.name,
            "owner": repo.owner,
            "full_name": repo.full_name,
        }
        pull = issue.pull
        out["pull_request"] = (
            None
            if pull is None
            else {
                "merged": pull.merged,
                "merged_at": pull.merged_at,
                "draft": is_draft(issue.title),
                "html_url": f"{self.root}/{repo.full_name}/pulls/{issue.number}",
            }
        )
        return out

    def pull(
        self,
        repo: Repo,
        issue: Issue,
        viewer: str | None,
        *,
        head_sha: str,
        base_sha: str,
        repo_json: Json | None = None,
        checking: bool = False,
        listed: bool = False,
    ) -> Json:
        """Render a PR; *listed*: as the list endpoint does, which never loads the merger."""
        pull = issue.pull
        assert pull is not None
        out = self._issue_common(repo, issue, viewer)
        merge_base = (
            pull.merge_base or repo.git.merge_base(base_sha, head_sha) or base_sha
        )
        changes = repo.git.diff(merge_base, head_sha)
        mergeable = (
            not pull.merged
            and not checking
            and not is_draft(issue.title)
            and repo.git.mergeable(base_sha, head_sha)
        )
        repo_json = repo_json or self.repo(repo, viewer)
        head_live = repo.git.tip(pull.head_branch) is not None
        out.update(
            draft=is_draft(issue.title),
            review_comments=0,
            requested_reviewers=[],
            requested_reviewers_teams=[],
            diff_url=f"{self.root}/{repo.full_name}/pulls/{issue.number}.diff",
            patch_url=f"{self.root}/{repo.full_name}/pulls/{issue.number}.patch",
            mergeable=mergeable,
            merged=pull.merged,
            merged_at=pull.merged_at,
            merge_commit_sha=pull.merge_commit_sha,
            # routers/api/v1/repo/pull.go:133-185 never calls LoadAttributes' merger
            # load for list items, so ToUser(nil) renders null (convert/pull.go:263-267).
            merged_by=None if listed else self.user(pull.merged_by, blind=True),
            allow_maintainer_edit=False,
            additions=sum(c.additions for c in changes),
            deletions=sum(c.deletions for c in changes),
            changed_files=len(changes),
            merge_base=merge_base,
            flow=0,
            base={
                "label": pull.base_branch,
                "ref": pull.base_branch,
                "sha": base_sha,
                "repo_id": repo.id,
                "repo": repo_json,
            },
            head={
                "label": pull.head_branch
                if head_live
                else f"refs/pull/{issue.number}/head",
                "ref": pull.head_branch
                if head_live
                else f"refs/pull/{issue.number}/head",
                "sha": head_sha,
                "repo_id": repo.id,
                "repo": repo_json,
            },
        )
        return out

    def comment(self, repo: Repo, comment: Comment, viewer: str | None) -> Json:
        issue = repo.issues[comment.issue]
        base = f"{self.root}/{repo.full_name}"
        return {
            "id": comment.id,
            "html_url": f"{base}/issues/{comment.issue}#issuecomment-{comment.id}",
            "pull_request_url": f"{base}/pulls/{comment.issue}"
            if issue.pull is not None
            else "",
            "issue_url": f"{base}/issues/{comment.issue}" if issue.pull is None else "",
            "user": self.user(comment.author, viewer),
            "original_author": "",
            "original_author_id": 0,
            "body": comment.body,
            "assets": [],
            "created_at": comment.created,
            "updated_at": comment.updated,
        }

    def review(
        self, repo: Repo, number: int, review: Review, viewer: str | None
    ) -> Json:
        base = f"{self.root}/{repo.full_name}/pulls/{number}"
        return {
            "id": review.id,
            "user": self.user(review.author, viewer),
            "team": None,
            "state": review.state,
            "body": review.body,
            "commit_id": review.commit_id,
            "stale": review.stale,
            "official": review.official,
            "dismissed": review.dismissed,
            "comments_count": 0,
            "submitted_at": review.submitted,
            "updated_at": review.submitted,
            "html_url": f"{base}#issuecomment-{review.id}",
            "pull_request_url": base,
        }

    def status(self, repo: Repo, status: CommitStatus, viewer: str | None) -> Json:
        return {
            "id": status.id,
            "status": status.state,
            "target_url": status.target_url,
            "description": status.description,
            "url": f"{self.root}/api/v1/repos/{repo.full_name}/statuses/{status.sha}",
            "context": status.context,
            "creator": self.user(status.creator, viewer),
            "created_at": status.created,
            "updated_at": status.created,
        }

    def team(self, team: Team) -> Json:
        return {
            "id": team.id,
            "name": team.name,
            "description": "",
            "organization": None,
            "includes_all_repositories": team.includes_all_repositories,
            "permission": team.permission.value,
            "units": ["repo.code", "repo.issues", "repo.pulls"],
            "units_map": {"repo.code": team.permission.value},
            "can_create_org_repo": False,
        }

    def protection(self, repo: Repo, rule: BranchProtection) -> Json:
        """Render *rule* as ``ToBranchProtection`` does (services/convert/convert.go:115-188).

        Whitelisted users are listed only while they are repository readers
        (``GetRepoReaders``: explicit access through a collaboration or a team,
        plus the owner when it is a user; database order, i.e. by id, owner
        last), teams only while they have access to the repository
        (``TeamsWithAccessToRepo``, by name). ``branch_name`` is the rule name
        unless the name is a glob (``IsRuleNameSpecial``), then empty.
        """
        out = dataclasses.asdict(rule)
        out["branch_name"] = (
            "" if rule_name_is_special(rule.rule_name) else rule.rule_name
        )
        readers = self._readers(repo)
        teams = [
            t.name
            for t in sorted(self.state.teams_of(repo.owner), key=lambda t: t.name)
            if t.permission.rank >= Access.READ.rank
            and (t.includes_all_repositories or repo.full_name in t.repos)
        ]
        for key in (
            "push_whitelist_usernames",
            "merge_whitelist_usernames",
            "approvals_whitelist_username",
        ):
            wanted = {name.lower() for name in out[key]}
            out[key] = [login for login in readers if login.lower() in wanted]
        for key in (
            "push_whitelist_teams",
            "merge_whitelist_teams",
            "approvals_whitelist_teams",
        ):
            wanted = {name.lower() for name in out[key]}
            out[key] = [name for name in teams if name.lower() in wanted]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    def _readers(self, repo: Repo) -> list[str]:
        """Return ``GetRepoReaders`` (models/perm/access/repo_permission.go:441-475)."""
        explicit = {
            login
            for login, access in repo.collaborators.items()
            if access.rank >= Access.READ.rank
        }
        for team in self.state.teams_of(repo.owner):
            if team.permission.rank >= Access.READ.rank and (
                team.includes_all_repositories or repo.full_name in team.repos
            ):
                explicit |= team.members
        users = [u for u in (self.state.user(login) for login in explicit) if u]
        logins = [u.login for u in sorted(users, key=lambda u: u.id)]
        owner = self.state.user(repo.owner)
        if owner is not None and not owner.is_org and owner.login not in logins:
            logins.append(owner.login)
        return logins


# gobwas/glob's syntax.Special characters (models/git/protected_branch.go:72-79).
_GLOB_SPECIALS = frozenset("*?[]{}\\")


def rule_name_is_special(name: str) -> bool:
    """Return whether a rule name is a glob (``IsRuleNameSpecial``)."""
    return any(c in _GLOB_SPECIALS for c in name)


WIP_PREFIXES = ("WIP:", "[WIP]")  # modules/setting/repository.go:231


def is_draft(title: str) -> bool:
    """Return whether *title* has a work-in-progress prefix (models/issues/pull.go:799)."""
    upper = title.upper()
    return any(upper.startswith(p) for p in WIP_PREFIXES)
