"""Users, org teams and membership, collaborator permission (privilege checks, API-NOTES §11)."""

from __future__ import annotations

from collections.abc import Callable

from testing.fake_forgejo.core import ApiError, ForgeCore, Reply, Request
from testing.fake_forgejo.model import Access, Team, User

Handler = Callable[[ForgeCore, Request], Reply]
_NOT_FOUND = "The target couldn't be found."


def _user_or_404(forge: ForgeCore, login: str) -> User:
    user = forge.state.user(login)
    if user is None or user.is_org:
        raise ApiError(404, f"user does not exist [name: {login}]")
    return user


def _viewer_is_admin(forge: ForgeCore, req: Request) -> bool:
    user = forge.state.user(req.viewer) if req.viewer else None
    return user is not None and user.is_admin


def _org_member(forge: ForgeCore, org: str, login: str | None) -> bool:
    return login is not None and any(
        login in t.members for t in forge.state.teams_of(org)
    )


def _org_owner(forge: ForgeCore, org: str, login: str | None) -> bool:
    return login is not None and any(
        login in t.members and t.permission is Access.OWNER
        for t in forge.state.teams_of(org)
    )


def _org(forge: ForgeCore, req: Request) -> str:
    org = forge.state.user(req.params["org"])
    if org is None or not org.is_org:
        raise ApiError(404, _NOT_FOUND)
    return org.login


def _team(forge: ForgeCore, req: Request) -> Team:
    team = forge.state.teams.get(int(req.params["id"]))
    if team is None:
        raise ApiError(404, _NOT_FOUND)
    return team


def current_user(forge: ForgeCore, req: Request) -> Reply:
    assert req.viewer is not None
    return Reply(200, forge.render.user(req.viewer, req.viewer))


def get_user(forge: ForgeCore, req: Request) -> Reply:
    return Reply(
        200, forge.render.user(_user_or_404(forge, req.params["username"]), req.viewer)
    )


def list_teams(forge: ForgeCore, req: Request) -> Reply:
    org = _org(forge, req)
    if not (_org_member(forge, org, req.viewer) or _viewer_is_admin(forge, req)):
        raise ApiError(403, "Must be an organization member")
    teams = sorted(forge.state.teams_of(org), key=lambda t: t.id)
    chunk, headers = forge.paginate(req, teams, link=False)
    return Reply(200, [forge.render.team(t) for t in chunk], headers=headers)


def _may_see_team(forge: ForgeCore, req: Request, team: Team) -> None:
    if not (
        (req.viewer is not None and req.viewer in team.members)
        or _org_owner(forge, team.org, req.viewer)
        or _viewer_is_admin(forge, req)
    ):
        raise ApiError(403, "Must be a team member")


def team_members(forge: ForgeCore, req: Request) -> Reply:
    team = _team(forge, req)
    _may_see_team(forge, req, team)
    chunk, headers = forge.paginate(req, sorted(team.members), link=False)
    return Reply(
        200, [forge.render.user(m, req.viewer) for m in chunk], headers=headers
    )


def team_member(forge: ForgeCore, req: Request) -> Reply:
    team = _team(forge, req)
    _may_see_team(forge, req, team)
    user = _user_or_404(forge, req.params["username"])
    if user.login not in team.members:
        raise ApiError(404, _NOT_FOUND)
    return Reply(200, forge.render.user(user, req.viewer))


def org_is_member(forge: ForgeCore, req: Request) -> Reply:
    org = _org(forge, req)
    if not (_org_member(forge, org, req.viewer) or _viewer_is_admin(forge, req)):
        location = f"{forge.root_url}/api/v1/orgs/{org}/public_members/{req.params['username']}"
        return Reply(303, headers=(("Location", location),))
    user = forge.state.user(req.params["username"])
    return Reply(
        204 if user is not None and _org_member(forge, org, user.login) else 404
    )


def org_permissions(forge: ForgeCore, req: Request) -> Reply:
    org = _org(forge, req)
    user = _user_or_404(forge, req.params["username"])
    if req.viewer != user.login and not _viewer_is_admin(forge, req):
        raise ApiError(403, "user can only see their own permissions")
    levels = [
        t.permission.rank for t in forge.state.teams_of(org) if user.login in t.members
    ]
    best = max(levels, default=Access.NONE.rank)
    return Reply(
        200,
        {
            "is_owner": best >= Access.OWNER.rank,
            "is_admin": best >= Access.ADMIN.rank,
            "can_write": best >= Access.WRITE.rank,
            "can_read": best >= Access.READ.rank,
            "can_create_repository": best >= Access.ADMIN.rank,
        },
    )


def collaborator_permission(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    user = _user_or_404(forge, req.params["collaborator"])
    if (
        req.viewer != user.login
        and forge.state.access(repo, req.viewer).rank < Access.ADMIN.rank
    ):
        raise ApiError(
            403,
            "Only admins can query all permissions, repo admins can query all repo permissions",
        )
    access = forge.state.access(repo, user.login)
    return Reply(
        200,
        {
            "permission": access.value,
            "role_name": access.value,
            "user": forge.render.user(user, req.viewer),
        },
    )


def check_collaborator(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    user = forge.state.user(req.params["collaborator"])
    if user is None:
        raise ApiError(422, f"user does not exist [name: {req.params['collaborator']}]")
    return Reply(204 if user.login in repo.collaborators else 404)


def repo_teams(forge: ForgeCore, req: Request) -> Reply:
    repo = forge.find_repo(req)
    teams = [
        t
        for t in forge.state.teams_of(repo.owner)
        if t.includes_all_repositories or repo.full_name in t.repos
    ]
    return Reply(200, [forge.render.team(t) for t in sorted(teams, key=lambda t: t.id)])


HANDLERS: dict[str, Handler] = {
    "userGetCurrent": current_user,
    "userGet": get_user,
    "orgListTeams": list_teams,
    "orgListTeamMembers": team_members,
    "orgListTeamMember": team_member,
    "orgIsMember": org_is_member,
    "orgGetUserPermissions": org_permissions,
    "repoGetRepoPermissions": collaborator_permission,
    "repoCheckCollaborator": check_collaborator,
    "repoListTeams": repo_teams,
}
