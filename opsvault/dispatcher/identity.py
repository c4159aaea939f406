"""The dispatcher identity is never an approver (invariant I2): the start-up check.

``provenance.roles_of`` already gives the identity no admin or reviewer role,
so a policy or a forge team naming it cannot make its merges approve anything.
A configuration that names it anyway is still a mistake: the operator believes
the bot approves, and a forge that trusts the same teams for branch protection
lets the bot's token approve where policy meant a person. ``vault dispatcher
check-config`` and ``vault dispatcher run`` therefore refuse to start on it.
"""

from __future__ import annotations

from opsvault.errors import ConfigError, ForgeNotFound
from opsvault.layout import POLICY as POLICY_PATH
from opsvault.policy.model import Policy, Principals
from opsvault.policy.parse import parse_policy
from opsvault.ports import Forge

FIX = (
    "remove it there: the dispatcher merges low tier (and medium after a veto "
    "window) by itself, and on Forgejo it may merge through the branch "
    "protection's merge whitelist (docs/forgejo.md), never as an approver"
)


def approver_listings(identity: str, policy: Policy, forge: Forge) -> list[str]:
    """Return where *policy* makes *identity* an approver or a bot ([] when nowhere).

    Users are compared without regard to case, like forge logins; every team
    the policy names is asked for membership.
    """
    found: list[str] = []
    wanted = identity.lower()
    for section, principals in (
        ("admins", policy.admins),
        ("reviewers", policy.reviewers),
        ("bots", policy.bots),
    ):
        found.extend(_listed(section, principals, wanted, identity, forge))
    return found


def _listed(
    section: str, principals: Principals, wanted: str, identity: str, forge: Forge
) -> list[str]:
    found = [
        f"[{section}] users lists {user!r}"
        for user in sorted(principals.users)
        if user.lower() == wanted
    ]
    found.extend(
        f"[{section}] teams names {team!r}, and {identity!r} is a member"
        for team in sorted(principals.teams)
        if forge.is_team_member(team, identity)
    )
    return found


def verify_not_approver(forge: Forge, identity: str, branch: str) -> None:
    """Raise ConfigError (exit 78) when the policy on *branch* names *identity* as approver or bot.

    The policy is read through the forge, so the check needs no clone. An ops
    repo without a policy yet is left to the tick, which reports it.
    """
    try:
        content = forge.fetch_file(POLICY_PATH, branch)
    except ForgeNotFound:
        return
    policy = parse_policy(content, POLICY_PATH)
    listings = approver_listings(identity, policy, forge)
    if listings:
        raise ConfigError(
            f"dispatcher.identity {identity!r}",
            f"{POLICY_PATH} on {branch!r} makes it an approver or bot: "
            + "; ".join(listings),
            FIX,
        )
