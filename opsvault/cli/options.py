"""Shared CLI options and output helpers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from opsvault.errors import ConfigError
from opsvault.layout import POLICY

F = TypeVar("F", bound=Callable[..., Any])


def json_option(f: F) -> F:
    """``--json``: one envelope on stdout on every path (opsvault/cli/envelope.py)."""
    from opsvault.cli.envelope import remember_json

    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        is_eager=True,
        callback=remember_json,
        help="Print one machine-readable JSON object (docs/json.md), errors included.",
    )(f)


def ops_option(f: F) -> F:
    return click.option(
        "--ops",
        "ops",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="The ops repo (a directory holding vault/policy.toml). Default: found upward from the current directory.",
    )(f)


def resolve_ops(ops: Path | None) -> Path:
    """Return the ops repo root: *ops* if given, else the nearest one above the current directory."""
    from opsvault.snapshot import find_ops_root

    if ops is not None:
        if not (ops / POLICY).is_file():
            raise ConfigError(
                str(ops),
                "not an ops repo (no vault/policy.toml)",
                "create one with `vault init DIR`",
            )
        return ops
    found = find_ops_root(Path.cwd())
    if found is None:
        raise ConfigError(
            str(Path.cwd()),
            "not inside an ops repo (no vault/policy.toml here or above)",
            "pass --ops DIR",
        )
    return found


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def shown(text: str) -> str:
    """Return proposer-chosen *text* safe for a terminal: control characters escaped."""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        return repr(text)
    return text
