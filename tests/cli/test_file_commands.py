"""`vault classify` and `vault validate` on files: the kind of each, directories, stdin (issue 12)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from opsvault._resources import data_dir
from opsvault.cli import cli

SAMPLES = data_dir("examples") / "proposals"
NOOP = (SAMPLES / "noop-smoke-20261121-1.toml").read_bytes()


def run(*args: str, stdin: bytes | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), input=stdin)
    return result.exit_code, result.output


def run_json(*args: str, stdin: bytes | None = None) -> tuple[int, dict[str, Any]]:
    code, out = run(*args, "--json", stdin=stdin)
    data = json.loads(out)
    assert isinstance(data, dict)
    return code, data


@pytest.mark.parametrize(
    "path",
    ["vault/policy.toml", "vault/policy-tests/noop-is-low.toml"],
)
def test_classify_refuses_a_file_that_is_not_an_action(ops: Path, path: str) -> None:
    code, out = run("classify", "--ops", str(ops), str(ops / path))
    assert code == 1
    assert f"{path}: not an action file" in out
    code, data = run_json("classify", "--ops", str(ops), str(ops / path))
    assert (code, data["ok"]) == (1, False)
    (entry,) = data["files"]
    assert entry["valid"] is False and entry["tier"] is None
    assert "not an action file" in entry["problems"][0]["message"]


def test_classify_refuses_a_formula_named_by_its_place(ops: Path) -> None:
    formula = ops / "vault" / "formulas" / "hello.toml"
    formula.write_text(
        'name = "hello"\ndescription = "d"\n[[steps]]\nname = "s"\nrun = ["true"]\n'
    )
    code, out = run("classify", str(formula))
    assert code == 1
    assert "vault/formulas/hello.toml: not an action file" in out


def test_classify_a_directory_classifies_every_action_below_it(ops: Path) -> None:
    nested = ops / "vault" / "actions" / "more"
    nested.mkdir()
    (nested / "noop-two-1.toml").write_bytes(NOOP)
    (ops / "vault" / "actions" / "noop-one-1.toml").write_bytes(NOOP)
    code, data = run_json("classify", str(ops / "vault"))
    assert code == 0, data
    # The policy and the policy tests below vault/ are not action files: left out.
    assert [(f["path"], f["tier"]) for f in data["files"]] == [
        ("vault/actions/more/noop-two-1.toml", "low"),
        ("vault/actions/noop-one-1.toml", "low"),
    ]


def test_classify_a_directory_without_actions_says_so(ops: Path) -> None:
    code, out = run("classify", str(ops / "vault" / "policy-tests"))
    assert code == 1
    assert "no action files below it; nothing checked" in out
    code, data = run_json("classify", str(ops / "vault" / "actions"))
    assert (code, data["ok"], data["error"]["code"]) == (1, False, "invalid-file")
    assert data["error"]["file"].endswith("vault/actions")


def test_classify_reads_an_action_from_standard_input(ops: Path) -> None:
    code, data = run_json(
        "classify", "--ops", str(ops), "-", stdin=NOOP + b'id = "piped-1"\n'
    )
    assert code == 0
    assert [(f["path"], f["tier"], f["valid"]) for f in data["files"]] == [
        ("<stdin>", "low", True)
    ]


def test_an_action_on_standard_input_needs_an_id(ops: Path) -> None:
    code, out = run("classify", "--ops", str(ops), "-", stdin=NOOP)
    assert code == 1
    assert "<stdin>: $.id: required when the action is read from standard input" in out


def test_validate_detects_a_policy_copy_outside_vault(
    ops: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "old-policy.toml"
    copy.write_bytes((ops / "vault" / "policy.toml").read_bytes())
    code, out = run("validate", str(copy))
    assert (code, out) == (0, f"{copy}: ok (policy)\n")
    copy.write_text(
        copy.read_text().replace('default_tier = "high"', 'default_tier = "low"')
    )
    code, out = run("validate", str(copy))
    assert code == 1
    assert f"{copy}: $.default_tier: 'low' is not one of" in out
    assert "context" not in out  # not checked as an action


def test_validate_kind_overrides_what_the_path_and_content_say(tmp_path: Path) -> None:
    odd = tmp_path / "odd.toml"
    odd.write_text('name = "odd"\n')
    code, data = run_json("validate", "--kind", "formula", str(odd))
    assert code == 1
    (entry,) = data["files"]
    assert entry["kind"] == "formula"
    assert "$.steps" in {p["path"] for p in entry["problems"]}


def test_validate_reads_standard_input(ops: Path) -> None:
    policy = (ops / "vault" / "policy.toml").read_bytes()
    code, out = run("validate", "-", stdin=policy)
    assert (code, out) == (0, "<stdin>: ok (policy)\n")
    code, out = run("validate", "--kind", "action", "-", stdin=policy)
    assert code == 1 and "$.context: required key is missing" in out


def test_validate_an_empty_directory_says_so(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out = run("validate", str(empty))
    assert code == 1
    assert f"{empty}: no *.toml files below it; nothing checked" in out


def test_validate_an_action_when_the_policy_is_broken_says_why(ops: Path) -> None:
    (ops / "vault" / "actions" / "noop-one-1.toml").write_bytes(NOOP)
    policy = ops / "vault" / "policy.toml"
    policy.write_text(policy.read_text().replace("schema = 1", "schema = 9"))
    code, data = run_json("validate", str(ops / "vault"))
    assert code == 1
    by_path = {f["path"]: f for f in data["files"]}
    assert by_path["vault/policy.toml"]["valid"] is False
    action = by_path["vault/actions/noop-one-1.toml"]
    assert action["valid"] is False
    assert "vault/policy.toml is invalid" in action["problems"][0]["message"]


@pytest.mark.parametrize(
    "content",
    [b"x = 1\n" * 400_000, b"a = " + b"[" * 5000 + b"]" * 5000, b"\xff\xfe"],
    ids=["too-large", "too-deep", "not-utf8"],
)
def test_hostile_standard_input_is_a_clear_error(ops: Path, content: bytes) -> None:
    for command in ("validate", "classify"):
        result = CliRunner().invoke(
            cli, [command, "--ops", str(ops), "-"], input=content
        )
        assert result.exit_code == 1, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert result.output.startswith("<stdin>")


def test_a_record_s_past_expiry_is_history_not_a_problem(ops: Path) -> None:
    text = NOOP + b"expires = 2020-01-01T00:00:00Z\n"
    fired = ops / "vault" / "fired" / "2020" / "01"
    fired.mkdir(parents=True)
    (fired / "noop-old-1.toml").write_bytes(text)
    (ops / "vault" / "actions" / "noop-new-1.toml").write_bytes(text)
    code, data = run_json(
        "validate", str(ops / "vault" / "fired"), str(ops / "vault" / "actions")
    )
    assert code == 1
    valid = {f["path"]: f["valid"] for f in data["files"]}
    assert valid == {
        "vault/fired/2020/01/noop-old-1.toml": True,
        "vault/actions/noop-new-1.toml": False,  # a proposal: already expired
    }
