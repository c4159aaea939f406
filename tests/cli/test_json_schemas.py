"""docs/json.md is true: every --json output of request, init, approve, reject, hold, release,
status, dispatcher run/check-config and demo, success and failure, validates against its schema.

The schemas are read by the shared loader (tests/cli/jsondoc.py): one section
``## vault <command>`` per command, its failures the envelope's ``failure``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from opsvault.cli import main
from opsvault.cli.init import create_ops_repo
from opsvault.git.base import Identity
from opsvault.git.pygit2_repo import Pygit2OpsRepo
from tests.cli.jsondoc import DOC, assert_matches_doc, schemas

AGENT = Identity("dev-agent", "dev-agent@localhost")
NOOP = b'formula = "noop"\ncontext = "test"\n'
HOOK = (
    b'formula = "http-hook"\ncontext = "deploy"\nsecrets = ["HOOK_TOKEN"]\n'
    b'[params]\nurl = "https://deploy.example.org/hook"\n'
)
# The commands of this file, by the output's schema name; release shares hold's section.
COMMANDS = {
    "opsvault.init/1": "init",
    "opsvault.request/1": "request",
    "opsvault.approve/1": "approve",
    "opsvault.reject/1": "reject",
    "opsvault.hold/1": "hold",
    "opsvault.release/1": "hold",
    "opsvault.status/1": "status",
    "opsvault.dispatcher.run/1": "dispatcher run",
    "opsvault.dispatcher.check-config/1": "dispatcher check-config",
    "opsvault.demo/1": "demo",
}


def check(data: dict[str, Any]) -> None:
    """Validate one envelope against the docs/json.md section of the command it names."""
    assert data.get("schema") in COMMANDS, data.get("schema")
    assert_matches_doc(COMMANDS[data["schema"]], data)


def vault(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    """Run the console script's ``main``; return the exit status and its one JSON object."""
    try:
        code = main([*args, "--json"])
    except SystemExit as stopped:
        code = stopped.code
    code = 0 if code is None else code  # sys.exit(None), as the console script does
    out = capsys.readouterr().out
    data = json.loads(out)  # exactly one document: anything else fails here
    assert isinstance(data, dict)
    check(data)
    assert isinstance(code, int)
    assert data["ok"] is (code == 0), (code, data)
    if not data["ok"] and "error" in data:
        assert data["error"]["exit_code"] == code
    return code, data


@pytest.fixture
def ops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    create_ops_repo(tmp_path / "ops", when=0)
    monkeypatch.delenv("OPSVAULT_FORGE_OPERATOR", raising=False)
    monkeypatch.setenv("USER", "alice")
    return tmp_path / "ops"


def propose(ops: Path, branch: str, files: dict[str, bytes | None]) -> None:
    repo = Pygit2OpsRepo.open(ops)
    commit = repo.commit_files(repo.resolve("main"), files, branch, AGENT, when=0)
    repo.update_ref(f"refs/heads/{branch}", commit, None)


