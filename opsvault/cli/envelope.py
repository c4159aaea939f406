"""The one JSON envelope every `--json` output is printed in, success or failure.

Every command that takes ``--json`` prints exactly one JSON object on standard
output, on every path::

    {"schema": "opsvault.<command>/1", "ok": true, ...the command's own keys...}
    {"schema": "opsvault.<command>/1", "ok": false,
     "error": {"code": "invalid-action", "message": "...", "file": "...",
               "path": "$.params.site", "exit_code": 1, "problems": [...]}}

``<command>`` is the subcommand path joined with dots (``policy.check``), so a
script can tell outputs apart and docs/json.md can give each a JSON Schema. The
version after the slash changes only when a key is removed or changes meaning.

A command prints its success (or its own "not ok" verdict) with :func:`emit`;
errors raised as :class:`OpsvaultError` are printed by the CLI group through
:func:`error_envelope`, so no command needs its own error path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

from opsvault import errors

if TYPE_CHECKING:
    from opsvault.config_sources import SettingProblem

VERSION = 1
# Keys of ctx.meta (shared by every context of one invocation).
JSON_KEY = "opsvault.json"
COMMAND_KEY = "opsvault.command"

# The most specific class wins: error_code walks the exception's MRO.
_CODES: dict[type[BaseException], str] = {
    errors.ConfigError: "config",
    errors.PolicyError: "invalid-policy",
    errors.InvalidRequestError: "invalid-action",
    errors.InvalidFormulaError: "invalid-formula",
    errors.FileTooLargeError: "file-too-large",
    errors.InvalidFileError: "invalid-file",
    errors.PushRejected: "push-rejected",
    errors.GitError: "git",
    errors.ForgeAuthError: "forge-auth",
    errors.ForgeNotFound: "forge-not-found",
    errors.ForgeConflict: "forge-conflict",
    errors.ForgeUnavailable: "forge-unavailable",
    errors.ForgeError: "forge",
    errors.RunnerError: "runner",
    errors.OpsvaultError: "error",
    click.UsageError: "usage",
}


def schema_name(command: str) -> str:
    """``"policy check"`` -> ``"opsvault.policy.check/1"``."""
    return f"opsvault.{'.'.join(command.split()) or 'vault'}/{VERSION}"


def error_code(exc: BaseException) -> str:
    for cls in type(exc).__mro__:
        if cls in _CODES:
            return _CODES[cls]
    return "internal"


def error_envelope(command: str, exc: BaseException, exit_code: int) -> dict[str, Any]:
    """The failure envelope for *exc*, naming the file and JSON path where known."""
    # Imported only on failure, so that a cold start stays light.
    from opsvault.config import InvalidConfigError

    where = exc.where if isinstance(exc, errors.OpsvaultError) else None
    # The errors whose problems carry a JSON path (ApprovalRefused's are lines of text).
    problems: Sequence[errors.Problem | SettingProblem] = (
        exc.problems
        if isinstance(exc, errors.InvalidFileError | InvalidConfigError)
        else ()
    )
    message = (
        exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
    )
    if error_code(exc) == "internal":
        message = "internal error (a bug in opsvault); please report it"
    error: dict[str, Any] = {
        "code": error_code(exc),
        "message": message,
        "file": where,
        "path": problems[0].path if problems else None,
        "exit_code": exit_code,
    }
    if problems:
        error["problems"] = [{"path": p.path, "message": p.message} for p in problems]
    return {"schema": schema_name(command), "ok": False, "error": error}


def envelope(command: str, data: Mapping[str, Any], *, ok: bool) -> dict[str, Any]:
    clash = {"schema", "ok"} & set(data)
    if clash:
        raise ValueError(f"envelope keys are reserved: {sorted(clash)}")
    return {"schema": schema_name(command), "ok": ok, **data}


def current_command() -> str:
    """The subcommand path of the running invocation, without the program name."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return ""
    command = ctx.meta.get(COMMAND_KEY)
    if isinstance(command, str):
        return command
    return _subcommands(ctx)


def _subcommands(ctx: click.Context) -> str:
    """``"policy check"`` for ``vault policy check``, whatever the program is called.

    The program's name may be several words (``python -m pytest``), so the
    path is read from the contexts below the root, not split from
    ``ctx.command_path``.
    """
    names: list[str] = []
    while ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(reversed(names))


def dumps(data: Mapping[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=str)


def emit(data: Mapping[str, Any], *, ok: bool = True) -> None:
    """Print the running command's result in the envelope."""
    click.echo(dumps(envelope(current_command(), data, ok=ok)))


def remember_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    """Callback of ``--json``: lets the group print errors as JSON too."""
    if value:
        ctx.meta[JSON_KEY] = True
        ctx.meta[COMMAND_KEY] = _subcommands(ctx)
    return value


def wants_json(ctx: click.Context | None) -> bool:
    return bool(ctx is not None and ctx.meta.get(JSON_KEY))
