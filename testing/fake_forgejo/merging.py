"""Every way a PR of the fake becomes merged, and who Forgejo then says merged it.

- ``merge_now``: a merge through the API (services/pull/merge.go); merger = doer.
- a scheduled auto-merge (``merge_when_checks_succeed``): it runs later, when a
  ``success`` status or an approval arrives, at whatever the head is then (no
  pin); merger = whoever scheduled it (services/automerge/automerge.go:206-231).
- ``mark_merged`` ("manually-merged"): any commit already on the base; nothing
  but the merge permission is checked; merged_at = that commit's author time
  (services/pull/merge_manual.go:23-86).
- ``detect_manual_merges``: with the repository's ``autodetect_manual_merge``,
  a PR whose head reached the base by a push is marked merged; the merger is
  the user whose e-mail is the merge commit's **author** e-mail -- a value the
  committer chooses -- else the repository owner (merge_manual.go:89-132).
"""

from __future__ import annotations

import fnmatch
import re
import subprocess
from datetime import datetime, timedelta, timezone

from testing.fake_forgejo.core import ApiError, ForgeCore
from testing.fake_forgejo.model import (
    Access,
    BranchProtection,
    Issue,
    PullInfo,
    Repo,
    Review,
    iso,
)
from testing.fake_forgejo.protection import matching, split_patterns

_CLOSING = re.compile(r"(?i)\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\s+#(\d+)")


def protection_problem(
    forge: ForgeCore, repo: Repo, pull: PullInfo, head: str, rule: BranchProtection
) -> str | None:
    """Return why *rule* blocks merging *pull* at *head* (CheckPullBranchProtections), or None."""
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
    if base is not None and protected_files(repo, rule, base, head):
        return "Changed protected files"
    return None


def protected_files(
    repo: Repo, rule: BranchProtection, base: str, head: str
) -> list[str]:
    patterns = split_patterns(rule.protected_file_patterns)
    if not patterns:
        return []
    merge_base = repo.git.merge_base(base, head) or base
    return matching((c.filename for c in repo.git.diff(merge_base, head)), patterns)


def may_override(
    forge: ForgeCore, repo: Repo, login: str, rule: BranchProtection
) -> bool:
    """Return whether *login* may use ``force_merge`` (site admin, or repo admin without apply_to_admins)."""
    user = forge.state.user(login)
    if user is None:
        return False
    repo_admin = forge.state.access(repo, login).rank >= Access.ADMIN.rank
    return user.is_admin or (repo_admin and not rule.apply_to_admins)


def merge_now(
    forge: ForgeCore,
    repo: Repo,
    issue: Issue,
    doer: str,
    head: str,
    style: str,
    *,
    title: str = "",
    extra: str = "",
) -> str:
    """Build the merge commit of *head* into the base as *doer* and mark the PR merged."""
    pull = issue.pull
    assert pull is not None
    base = repo.git.tip(pull.base_branch)
    assert base is not None
    message = (title or f"Merge pull request '{issue.title}' (#{issue.number})") + (
        "\n\n" + extra if extra else ""
    )
    with repo.git.lock:
        pull.merge_base = repo.git.merge_base(base, head)
        try:
            sha = repo.git.merge(
                pull.base_branch,
                head,
                message,
                forge.signature(doer),
                squash=style == "squash",
            )
        except ValueError as exc:
            raise ApiError(409, str(exc)) from exc
    _set_merged(forge, repo, issue, doer, sha, forge.now())
    # The merge moved the base: every other open PR on it is queued for a new
    # check now (services/pull/pull.go:355-372), not when someone next reads it.
    tips = repo.git.branch_tips()
    for other in repo.issues.values():
        if other.pull is not None and other.pull.base_branch == pull.base_branch:
            forge.sync_pull(repo, other, tips)
    return sha


def _set_merged(
    forge: ForgeCore, repo: Repo, issue: Issue, merger: str, sha: str, when: str
) -> None:
    pull = issue.pull
    assert pull is not None
    pull.merged, pull.merged_by, pull.merge_commit_sha = True, merger, sha
    pull.auto_merge = None
    issue.state = "closed"
    pull.merged_at = when
    issue.closed_at = issue.updated = forge.now()
    for number in _CLOSING.findall(issue.body):
        target = repo.issues.get(int(number))
        if target is not None and target.pull is None and target.state == "open":
            target.state, target.closed_at, target.updated = "closed", when, when


def _author_time(repo: Repo, sha: str) -> str:
    author = repo.git.commit_info(sha).author
    zone = timezone(timedelta(minutes=author.offset))
    return iso(datetime.fromtimestamp(author.time, zone))


def mark_merged(
    forge: ForgeCore, repo: Repo, issue: Issue, doer: str, commit: str
) -> None:
    """Do=manually-merged: any full commit id already on the base branch is accepted."""
    pull = issue.pull
    assert pull is not None
    base = repo.git.tip(pull.base_branch)
    known = repo.git.resolve(commit) if len(commit) == 40 else None
    if (
        base is None
        or known is None
        or not (known == base or repo.git.merge_base(known, base) == known)
    ):
        raise ApiError(409, "Wrong commit ID")
    _set_merged(forge, repo, issue, doer, known, _author_time(repo, known))


def run_auto_merges(forge: ForgeCore, repo: Repo, head: str | None = None) -> None:
    """Merge the scheduled PRs (of *head*, or all) whose checks now pass, at their current head."""
    for issue in list(repo.issues.values()):
        pull = issue.pull
        if pull is None or pull.auto_merge is None or issue.state != "open":
            continue
        live, base = forge.sync_pull(repo, issue)
        if head is not None and live != head:
            continue
        doer, style = pull.auto_merge
        rule = repo.protection_for(pull.base_branch)
        if forge.is_checking(issue) or not repo.git.mergeable(base, live):
            continue
        if not forge.state.can_merge(repo, doer, rule):
            continue
        if rule is not None and protection_problem(forge, repo, pull, live, rule):
            continue
        merge_now(forge, repo, issue, doer, live, style)


def detect_manual_merges(forge: ForgeCore, repo: Repo) -> None:
    """Mark open PRs whose head is already on their base as merged (AutodetectManualMerge)."""
    if not repo.autodetect_manual_merge:
        return
    for issue in list(repo.issues.values()):
        pull = issue.pull
        if pull is None or pull.merged or issue.state != "open":
            continue
        head = repo.git.ref(f"refs/pull/{issue.number}/head") or pull.head_sha
        base = repo.git.tip(pull.base_branch)
        if not head or base is None or repo.git.merge_base(head, base) != head:
            continue
        merges = subprocess.run(
            [
                "git",
                "rev-list",
                "--ancestry-path",
                "--merges",
                "--reverse",
                f"{head}..{base}",
            ],
            cwd=repo.git.path,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        sha = merges[0] if merges else head  # fast-forwarded: the PR's last commit
        email = repo.git.commit_info(sha).author.email.lower()
        merger = next(
            (
                u.login
                for u in forge.state.users.values()
                if not u.is_org and u.email.lower() == email
            ),
            repo.owner,
        )
        _set_merged(forge, repo, issue, merger, sha, _author_time(repo, sha))
