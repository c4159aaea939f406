"""Draft a new action request: its id, its file, its admission, and its proposal.

What ``vault request`` does apart from parsing options and printing: type the
``NAME=VALUE`` params against the formula, pick a fresh id, render the action
file, admit it against formulas and policy (``assess_action``), and build the
pull request that proposes it. No I/O here; the caller reads the base state
and the forge's open proposals and writes or pushes the result.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from opsvault.errors import InvalidRequestError, OpsvaultError
from opsvault.layout import PROPOSAL_PREFIX, action_path, proposal_branch

if TYPE_CHECKING:
    from opsvault.forge.types import Proposal, PullRequest
    from opsvault.policy.action import Classification
    from opsvault.policy.classify import BaseState
    from opsvault.vault.formula import Formula, ParamSpec


class DraftError(ValueError):
    """A bad request argument; *option* names it (``--param``, ``--id``, ``FORMULA``)."""

    def __init__(self, message: str, option: str) -> None:
        super().__init__(message)
        self.option = option


@dataclass(frozen=True, slots=True)
class Draft:
    id: str
    path: str  # vault/actions/<id>.toml
    text: str
    classification: Classification


def formula_for(base: BaseState, formula: str) -> Formula:
    """Return the formula *formula* of *base*; DraftError if there is none."""
    found = base.formulas.get(formula)
    if found is None:
        raise DraftError(
            f"unknown formula {formula!r}; see `vault formulas`", "FORMULA"
        )
    return found


def typed_params(spec: Formula, params: Sequence[str]) -> dict[str, Any]:
    """Return ``NAME=VALUE`` *params* typed as *spec* declares them (repeat: array items)."""
    raw: dict[str, list[str]] = {}
    for item in params:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise DraftError(f"{item!r} is not NAME=VALUE", "--param")
        raw.setdefault(name, []).append(value)
    typed: dict[str, Any] = {}
    for name, values in raw.items():
        param = spec.param(name)
        typed[name] = _typed(param, values, spec.name) if param else values[0]
    return typed


def _typed(spec: ParamSpec, raw: list[str], formula: str) -> Any:
    if spec.type == "array":
        return raw
    if len(raw) > 1:
        raise DraftError(
            f"{spec.name!r} is not an array param of {formula!r}; give it once",
            "--param",
        )
    value = raw[0]
    if spec.type == "integer":
        try:
            return int(value)
        except ValueError:
            raise DraftError(
                f"{spec.name}={value!r}: expected an integer", "--param"
            ) from None
    if spec.type == "boolean":
        if value not in ("true", "false"):
            raise DraftError(
                f"{spec.name}={value!r}: expected true or false", "--param"
            )
        return value == "true"
    return value


def new_action_id(formula: str, today: datetime, taken: Collection[str]) -> str:
    """Return a fresh id ``<formula>-<yyyymmdd>-<n>`` not in *taken*, within 63 characters."""
    stem = f"{formula[:48]}-{today:%Y%m%d}"
    n = 1
    while f"{stem}-{n}" in taken:
        n += 1
    return f"{stem}-{n}"


def proposed_ids(pulls: Sequence[PullRequest]) -> set[str]:
    """Return the ids open proposals hold on their ``vault/<id>`` branches."""
    return {
        pr.head_ref.removeprefix(PROPOSAL_PREFIX)
        for pr in pulls
        if pr.head_ref.startswith(PROPOSAL_PREFIX)
    }


def draft_action(
    base: BaseState,
    formula: str,
    params: dict[str, Any],
    *,
    context: str,
    now: datetime,
    taken: Collection[str],
    action_id: str | None = None,
    secrets: Sequence[str] = (),
    blast_radius: str | None = None,
    unblocks: Sequence[str] = (),
    requested_by: str | None = None,
) -> Draft:
    """Return the admitted action file of a request; raise if it is not admissible.

    DraftError for a bad id, OpsvaultError for an id already used,
    InvalidRequestError listing every problem admission found.
    """
    import tomlkit

    from opsvault.policy.assess import assess_action
    from opsvault.vault.request import id_problems, parse_action

    new_id = action_id or new_action_id(formula, now, taken)
    bad_id = id_problems(new_id)
    if bad_id:  # before any path is built from it (security invariant I4)
        raise DraftError(bad_id[0], "--id")
    if new_id in taken:
        raise OpsvaultError(
            f"{action_path(new_id)}: the id {new_id!r} is already used; pick another --id"
        )
    doc = tomlkit.document()
    doc["formula"] = formula
    doc["context"] = context
    if requested_by:
        doc["requested_by"] = requested_by
    if unblocks:
        doc["unblocks"] = list(unblocks)
    if secrets:
        doc["secrets"] = list(secrets)
    if blast_radius:
        doc["blast_radius"] = blast_radius
    if params:
        doc["params"] = params
    text = tomlkit.dumps(doc)
    where = action_path(new_id)
    assessment = assess_action(
        parse_action(text, where), base.formulas, base.policy, now
    )
    if assessment.problems:
        raise InvalidRequestError(where, assessment.problems)
    return Draft(new_id, where, text, assessment.classification)


def proposal_for(draft: Draft, context: str, base_branch: str) -> Proposal:
    """Return the proposal of one drafted action; equal inputs give an equal proposal."""
    from opsvault.forge.types import Proposal

    classification = draft.classification
    reasons = "\n".join(f"- {r.render()}" for r in classification.reasons)
    body = (
        f"{context}\n\n"
        f"Proposes `{draft.path}`.\n\n"
        f"Tier when requested: **{classification.tier.label}**\n\n"
        f"Reasons:\n{reasons or '- (none)'}\n\n"
        "The dispatcher classifies this change again against the policy on "
        f"`{base_branch}`; its verdict is the one that counts.\n"
    )
    return Proposal(
        branch=proposal_branch(draft.id),
        base=base_branch,
        title=f"vault: {draft.id} ({classification.tier.label})",
        body=body,
        message=f"vault: request {draft.id}",
        files=((draft.path, draft.text.encode()),),
    )
