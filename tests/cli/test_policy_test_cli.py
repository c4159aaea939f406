"""`vault policy test` wiring: files one by one, --format, malformed cases, no cases."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

from click.testing import CliRunner

from opsvault.cli import cli


def policy_test(ops: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["policy", "test", "--ops", str(ops), *args])
    return result.exit_code, result.output


def cases(ops: Path) -> Path:
    return ops / "vault" / "policy-tests"


def test_case_files_can_be_given_one_by_one(ops: Path) -> None:
    one = cases(ops) / "noop-is-low.toml"
    two = cases(ops) / "destructive-hook-is-high.toml"
    code, out = policy_test(ops, str(one), str(two))
    assert code == 0, out
    assert out.splitlines()[-1] == "2 passed, 0 failed"
    assert "PASS vault/policy-tests/noop-is-low.toml" in out


def test_a_malformed_case_is_reported_and_the_others_still_run(ops: Path) -> None:
    (cases(ops) / "broken.toml").write_text('[expect]\ntier = "low"\n')
    code, out = policy_test(ops)
    assert code == 1
    assert "ERROR vault/policy-tests/broken.toml" in out
    assert out.count("PASS ") == 4
    assert out.splitlines()[-1] == "4 passed, 0 failed, 1 error(s)"


def test_junit_and_tap_formats(ops: Path) -> None:
    noop = cases(ops) / "noop-is-low.toml"
    noop.write_text(noop.read_text().replace('tier = "low"', 'tier = "medium"'))
    code, out = policy_test(ops, "--format", "junit")
    assert code == 1
    suite = ElementTree.fromstring(out.strip()).find("testsuite")
    assert suite is not None
    assert (suite.attrib["tests"], suite.attrib["failures"]) == ("4", "1")
    code, out = policy_test(ops, "--format", "tap")
    assert code == 1
    assert out.startswith("TAP version 14\n1..4\n")
    assert "not ok 3 - vault/policy-tests/noop-is-low.toml" in out


def test_json_is_the_envelope_and_format_json_the_same(ops: Path) -> None:
    code, out = policy_test(ops, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["ok"] is True and data["passed"] == 4 and data["errors"] == 0
    code, again = policy_test(ops, "--format", "json")
    assert json.loads(again) == data
    code, out = policy_test(ops, "--json", "--format", "tap")
    assert code == 2


def test_an_empty_cases_directory_is_a_clear_message_not_a_config_error(
    ops: Path,
) -> None:
    for case in cases(ops).glob("*.toml"):
        case.unlink()
    code, out = policy_test(ops)
    assert code == 1
    assert "no policy test cases (*.toml) here; add one" in out
    assert "Traceback" not in out