def test_init(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert vault(capsys, "init", str(tmp_path / "a"))[0] == 0
    code, data = vault(capsys, "init", str(tmp_path / "a"))
    assert code == 78 and data["error"]["code"] == "config"
    code, data = vault(capsys, "init", str(tmp_path / "b"), "--branch", "vault/x")
    assert code == 2 and data["error"]["code"] == "usage"


def test_request(capsys: pytest.CaptureFixture[str], ops: Path) -> None:
    where = ["--ops", str(ops)]
    assert vault(capsys, "request", "noop", "--context", "x", *where)[0] == 0
    code, data = vault(capsys, "request", "noop", "--context", " ", *where)
    assert code == 2 and data["error"]["code"] == "usage"
    code, data = vault(
        capsys, "request", "http-hook", "--param", "url=ftp://x", "--context", "x",
        "--secret", "HOOK_TOKEN", *where,
    )  # fmt: skip
    assert code == 1 and data["error"]["code"] == "invalid-action"
    assert data["error"]["problems"]


def test_approve(capsys: pytest.CaptureFixture[str], ops: Path) -> None:
    propose(ops, "vault/noop-1", {"vault/actions/noop-1.toml": NOOP})
    propose(ops, "vault/hook-1", {"vault/actions/hook-1.toml": HOOK})
    where = ["--ops", str(ops)]
    code, data = vault(capsys, "approve", "noop-1", *where)
    assert code == 0 and data["approved"] is True
    code, data = vault(capsys, "approve", "hook-1", "--as", "dev-agent", *where)
    assert code == 1 and data["approved"] is False and data["problems"]
    code, data = vault(capsys, "approve", "nope-1", *where)
    assert code == 1 and data["error"]["code"] == "error"


def test_reject_hold_release(capsys: pytest.CaptureFixture[str], ops: Path) -> None:
    propose(ops, "vault/noop-1", {"vault/actions/noop-1.toml": NOOP})
    propose(ops, "vault/hook-1", {"vault/actions/hook-1.toml": HOOK})
    where = ["--ops", str(ops)]
    assert vault(capsys, "hold", "hook-1", "--as", "bob", *where)[0] == 0
    assert vault(capsys, "release", "hook-1", "--as", "bob", *where)[0] == 0
    code, data = vault(capsys, "hold", "nope-1", *where)
    assert code == 1 and "error" in data
    code, data = vault(capsys, "reject", "noop-1", "--reason", "no", *where)
    assert code == 0 and data["standing"] == "approver"
    code, data = vault(capsys, "reject", "hook-1", "--reason", " ", *where)
    assert code == 2 and data["error"]["code"] == "usage"
    code, data = vault(capsys, "release", "noop-1", *where)  # closed now
    assert code == 1 and "closed without merge" in data["error"]["message"]


def test_status(capsys: pytest.CaptureFixture[str], ops: Path, tmp_path: Path) -> None:
    propose(ops, "vault/noop-1", {"vault/actions/noop-1.toml": NOOP})
    code, data = vault(capsys, "status", "--ops", str(ops))
    assert code == 0 and data["proposals"][0]["branch"] == "vault/noop-1"
    assert data["base"] == Pygit2OpsRepo.open(ops).resolve("main")
    code, data = vault(capsys, "status", "--ops", str(ops), "--worktree")
    assert code == 0 and data["base"] is None
    code, data = vault(capsys, "status", "--ops", str(tmp_path))
    assert code == 78 and data["error"]["code"] == "config"


def test_dispatcher(
    capsys: pytest.CaptureFixture[str], ops: Path, tmp_path: Path
) -> None:
    propose(ops, "vault/noop-1", {"vault/actions/noop-1.toml": NOOP})
    config = tmp_path / "dispatcher.toml"
    config.write_text(
        f'[forge]\npath = "{ops}"\n[runner]\nsandbox = "off"\n'
        f'[dispatcher]\nstate_dir = "{tmp_path / "state"}"\n'
    )
    code, data = vault(capsys, "dispatcher", "check-config", "--config", str(config))
    assert code == 0 and data["settings"]["forge"]["path"] == str(ops)
    code, data = vault(capsys, "dispatcher", "run", "--once", "--config", str(config))
    assert code == 0 and data["merges"] == 1
    assert data["pulls"] == {"1": "vault/noop-1"}
    bad = tmp_path / "bad.toml"
    bad.write_text('[forge]\npath = "/nonexistent/ops"\n')
    for command in ("check-config", "run"):
        code, data = vault(capsys, "dispatcher", command, "--config", str(bad))
        assert code == 78 and data["error"]["code"] == "config"


def test_demo(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, data = vault(capsys, "demo", "--dir", str(tmp_path / "demo"), "--once")
    assert code == 0 and data["ticks"] and data["proposals"]


def test_every_command_of_these_has_a_section_in_the_docs() -> None:
    assert {f"vault {c}" for c in COMMANDS.values()} <= set(schemas())
    text = DOC.read_text()
    for command in set(COMMANDS.values()):
        assert f"\n## vault {command}\n" in text, command


def test_the_schemas_are_not_vacuous() -> None:
    good = {
        "schema": "opsvault.request/1",
        "ok": True,
        "id": "a-1",
        "path": "p",
        "tier": "low",
    }
    check(good)
    for broken in (
        {k: v for k, v in good.items() if k != "tier"},  # a key missing
        {**good, "tier": "extreme"},  # a value out of range
        {"schema": "opsvault.request/1", "ok": False},  # a failure without its error
        {**good, "schema": "opsvault.status/1"},  # another command's output
    ):
        with pytest.raises(AssertionError):
            check(broken)
