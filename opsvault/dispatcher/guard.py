"""The guard self-check: does the forge still enforce what the vault relies on? (ADR 0018)

The vault's own rules (classification, eligible mergers, pinned merges) hold
only while nobody can write ``main`` around them. On Forgejo that is the
branch protection rule of docs/forgejo.md; in local mode the ops repository's
guard hook and config (``git/guard_hook.py``). Both can be loosened later by
an admin, by accident or on purpose, without opsvault noticing. This module
reads them and names every difference from what the vault relies on, each
with its fix. ``judge_protection`` is pure; ``check_forgejo`` and
``check_local`` gather the facts. The dispatcher runs them at start and every
``dispatcher.guard_interval`` (``guard_job.py``), ``vault doctor`` on demand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from opsvault.dispatcher.identity import approver_listings
from opsvault.errors import ForgeNotFound, ForgeUnavailable, OpsvaultError
from opsvault.forge.logins import same_login
from opsvault.forge.types import BranchProtection
from opsvault.layout import FORMULAS, POLICY
from opsvault.policy.parse import parse_policy
from opsvault.ports import Forge

# docs/forgejo.md "Protecting main": the files that change only through a merged
# PR; tests/dispatcher/test_guard.py checks the page's rule against this list.
PRESCRIBED_PROTECTED = (
    POLICY,
    f"{FORMULAS}/**",
    ".forgejo/**",
    ".gitea/**",
    ".github/**",
    ".woodpecker/**",
    ".woodpecker.yml",
    ".woodpecker.yaml",
    ".gitlab-ci.yml",
    ".drone.yml",
)
DOCS = "docs/forgejo.md"


class GuardCheck(StrEnum):
    """What one check looks at (the ``check`` label of ``opsvault_guard_drift``)."""

    PROTECTION_RULE = "protection-rule"
    PUSH_WHITELIST = "push-whitelist"
    REQUIRED_APPROVALS = "required-approvals"
    STALE_APPROVALS = "stale-approvals"
    PROTECTED_FILES = "protected-files"
    IDENTITY_NOT_APPROVER = "identity-not-approver"
    LOCAL_HOOK = "local-hook"
    LOCAL_CONFIG = "local-config"
    LOCAL_PERMISSIONS = "local-permissions"
    UNCHECKED = "unchecked"  # the check could not run (forge down, no admin right)


FORGEJO_CHECKS = (
    GuardCheck.PROTECTION_RULE,
    GuardCheck.PUSH_WHITELIST,
    GuardCheck.REQUIRED_APPROVALS,
    GuardCheck.STALE_APPROVALS,
    GuardCheck.PROTECTED_FILES,
    GuardCheck.IDENTITY_NOT_APPROVER,
)
LOCAL_CHECKS = (
    GuardCheck.LOCAL_HOOK,
    GuardCheck.LOCAL_CONFIG,
    GuardCheck.LOCAL_PERMISSIONS,
    GuardCheck.IDENTITY_NOT_APPROVER,
)


class GuardPolicy(StrEnum):
    """``dispatcher.on_guard_drift``: what drift does to a running dispatcher."""

    HALT = "halt"
    ALERT = "alert"


@dataclass(frozen=True, slots=True)
class GuardFinding:
    check: GuardCheck
    problem: str
    fix: str

    def render(self) -> str:
        return f"{self.check}: {self.problem}; fix: {self.fix}"


@dataclass(frozen=True, slots=True)
class GuardReport:
    """One run of the guard self-check: what was checked, and every finding."""

    mode: str  # "forgejo" or "local"
    checked_at: datetime
    checks: tuple[GuardCheck, ...]
    findings: tuple[GuardFinding, ...] = ()

    @property
    def drift(self) -> bool:
        return bool(self.findings)

    def failing(self) -> frozenset[GuardCheck]:
        return frozenset(f.check for f in self.findings)


def _patterns(text: str) -> list[str]:
    return [p.strip() for p in text.lower().split(";") if p.strip()]


def judge_protection(
    rule: BranchProtection | None,
    branch: str,
    identity: str,
    *,
    required_approvals: int = 0,
    in_team: Callable[[str], bool] = lambda team: False,
) -> list[GuardFinding]:
    """Return how *rule* (the protection of *branch*) falls short of docs/forgejo.md.

    *in_team* says whether *identity* is in a team of the repository's owner
    (asked for the teams the rule trusts to approve or merge).
    """
    if rule is None:
        return [
            GuardFinding(
                GuardCheck.PROTECTION_RULE,
                f"no branch protection rule named {branch!r}: anyone with write "
                "access pushes straight to it",
                f'create the rule of {DOCS} "Protecting main" (POST …/branch_protections)',
            )
        ]
    found: list[GuardFinding] = []

    def push(problem: str, fix: str) -> None:
        found.append(GuardFinding(GuardCheck.PUSH_WHITELIST, problem, fix))

    if not (rule.enable_push and rule.enable_push_whitelist):
        push(
            "direct pushes are not limited to a whitelist"
            if rule.enable_push
            else "direct pushes are off: the dispatcher cannot record claims and results",
            f"set enable_push and enable_push_whitelist with push_whitelist_usernames = [{identity!r}]",
        )
    others = [u for u in rule.push_whitelist_usernames if not same_login(u, identity)]
    if others:
        push(
            f"the push whitelist also holds {', '.join(repr(u) for u in others)}: "
            "they can push past classification",
            f"remove them: push_whitelist_usernames = [{identity!r}]",
        )
    if rule.enable_push_whitelist and not any(
        same_login(u, identity) for u in rule.push_whitelist_usernames
    ):
        push(
            f"the push whitelist lacks the dispatcher {identity!r}",
            f"push_whitelist_usernames = [{identity!r}]",
        )
    if rule.push_whitelist_teams:
        push(
            f"teams may push: {', '.join(repr(t) for t in rule.push_whitelist_teams)}",
            "push_whitelist_teams = []",
        )
    if rule.push_whitelist_deploy_keys:
        push(
            "deploy keys with write access may push",
            "push_whitelist_deploy_keys = false",
        )
    if rule.unprotected_file_patterns.strip():
        push(
            f"unprotected_file_patterns {rule.unprotected_file_patterns!r} lets "
            "anyone with write access push those files",
            'unprotected_file_patterns = ""',
        )
    if rule.required_approvals < required_approvals:
        found.append(
            GuardFinding(
                GuardCheck.REQUIRED_APPROVALS,
                f"required_approvals is {rule.required_approvals}, "
                f"below dispatcher.guard_required_approvals = {required_approvals}",
                f"required_approvals = {required_approvals}",
            )
        )
    if not rule.dismiss_stale_approvals:
        found.append(
            GuardFinding(
                GuardCheck.STALE_APPROVALS,
                "stale approvals are not dismissed: an approval of one head "
                "counts for the next",
                "dismiss_stale_approvals = true",
            )
        )
    have = set(_patterns(rule.protected_file_patterns))
    missing = [p for p in PRESCRIBED_PROTECTED if p not in have]
    if missing:
        found.append(
            GuardFinding(
                GuardCheck.PROTECTED_FILES,
                f"protected_file_patterns lacks {';'.join(missing)}: "
                "a non-admin could merge a change to them",
                f"protected_file_patterns as in {DOCS}",
            )
        )
    for key, teams in (
        ("approvals_whitelist_teams", rule.approvals_whitelist_teams),
        ("merge_whitelist_teams", rule.merge_whitelist_teams),
    ):
        for team in teams:
            if in_team(team):
                found.append(
                    GuardFinding(
                        GuardCheck.IDENTITY_NOT_APPROVER,
                        f"the dispatcher {identity!r} is in team {team!r} of {key}",
                        f"take it out of {team!r}; name it by user instead ({DOCS})",
                    )
                )
    return found


def _policy_listings(forge: Forge, identity: str, branch: str) -> list[GuardFinding]:
    try:
        content = forge.fetch_file(POLICY, branch)
    except ForgeNotFound:
        return []
    policy = parse_policy(content, POLICY)
    return [
        GuardFinding(
            GuardCheck.IDENTITY_NOT_APPROVER,
            f"{POLICY} on {branch!r}: {listing}",
            "remove it there (the dispatcher is never an approver, docs/forgejo.md)",
        )
        for listing in approver_listings(identity, policy, forge)
    ]


def check_forgejo(
    forge: Forge,
    *,
    identity: str,
    branch: str,
    owner: str,
    required_approvals: int,
    now: datetime,
) -> GuardReport:
    """Read the base branch's protection and main's policy; return the findings.

    Raise ``ForgeUnavailable`` when the forge did not answer (check again
    later); any other failure to read (no admin right any more, a policy that
    does not parse) is itself a finding: what cannot be checked is not trusted.
    """
    try:
        rule = forge.fetch_branch_protection(branch)
        findings = judge_protection(
            rule,
            branch,
            identity,
            required_approvals=required_approvals,
            in_team=lambda team: forge.is_team_member(f"{owner}/{team}", identity),
        )
        findings += _policy_listings(forge, identity, branch)
    except ForgeUnavailable:
        raise  # not an answer: the caller checks again later
    except OpsvaultError as exc:
        findings = [_unchecked(exc)]
    return GuardReport("forgejo", now, FORGEJO_CHECKS, tuple(findings))


def check_local(
    forge: Forge, path: Path, *, identity: str, branch: str, now: datetime
) -> GuardReport:
    """Inspect the local ops repository at *path* and main's policy; return the findings."""
    from opsvault.git.guard_hook import inspect_local_repo

    kinds = {
        "hook": GuardCheck.LOCAL_HOOK,
        "config": GuardCheck.LOCAL_CONFIG,
        "permissions": GuardCheck.LOCAL_PERMISSIONS,
    }
    try:
        findings = [
            GuardFinding(kinds[p.check], p.problem, p.fix)
            for p in inspect_local_repo(path)
        ]
        findings += _policy_listings(forge, identity, branch)
    except OpsvaultError as exc:
        findings = [_unchecked(exc)]
    return GuardReport("local", now, LOCAL_CHECKS, tuple(findings))


def _unchecked(exc: OpsvaultError) -> GuardFinding:
    # Not knowing is not the same as "all is well": fail closed, as drift.
    return GuardFinding(
        GuardCheck.UNCHECKED,
        f"the guard check could not run: {exc}",
        "make the forge reachable and give the dispatcher's account repo admin "
        "(reading branch protection needs it, docs/forgejo.md)",
    )
