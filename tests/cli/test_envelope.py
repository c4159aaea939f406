"""The JSON envelope (opsvault/cli/envelope.py): one object on stdout on every path."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from opsvault.cli import main
from opsvault.cli.envelope import envelope, error_code, error_envelope, schema_name
from opsvault.cli.proposals import ApprovalRefused
from opsvault.config import InvalidConfigError
from opsvault.config_sources import SettingProblem
from opsvault.errors import (
    ConfigError,
    ForgeUnavailable,
    InvalidRequestError,
    PolicyError,
    Problem,
)


def run(
    capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, dict[str, object]]:
    """Run the CLI as the console script does (``sys.exit(main())``)."""
    try:
        code = main([*args])
    except SystemExit as stopped:
        code = stopped.code
    assert isinstance(code, int)
    return code, json.loads(capsys.readouterr().out)


def test_schema_names_the_subcommand_path() -> None:
    assert schema_name("policy check") == "opsvault.policy.check/1"
    assert schema_name("classify") == "opsvault.classify/1"


def test_error_codes_take_the_most_specific_class() -> None:
    assert error_code(PolicyError("p", [])) == "invalid-policy"
    assert error_code(InvalidRequestError("a", [])) == "invalid-action"
    assert error_code(ConfigError("c", "bad")) == "config"
    assert error_code(ForgeUnavailable("down")) == "forge-unavailable"
    assert error_code(click.UsageError("x")) == "usage"
    assert error_code(KeyError("bug")) == "internal"


def test_error_envelope_names_file_and_path() -> None:
    exc = InvalidRequestError("vault/actions/a.toml", [Problem("$.params.site", "bad")])
    data = error_envelope("validate", exc, 1)
    assert data["ok"] is False and data["schema"] == "opsvault.validate/1"
    error = data["error"]
    assert error["file"] == "vault/actions/a.toml"
    assert error["path"] == "$.params.site"
    assert error["problems"] == [{"path": "$.params.site", "message": "bad"}]
    assert error["exit_code"] == 1


def test_error_envelope_reads_typed_fields_only() -> None:
    """``where`` and the problems come from the error's type, never from a probe.

    ApprovalRefused's problems are lines of text, not ``Problem``s: the
    envelope names no path for them (a probe for ``problems`` used to fail on
    them); a config file's problems keep their JSON paths.
    """
    refused = error_envelope("approve", ApprovalRefused("vault/a", ["too low"]), 1)
    assert refused["error"]["file"] is None and refused["error"]["path"] is None
    assert "problems" not in refused["error"]
    bad = InvalidConfigError([SettingProblem("d.toml", "$.forge.url", "not a URL")])
    error = error_envelope("dispatcher check-config", bad, 78)["error"]
    assert (error["file"], error["path"]) == ("d.toml", "$.forge.url")
    assert error["problems"] == [{"path": "$.forge.url", "message": "not a URL"}]
    assert error_envelope("x", ForgeUnavailable("down"), 75)["error"]["file"] is None


def test_internal_errors_do_not_leak_their_text() -> None:
    data = error_envelope("status", RuntimeError("secret-ish detail"), 3)
    assert data["error"]["code"] == "internal"
    assert "secret-ish" not in data["error"]["message"]


def test_reserved_keys_cannot_be_overwritten() -> None:
    with pytest.raises(ValueError):
        envelope("x", {"ok": True}, ok=False)


def test_a_config_error_inside_a_command_is_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data = run(capsys, "policy", "check", "--json", "--ops", str(tmp_path))
    assert code == 78
    assert data["schema"] == "opsvault.policy.check/1"
    assert data["ok"] is False
    error = data["error"]
    assert isinstance(error, dict)
    assert error["code"] == "config" and error["file"] == str(tmp_path)


def test_a_usage_error_is_json_when_json_was_asked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, data = run(capsys, "classify", "--no-such-flag", "--json")
    assert code == 2
    assert data["schema"] == "opsvault.classify/1"
    error = data["error"]
    assert isinstance(error, dict) and error["code"] == "usage"


def test_without_json_errors_stay_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["policy", "check", "--ops", str(tmp_path)]) == 78
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "not an ops repo" in captured.err
