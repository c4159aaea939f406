"""Freeze windows as an ops repo meets them: `vault policy check` reports a bad one; adding one is high."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from opsvault.app import open_repo
from opsvault.changes import classify_ref_change
from opsvault.cli import cli
from opsvault.vault.tier import Tier
from tests.cli.conftest import branch_with

FREEZE = """
[[freeze]]
name = "year-end"
start = 2026-12-24T00:00:00Z
end = 2027-01-04T08:00:00Z
exempt = ["noop"]
"""


def _policy(ops: Path) -> Path:
    return ops / "vault" / "policy.toml"


def test_policy_check_reports_a_bad_freeze_with_file_field_and_fix(ops: Path) -> None:
    _policy(ops).write_text(
        _policy(ops).read_text()
        + FREEZE.replace("2026-12-24T00:00:00Z", '"fri 18:00"').replace(
            'exempt = ["noop"]', 'exempt = ["noop"]\ntime_zone = "Mars/Olympus"'
        )
    )
    result = CliRunner().invoke(cli, ["policy", "check", "--ops", str(ops)])
    assert result.exit_code == 1, result.output
    assert (
        "vault/policy.toml: $.freeze[0].start: expected a date-time with an offset"
        in result.output
    )
    assert "for a weekly window add every = 'week'" in result.output
    assert "vault/policy.toml: $.freeze[0].time_zone: only for a weekly window" in (
        result.output
    )
    assert "Traceback" not in result.output


def test_policy_check_warns_of_an_exemption_naming_no_formula(ops: Path) -> None:
    _policy(ops).write_text(
        _policy(ops).read_text() + FREEZE.replace('["noop"]', '["nope"]')
    )
    result = CliRunner().invoke(cli, ["policy", "check", "--ops", str(ops)])
    assert result.exit_code == 0, result.output
    assert "$.freeze[0].exempt: no formula 'nope' exists" in result.output


def test_a_valid_freeze_passes_policy_check(ops: Path) -> None:
    _policy(ops).write_text(_policy(ops).read_text() + FREEZE)
    result = CliRunner().invoke(cli, ["policy", "check", "--ops", str(ops)])
    assert result.exit_code == 0, result.output


def test_adding_or_lifting_a_freeze_is_high_and_admin_only(ops: Path) -> None:
    """A freeze edit is a policy edit: high, protected (admins only), never merged by the dispatcher."""
    added = _policy(ops).read_text() + FREEZE
    branch_with(ops, "vault/freeze", {"vault/policy.toml": added.encode()})
    verdict = classify_ref_change(open_repo(ops), "main", "vault/freeze").verdict
    assert verdict.tier is Tier.HIGH
    assert verdict.protected
    assert not verdict.refused
    # Lifting one (a branch off a main that has it) is judged the same way.
    branch_with(ops, "main", {"vault/policy.toml": added.encode()})
    lifted = added.replace(FREEZE, "")
    branch_with(ops, "vault/thaw", {"vault/policy.toml": lifted.encode()})
    verdict = classify_ref_change(open_repo(ops), "main", "vault/thaw").verdict
    assert verdict.tier is Tier.HIGH and verdict.protected


def test_vault_status_says_frozen_until_in_text_and_json(ops: Path) -> None:
    import json

    forever = FREEZE.replace("2026-12-24T00:00:00Z", "2000-01-01T00:00:00Z").replace(
        "2027-01-04T08:00:00Z", "2100-01-01T00:00:00Z"
    )
    _policy(ops).write_text(_policy(ops).read_text() + forever)
    branch_with(ops, "main", {"vault/policy.toml": _policy(ops).read_bytes()})
    result = CliRunner().invoke(cli, ["status", "--ops", str(ops)])
    assert result.exit_code == 0, result.output
    assert (
        "FROZEN: frozen until 2100-01-01T00:00:00Z (year-end); nothing is merged "
        "by the dispatcher or fired but noop"
    ) in result.output
    result = CliRunner().invoke(cli, ["status", "--ops", str(ops), "--json"])
    data = json.loads(result.output)
    assert data["frozen"] == {
        "names": ["year-end"],
        "until": "2100-01-01T00:00:00Z",
        "exempt": ["noop"],
        "text": "frozen until 2100-01-01T00:00:00Z (year-end)",
    }
    _policy(ops).write_text(_policy(ops).read_text().replace(forever, ""))
    branch_with(ops, "main", {"vault/policy.toml": _policy(ops).read_bytes()})
    data = json.loads(
        CliRunner().invoke(cli, ["status", "--ops", str(ops), "--json"]).output
    )
    assert data["frozen"] is None
