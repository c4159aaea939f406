"""`vault formulas`: list the formulas actions can name, with their tier under the policy."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from opsvault.cli.options import json_option, ops_option, resolve_ops, shown
from opsvault.errors import InvalidFileError
from opsvault.layout import POLICY

if TYPE_CHECKING:
    from opsvault.policy.model import Policy
    from opsvault.vault.formula import Formula, ParamSpec


@click.command()
@ops_option
@json_option
def formulas(ops: Path | None, as_json: bool) -> None:
    """List the formulas actions can name: built-in ones and the ops repo's own.

    Each shows its effective tier under the ops repo's policy (policy
    [formulas], else the formula's blast_radius, else default_tier; rules may
    still raise a given action), its params and secrets. An ops formula that
    does not parse is listed as an error (actions naming it are refused), and
    so is an invalid policy; either makes the exit status 1.
    """
    from opsvault.cli.envelope import emit
    from opsvault.policy.parse import parse_policy
    from opsvault.policy.verdict_data import problems_data
    from opsvault.snapshot import (
        DirSnapshot,
        find_ops_root,
        iter_local_formulas,
        load_builtin_formulas,
    )

    root = resolve_ops(ops) if ops is not None else find_ops_root(Path.cwd())
    builtin = load_builtin_formulas()
    found: dict[str, tuple[str, Formula]] = {
        name: (f"formulas/{name}.toml", f) for name, f in builtin.items()
    }
    invalid: list[tuple[str, InvalidFileError]] = []
    policy: Policy | None = None
    policy_data: dict[str, Any] | None = None
    if root is not None:
        snapshot = DirSnapshot(root)
        for path, formula in iter_local_formulas(snapshot):
            if isinstance(formula, InvalidFileError):
                invalid.append((path, formula))
            else:
                found[formula.name] = (path, formula)
        try:
            policy = parse_policy(snapshot.read_file(POLICY) or b"", POLICY)
            policy_data = {"path": POLICY, "valid": True, "problems": []}
        except InvalidFileError as exc:
            policy_data = {
                "path": POLICY,
                "valid": False,
                "problems": problems_data(exc.problems),
            }
    rows = [
        _row(path, formula, builtin.get(formula.name) is formula, policy)
        for path, formula in sorted(found.values(), key=lambda pf: pf[1].name)
    ]
    rows.extend(
        {
            "name": Path(path).stem,
            "path": path,
            "origin": "ops repo",
            "valid": False,
            "tier": None,
            "tier_reason": None,
            "blast_radius": None,
            "params": [],
            "secrets": [],
            "description": "",
            "problems": problems_data(exc.problems),
        }
        for path, exc in invalid
    )
    ok = not invalid and (policy_data is None or policy_data["valid"])
    if as_json:
        emit({"policy": policy_data, "formulas": rows}, ok=ok)
    else:
        _echo(rows, policy_data)
    if not ok:
        raise SystemExit(1)


def _row(
    path: str, formula: Formula, is_builtin: bool, policy: Policy | None
) -> dict[str, Any]:
    from opsvault.policy.action import formula_tier_reason

    reason = (
        formula_tier_reason(formula.name, formula, policy)
        if policy is not None
        else None
    )
    return {
        "name": formula.name,
        "path": path,
        "origin": "built-in" if is_builtin else "ops repo",
        "valid": True,
        "tier": reason.tier.label if reason else None,
        "tier_reason": reason.detail if reason else None,
        "blast_radius": formula.blast_radius.label if formula.blast_radius else None,
        "params": [_param(p) for p in formula.params],
        "secrets": list(formula.secrets),
        "description": formula.description,
        "problems": [],
    }


def _param(spec: ParamSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "type": spec.type,
        "required": spec.required,
        "default": list(spec.default)
        if isinstance(spec.default, tuple)
        else spec.default,
        "pattern": spec.pattern,
        "description": spec.description,
    }


def _echo(rows: list[dict[str, Any]], policy: dict[str, Any] | None) -> None:
    if policy is None:
        click.echo("no ops repo here: tiers under a policy unknown (pass --ops DIR)")
    elif not policy["valid"]:
        for p in policy["problems"]:
            click.echo(f"error: {shown(policy['path'])}: {p['path']}: {p['message']}")
        click.echo(f"error: {policy['path']} is invalid: tiers unknown")
    for row in rows:
        if not row["valid"]:
            for p in row["problems"]:
                click.echo(f"error: {shown(row['path'])}: {p['path']}: {p['message']}")
            continue
        own = f"; own blast_radius {row['blast_radius']}" if row["blast_radius"] else ""
        click.echo(
            f"{row['name']}: {row['tier'] or '?'} ({row['origin']}{own}): "
            f"{shown(row['description'])}"
        )
        for p in row["params"]:
            bits = [p["type"], "required" if p["required"] else "optional"]
            if p["default"] is not None:
                bits.append(f"default {p['default']!r}")
            if p["pattern"]:
                bits.append(f"pattern {p['pattern']!r}")
            click.echo(f"  param {p['name']} ({', '.join(bits)})")
        if row["secrets"]:
            click.echo(f"  secrets: {', '.join(row['secrets'])}")
