"""`vault formulas`: list the formulas actions can name."""

from __future__ import annotations

from pathlib import Path

import click

from opsvault.cli.options import echo_json, json_option, ops_option


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
