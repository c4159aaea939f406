"""`vault validate`, `vault classify`, `vault request`, `vault formulas`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from opsvault.cli.options import echo_json, json_option, ops_option, resolve_ops, shown
from opsvault.errors import InvalidFileError, OpsvaultError, Problem

if TYPE_CHECKING:
    from opsvault.forge.types import Proposal
    from opsvault.ports import Forge


@dataclass(frozen=True, slots=True)
class FileReport:
    path: str
    kind: str  # action | formula | policy | policy-test
    problems: tuple[Problem, ...]
    classification: Any = None  # Classification for actions
    note: str = ""


def _expand(paths: tuple[Path, ...]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                sorted(p for p in path.rglob("*.toml") if ".git" not in p.parts)
            )
        elif path.is_file():
            files.append(path)
        else:
            raise click.BadParameter(f"{str(path)!r} does not exist", param_hint="PATH")
    return files


def _display(path: Path, root: Path | None) -> str:
    """Return *path* relative to the ops root when inside it, as errors name it."""
    if root is not None:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return path.as_posix()


def _kind(path: Path) -> str:
    if path.name == "policy.toml" and path.parent.name == "vault":
        return "policy"
    if path.parent.name == "formulas":
        return "formula"
    if path.parent.name == "policy-tests":
        return "policy-test"
    return "action"


def _check_file(
    path: Path, ops: Path | None, now: datetime, base: Any = None
) -> FileReport:
    from opsvault.policy.assess import assess_action
    from opsvault.policy.parse import parse_policy
    from opsvault.snapshot import DirSnapshot, load_base_state, read_bounded
    from opsvault.vault.formula import parse_formula
    from opsvault.vault.request import parse_action

    where = _display(path, ops)
    kind = _kind(path)
    try:
        content = read_bounded(path, where)
        if kind == "policy":
            parse_policy(content, where)
        elif kind == "formula":
            parse_formula(content, where)
        elif kind == "policy-test":
            from opsvault.policy.cases import parse_case

            parse_case(content, where)
        else:
            action = parse_action(content, where)
            if ops is None:
                return FileReport(
                    where, kind, (), note="form only: no ops repo to check against"
                )
            base = base or load_base_state(DirSnapshot(ops))
            assessment = assess_action(action, base.formulas, base.policy, now)
            return FileReport(
                where, kind, assessment.problems, assessment.classification
            )
    except InvalidFileError as exc:
        return FileReport(where, kind, exc.problems)
    return FileReport(where, kind, ())


def _base_for(root: Path | None) -> Any:
    """Return the base state of the ops repo at *root*, loaded once for a whole run."""
    from opsvault.snapshot import DirSnapshot, load_base_state

    return load_base_state(DirSnapshot(root)) if root is not None else None


def _ops_for(ops: Path | None, paths: list[Path]) -> Path | None:
    from opsvault.snapshot import find_ops_root

    if ops is not None:
        return resolve_ops(ops)
    for path in paths:
        found = find_ops_root(path.parent)
        if found is not None:
            return found
    return find_ops_root(Path.cwd())


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@ops_option
@json_option
def validate(paths: tuple[Path, ...], ops: Path | None, as_json: bool) -> None:
    """Validate action, formula, policy and policy-test files (or every *.toml below a directory).

    Action files are checked against the formulas and policy of the ops repo
    they sit in (or --ops): declared and typed params, secrets allowed for the
    formula, `expires` within the tier's deadline. Every problem is reported,
    as `file: $.json.path: message`. Exit 1 if any file is invalid.

    \b
    Examples:
      vault validate vault/actions/publish-site-20261121-1.toml
      vault validate vault/ --json
    """
    files = _expand(paths)
    root = _ops_for(ops, files)
    now = datetime.now(UTC)
    base = _base_for(root)
    reports = [_check_file(path, root, now, base) for path in files]
    if as_json:
        echo_json(
            {
                "ok": not any(r.problems for r in reports),
                "files": [
                    {
                        "path": r.path,
                        "kind": r.kind,
                        "valid": not r.problems,
                        "problems": [
                            {"path": p.path, "message": p.message} for p in r.problems
                        ],
                        "tier": r.classification.tier.label
                        if r.classification
                        else None,
                        "note": r.note,
                    }
                    for r in reports
                ],
            }
        )
    else:
        for r in reports:
            if r.problems:
                for p in r.problems:
                    click.echo(p.render(r.path))
            else:
                click.echo(f"{r.path}: ok ({r.kind}{'; ' + r.note if r.note else ''})")
    if any(r.problems for r in reports):
        raise SystemExit(1)


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@ops_option
@click.option(
    "--base",
    help="Classify a git change: the base ref (policy and formulas are read here).",
)
@click.option(
    "--head",
    help="Classify a git change: the head ref (the proposed files are read here).",
)
@click.option(
    "--explain", is_flag=True, help="Show every reason that contributed to each tier."
)
@json_option
def classify(
    paths: tuple[Path, ...],
    ops: Path | None,
    base: str | None,
    head: str | None,
    explain: bool,
    as_json: bool,
) -> None:
    """Print the blast-radius tier of action files, or of a whole git change.

    With PATHs: each action file is classified with the policy and formulas of
    the ops repo (--ops, default: the repo you are in). With --base and --head:
    the change HEAD brings relative to its merge base with BASE is classified
    exactly as the dispatcher classifies a pull request — policy and formulas
    from BASE, files from HEAD, built-in floors included.

    Exit 1 if anything is invalid (refused).

    \b
    Examples:
      vault classify vault/actions/rotate-key-1.toml --explain
      vault classify --ops . --base main --head vault/rotate-key-1 --json
    """
    from opsvault.report import change_verdict_data, classification_data, problems_data

    if (base is None) != (head is None):
        raise click.UsageError("--base and --head go together")
    if base is not None and head is not None:
        if paths:
            raise click.UsageError("give either PATHs or --base/--head, not both")
        verdict = _classify_change(resolve_ops(ops), base, head)
        if as_json:
            echo_json(change_verdict_data(verdict))
        else:
            flags = [
                f
                for f, on in (
                    ("refused", verdict.refused),
                    ("admin only", verdict.protected),
                )
                if on
            ]
            click.echo(
                f"change {base}..{head}: {verdict.tier.label}{' (' + ', '.join(flags) + ')' if flags else ''}"
            )
            for f in verdict.files:
                click.echo(
                    f"  {shown(f.path)} [{f.kind}]: {f.classification.tier.label}"
                )
                if explain:
                    for r in f.classification.reasons:
                        click.echo(f"    {shown(r.render())}")
                for p in f.problems:
                    click.echo(f"    {shown(p.render(f.path))}")
        if verdict.refused:
            raise SystemExit(1)
        return
    if not paths:
        raise click.UsageError("give action files to classify, or --base and --head")
    files = _expand(paths)
    root = resolve_ops(ops) if ops is not None else _ops_for(None, files)
    if root is None:
        raise click.UsageError("no ops repo found above the files; pass --ops DIR")
    now = datetime.now(UTC)
    base = _base_for(root)
    reports = [_check_file(path, root, now, base) for path in files]
    if as_json:
        echo_json(
            {
                "results": [
                    {
                        "path": r.path,
                        "refused": bool(r.problems),
                        "problems": problems_data(r.problems),
                        **(
                            classification_data(r.classification)
                            if r.classification
                            else {"tier": None, "reasons": []}
                        ),
                    }
                    for r in reports
                ]
            }
        )
    else:
        for r in reports:
            tier = r.classification.tier.label if r.classification else "invalid"
            click.echo(f"{r.path}: {tier}{' (refused)' if r.problems else ''}")
            if explain and r.classification:
                for reason in r.classification.reasons:
                    click.echo(f"  {reason.render()}")
            for p in r.problems:
                click.echo(f"  {p.render(r.path)}")
    if any(r.problems for r in reports):
        raise SystemExit(1)


def _classify_change(ops: Path, base: str, head: str) -> Any:
    from opsvault.changes import classify_ref_change
    from opsvault.git.local import Pygit2OpsRepo

    return classify_ref_change(Pygit2OpsRepo.open(ops), base, head).verdict


def _typed(spec: Any, raw: list[str], formula: str) -> Any:
    if spec.type == "array":
        return raw
    if len(raw) > 1:
        raise click.BadParameter(
            f"{spec.name!r} is not an array param of {formula!r}; give it once",
            param_hint="--param",
        )
    value = raw[0]
    if spec.type == "integer":
        try:
            return int(value)
        except ValueError:
            raise click.BadParameter(
                f"{spec.name}={value!r}: expected an integer", param_hint="--param"
            ) from None
    if spec.type == "boolean":
        if value not in ("true", "false"):
            raise click.BadParameter(
                f"{spec.name}={value!r}: expected true or false", param_hint="--param"
            )
        return value == "true"
    return value


def new_action_id(
    formula: str, today: datetime, taken: frozenset[str] | set[str]
) -> str:
    """Return a fresh id ``<formula>-<yyyymmdd>-<n>`` not in *taken*, within 63 characters."""
    stem = f"{formula[:48]}-{today:%Y%m%d}"
    n = 1
    while f"{stem}-{n}" in taken:
        n += 1
    return f"{stem}-{n}"


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
    help="Raise the tier (it can never be lowered).",
)
@click.option(
    "--unblocks",
    multiple=True,
    metavar="REF",
    help="An issue this unblocks, '#12' or 'owner/repo#12'; repeatable.",
)
@click.option(
    "--requested-by", help="Informational: who asks (the PR author is authoritative)."
)
@click.option(
    "--open-pr",
    is_flag=True,
    help="Propose it on the forge: branch vault/<id> off main and a pull request. "
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
    the configuration (--config, OPSVAULT_* variables). Running it again with
    the same --id and arguments reuses the branch and the pull request.

    \b
    Examples:
      vault request http-hook --param url=https://deploy.example/hook \\
        --context "publish the release notes" --secret HOOK_TOKEN
      vault request noop --context "smoke test" --id smoke-1 --open-pr --json
    """
    import tomlkit

    from opsvault.policy.assess import assess_action
    from opsvault.snapshot import DirSnapshot, load_base_state, used_ids, writable_path
    from opsvault.vault.request import id_problems, parse_action

    if config_path is not None and not open_pr:
        raise click.UsageError("--config is used only with --open-pr")
    root = resolve_ops(ops)
    snapshot = DirSnapshot(root)
    base = load_base_state(snapshot)
    spec_formula = base.formulas.get(formula)
    if spec_formula is None:
        raise click.BadParameter(
            f"unknown formula {formula!r}; see `vault formulas`", param_hint="FORMULA"
        )
    raw: dict[str, list[str]] = {}
    for item in params:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(
                f"{item!r} is not NAME=VALUE", param_hint="--param"
            )
        raw.setdefault(name, []).append(value)
    typed: dict[str, Any] = {}
    for name, values in raw.items():
        spec = spec_formula.param(name)
        typed[name] = _typed(spec, values, formula) if spec is not None else values[0]
    now = datetime.now(UTC)
    taken = set(used_ids(snapshot))
    forge = _open_forge(config_path) if open_pr else None
    if forge is not None:
        click.get_current_context().call_on_close(forge.close)
    if forge is not None and action_id is None:
        # A proposal not merged yet holds its id on its branch only.
        taken |= _proposed_ids(forge)
    new_id = action_id or new_action_id(formula, now, taken)
    bad_id = id_problems(new_id)
    if bad_id:  # before any path is built from it (security invariant I4)
        raise click.BadParameter(bad_id[0], param_hint="--id")
    if new_id in taken:
        raise OpsvaultError(
            f"vault/actions/{new_id}.toml: the id {new_id!r} is already used; pick another --id"
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
    if typed:
        doc["params"] = typed
    text = tomlkit.dumps(doc)
    where = f"vault/actions/{new_id}.toml"
    assessment = assess_action(
        parse_action(text, where), base.formulas, base.policy, now
    )
    if assessment.problems:
        raise InvalidFileError(where, assessment.problems)
    tier = assessment.classification.tier.label
    if forge is not None:
        pull = forge.open_proposal(
            _proposal(new_id, where, text, context, assessment.classification)
        )
        if as_json:
            echo_json(
                {
                    "id": new_id,
                    "path": where,
                    "tier": tier,
                    "branch": pull.head_ref,
                    "pr": pull.number,
                    "url": pull.html_url,
                }
            )
        else:
            link = f": {pull.html_url}" if pull.html_url else ""
            click.echo(f"proposed {where} (tier {tier}) in PR #{pull.number}{link}")
        return
    target = writable_path(root, where)  # never through a symlinked vault/ (I4)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("x", encoding="utf-8") as fh:  # never overwrite
        fh.write(text)
    if as_json:
        echo_json({"id": new_id, "path": where, "tier": tier})
    else:
        click.echo(f"wrote {where} (tier {tier})")


PROPOSAL_BRANCH_PREFIX = "vault/"
PROPOSAL_BASE = "main"


def _open_forge(config_path: Path | None) -> Forge:
    """Return the forge the configuration names (file, OPSVAULT_* variables).

    A request needs only the forge API, so in Forgejo mode no clone of the ops
    repo is made (build_app would make one in the dispatcher's state directory).
    """
    import os

    from opsvault.config import ForgeKind, build_app, load_settings

    settings = load_settings(os.environ, config_path)
    if settings.forge.kind is ForgeKind.FORGEJO and settings.forge.token is not None:
        from opsvault.forge.client import ForgejoClient

        owner, name = settings.forge.repo.split("/", 1)
        return ForgejoClient(settings.forge.url, owner, name, settings.forge.token)
    return build_app(settings, os.environ).forge


def _proposed_ids(forge: Forge) -> set[str]:
    return {
        pr.head_ref.removeprefix(PROPOSAL_BRANCH_PREFIX)
        for pr in forge.fetch_pull_requests()
        if pr.head_ref.startswith(PROPOSAL_BRANCH_PREFIX)
    }


def _proposal(
    action_id: str, path: str, text: str, context: str, classification: Any
) -> Proposal:
    """Return the proposal of one new action file; equal inputs give an equal proposal."""
    from opsvault.forge.types import Proposal

    reasons = "\n".join(f"- {r.render()}" for r in classification.reasons)
    body = (
        f"{context}\n\n"
        f"Proposes `{path}`.\n\n"
        f"Tier when requested: **{classification.tier.label}**\n\n"
        f"Reasons:\n{reasons or '- (none)'}\n\n"
        "The dispatcher classifies this change again against the policy on "
        f"`{PROPOSAL_BASE}`; its verdict is the one that counts.\n"
    )
    return Proposal(
        branch=f"{PROPOSAL_BRANCH_PREFIX}{action_id}",
        base=PROPOSAL_BASE,
        title=f"vault: {action_id} ({classification.tier.label})",
        body=body,
        message=f"vault: request {action_id}",
        files=((path, text.encode()),),
    )


@click.command()
@ops_option
@json_option
def formulas(ops: Path | None, as_json: bool) -> None:
    """List the formulas actions can name: built-in ones and the ops repo's own."""
    from opsvault.snapshot import (
        DirSnapshot,
        find_ops_root,
        load_builtin_formulas,
        load_formulas,
    )

    root = ops if ops is not None else find_ops_root(Path.cwd())
    found = (
        load_formulas(DirSnapshot(root))
        if root is not None
        else load_builtin_formulas()
    )
    builtin = load_builtin_formulas()
    rows = [
        {
            "name": f.name,
            "source": "built-in" if builtin.get(f.name) is f else "ops repo",
            "blast_radius": f.blast_radius.label if f.blast_radius else None,
            "params": [p.name for p in f.params],
            "secrets": list(f.secrets),
            "description": f.description,
        }
        for f in sorted(found.values(), key=lambda f: f.name)
    ]
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(
            f"{row['name']} ({row['source']}, {row['blast_radius'] or 'default tier'}): {row['description']}"
        )
