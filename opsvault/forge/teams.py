"""Team membership on Forgejo (API-NOTES §11): ``org/team`` names to ids, then members.

Policies name teams as ``org/team``; Forgejo asks for the team's id, which is
looked up once per client and remembered.
"""

from __future__ import annotations

from opsvault.errors import ForgeError, ForgeNotFound
from opsvault.forge.client_writes import seg
from opsvault.forge.session import Session, error_for


class Teams:
    """Answer "is this user in that team" over *session*."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._ids: dict[tuple[str, str], int] = {}

    def _team_id(self, org: str, team: str) -> int:
        key = (org, team.lower())
        if key not in self._ids:
            for item in self._session.paginate(f"/orgs/{seg(org)}/teams"):
                if (
                    isinstance(item, dict)
                    and str(item.get("name", "")).lower() == key[1]
                ):
                    self._ids[key] = int(item["id"])
                    break
            else:
                raise ForgeNotFound(
                    f"team {org + '/' + team!r}: no such team visible to the token"
                )
        return self._ids[key]

    def is_member(self, team: str, username: str) -> bool:
        org, sep, name = team.partition("/")
        if not sep or not org or not name:
            raise ForgeError(f"team {team!r}: expected the form 'org/team'")
        team_id = self._team_id(org, name)
        response = self._session.send(
            "GET", f"/teams/{team_id}/members/{seg(username)}"
        )
        if response.status_code == 404:
            return False
        if not response.is_success:
            raise error_for("GET", f"/teams/{team_id}/members/{username}", response)
        return True
