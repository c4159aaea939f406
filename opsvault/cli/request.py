"""`vault request`: parse options, draft the action (``opsvault.drafting``), write or propose it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from opsvault.cli.envelope import emit
from opsvault.cli.options import json_option, ops_option, resolve_ops

if TYPE_CHECKING:
    from opsvault.ports import Forge
    from opsvault.vault.tier import Tier


@click.command()
@click.argument("formula")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A formula param; repeat for each (and for each item of an array param).",
)
@click.option(
    "--context", required=True, help="Why this is needed; shown to approvers."
)
@click.option(
    "--secret",
    "secrets",
    multiple=True,
    metavar="NAME",
    help="A secret the action needs (must be declared by the formula and allowed by policy).",
)
@click.option("--id", "action_id", help="Use this id instead of a generated one.")
@click.option(
    "--blast-radius",
    type=click.Choice(["low", "medium", "high"]),
    help="Raise the tier; it can never be lowered, so a value below the "
    "action's tier is refused (exit 2).",
)
@click.option(
    "--unblocks",
    multiple=True,
    metavar="REF",
    help="An issue this unblocks, '#12' or 'owner/repo#12'; repeatable.",
)
@click.option(
    "--requested-by",
    help="Who asks; informational (the PR author is authoritative). A local-mode "
    "--open-pr commits the proposal as this user (default: $USER).",
)
@click.option(
    "--open-pr",
    is_flag=True,
    help="Propose it: branch vault/<id> off main holding only the file, and a pull "
    "request on Forgejo; in local mode the branch is the proposal. "
    "Nothing is written to the working tree.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The opsvault configuration file naming the forge (with --open-pr).",
)
@ops_option
@json_option
def request(
    formula: str,
    params: tuple[str, ...],
    context: str,
    secrets: tuple[str, ...],
    action_id: str | None,
    blast_radius: str | None,
    unblocks: tuple[str, ...],
    requested_by: str | None,
    open_pr: bool,
    config_path: Path | None,
    ops: Path | None,
    as_json: bool,
) -> None:
    """Write a new, valid action file into vault/actions/ of the ops repo's working tree.

    The file is checked against the formula and the policy before it is
    written; nothing is written if it is invalid. The id is fresh
    (`<formula>-<yyyymmdd>-<n>`, never used in actions, running, fired or
    rejected). Commit it on a branch and open a pull request to propose it.

    With --open-pr the file goes straight to the forge instead: a branch
    `vault/<id>` off main holding only that file, and a pull request whose
    body carries the context, the tier and its reasons. The forge comes from
    the configuration (--config, OPSVAULT_* variables); without either it is
    local mode on this ops repo, where the branch (committed as
    --requested-by, else $USER) is the proposal. Running it again with the
    same --id and arguments reuses the branch and the pull request.

    \b
    Examples:
      vault request http-hook --param url=https://deploy.example/hook \\
        --context "publish the release notes" --secret HOOK_TOKEN
      vault request noop --context "smoke test" --id smoke-1 --open-pr --json
    """
    from opsvault.drafting import (
        DraftError,
        draft_action,
        formula_for,
        proposal_for,
        proposed_ids,
        typed_params,
    )
    from opsvault.snapshot import DirSnapshot, load_base_state, used_ids, writable_path

    if config_path is not None and not open_pr:
        raise click.UsageError("--config is used only with --open-pr")
    if not context.strip():
        raise click.BadParameter(
            "give a reason approvers can read (it may not be empty or blank)",
            param_hint="--context",
        )
    forge, base_branch, forge_root = (
        _open_forge(config_path, ops, requested_by) if open_pr else (None, "", None)
    )
    root = forge_root or resolve_ops(ops)
    snapshot = DirSnapshot(root)
    base = load_base_state(snapshot)
    try:
        typed = typed_params(formula_for(base, formula), params)
    except DraftError as exc:
        raise click.BadParameter(str(exc), param_hint=exc.option) from None
    now = datetime.now(UTC)
    taken = set(used_ids(snapshot))
    if forge is not None:
        from opsvault.app import close_forge

        click.get_current_context().call_on_close(lambda: close_forge(forge))
        if action_id is None:
            # A proposal not merged yet holds its id on its branch only.
            taken |= proposed_ids(forge.fetch_pull_requests())
    try:
        draft = draft_action(
            base,
            formula,
            typed,
            context=context,
            now=now,
            taken=taken,
            action_id=action_id,
            secrets=secrets,
            blast_radius=blast_radius,
            unblocks=unblocks,
            requested_by=requested_by,
        )
    except DraftError as exc:
        raise click.BadParameter(str(exc), param_hint=exc.option) from None
    tier = draft.classification.tier.label
    _check_blast_radius(blast_radius, draft.classification.tier)
    if forge is not None:
        pull = forge.open_proposal(proposal_for(draft, context, base_branch))
        if as_json:
            emit(
                {
                    "id": draft.id,
                    "path": draft.path,
                    "tier": tier,
                    "branch": pull.head_ref,
                    "pr": pull.number,
                    "url": pull.html_url,
                }
            )
        else:
            link = f": {pull.html_url}" if pull.html_url else ""
            click.echo(
                f"proposed {draft.path} (tier {tier}) in PR #{pull.number}{link}"
            )
        return
    target = writable_path(root, draft.path)  # never through a symlinked vault/ (I4)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("x", encoding="utf-8") as fh:  # never overwrite
        fh.write(draft.text)
    if as_json:
        emit({"id": draft.id, "path": draft.path, "tier": tier})
    else:
        click.echo(f"wrote {draft.path} (tier {tier})")


def _check_blast_radius(asked: str | None, tier: Tier) -> None:
    """Refuse a --blast-radius below the action's tier: it can only raise one.

    The field would be written, never used, and read by approvers as a claim
    about the action; a usage error says so before anything is written.
    """
    from opsvault.vault.tier import Tier

    if asked is None:
        return
    wanted = Tier.parse(asked)
    if wanted < tier:
        raise click.BadParameter(
            f"{asked!r} is below the tier this action has anyway ({tier.label}); "
            "a blast radius only raises a tier, never lowers it: leave the option "
            f"out, or give {tier.label} or higher",
            param_hint="--blast-radius",
        )


def _open_forge(
    config_path: Path | None, ops: Path | None, requested_by: str | None
) -> tuple[Forge, str, Path | None]:
    """Return the forge to propose on, its base branch, and (local mode) the ops repo.

    The forge comes from the configuration (file, OPSVAULT_* variables). With
    neither a file nor a forge variable it is local mode on the ops repo found
    as usual: the proposal is the branch ``vault/<id>`` of that repository.
    A local proposal is authored by ``--requested-by``, else ``$USER`` (in
    local mode the branch's author is the proposer, who may never approve it).
    A request needs only the forge API, so in Forgejo mode no clone of the
    ops repo is made (build_app would make one in the dispatcher's state directory).
    """
    import os

    from opsvault.app import open_forge, open_local
    from opsvault.config import ForgeKind, load_settings

    author = (requested_by or _login()).strip()
    configured = config_path is not None or any(
        os.environ.get(name) for name in ("OPSVAULT_FORGE_KIND", "OPSVAULT_FORGE_PATH")
    )
    if not configured:
        root = resolve_ops(ops)
        forge = open_local(root, _author(author))
        return forge, forge.base_branch, root
    settings = load_settings(os.environ, config_path)
    if settings.forge.kind is ForgeKind.LOCAL and settings.forge.path is not None:
        root = ops or settings.forge.path
        local = open_local(
            root,
            _author(author),
            operator=settings.forge.operator,
            branch=settings.forge.branch,
        )
        return local, local.base_branch, root
    return open_forge(settings), settings.forge.branch, None


def _login() -> str:
    """The user running the command: $USER, else the password database's name."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def _author(author: str) -> str:
    if not author:
        raise click.UsageError(
            "a local-mode proposal needs an author: pass --requested-by NAME"
        )
    return author
