"""Action files (``vault/actions/<id>.toml``): the requests agents propose.

Everything in an action file is untrusted input. ``parse_action`` checks form
only (schema, id, size, types); ``policy.assess`` checks it against the formula
and the policy of the base branch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

from opsvault.errors import InvalidRequestError, Problem
from opsvault.vault.formula import ParamValue
from opsvault.vault.schema import parse_toml, schema_problems
from opsvault.vault.tier import Tier

ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{2,62}")


@dataclass(frozen=True, slots=True)
class Action:
    """A parsed action file (form checked only). Build it with ``parse_action``."""

    id: str
    context: str
    formula: str | None = None
    params: tuple[tuple[str, ParamValue], ...] = ()
    secrets: tuple[str, ...] = ()
    blast_radius: Tier | None = None
    expires: datetime | None = None
    requested_by: str | None = None
    unblocks: tuple[str, ...] = ()
    action_required: str | None = None  # the description of a human request

    @property
    def is_human_request(self) -> bool:
        return self.action_required is not None

    def param(self, name: str) -> ParamValue | None:
        for key, value in self.params:
            if key == name:
                return value
        return None


def id_problems(stem: str) -> list[str]:
    """Return what is wrong with *stem* as an action id (empty when valid)."""
    if ID_PATTERN.fullmatch(stem):
        return []
    return [
        f"{stem!r} is not a valid action id: use 3 to 63 characters of a-z, 0-9 and '-', "
        "starting with a letter or digit"
    ]


def action_id_for(path: str) -> str:
    """Return the id a file at *path* would have (its stem); no validation."""
    return PurePosixPath(path).name.removesuffix(".toml")


def parse_action(text: str | bytes, where: str) -> Action:
    """Return the Action in *text* from file *where*; raise InvalidRequestError with every problem.

    The id is the file stem; an explicit ``id`` must equal it. ``expires`` must
    be a TOML date-time with an offset.
    """
    data = parse_toml(text, where, InvalidRequestError)
    stem = action_id_for(where)
    problems = schema_problems(data, "action")
    if not where.endswith(".toml"):
        problems.append(
            Problem("$", f"action files end in '.toml'; rename to {stem}.toml")
        )
    problems.extend(Problem("$", message) for message in id_problems(stem))
    if "id" in data and data["id"] != stem:
        problems.append(
            Problem("$.id", f"{data['id']!r} must equal the file stem {stem!r}")
        )
    expires = data.get("expires")
    if expires is not None and not (
        isinstance(expires, datetime) and expires.tzinfo is not None
    ):
        problems.append(
            Problem(
                "$.expires",
                f"expected a date-time with an offset like 2026-12-01T00:00:00Z, got {expires!r}",
            )
        )
    for name, value in (
        data.get("params", {}).items() if isinstance(data.get("params"), dict) else ()
    ):
        if isinstance(value, str) and "\x00" in value:
            problems.append(Problem(f"$.params.{name}", "contains a NUL character"))
    if problems:
        raise InvalidRequestError(
            where, sorted(set(problems), key=lambda p: (p.path, p.message))
        )
    return _build(data, stem)


def _build(data: dict[str, Any], stem: str) -> Action:
    return Action(
        id=stem,
        context=data["context"],
        formula=data.get("formula"),
        params=tuple(
            (name, tuple(value) if isinstance(value, list) else value)
            for name, value in sorted(data.get("params", {}).items())
        ),
        secrets=tuple(data.get("secrets", [])),
        blast_radius=Tier.parse(data["blast_radius"])
        if "blast_radius" in data
        else None,
        expires=data.get("expires"),
        requested_by=data.get("requested_by"),
        unblocks=tuple(data.get("unblocks", [])),
        action_required=data["action_required"]["description"]
        if "action_required" in data
        else None,
    )
