"""docs/json.md is true: every --json output of request, init, approve, reject, hold, release,
status, dispatcher run/check-config and demo, success and failure, validates against its schema.

The schemas are read from the docs by ``doc_schemas`` (one fenced ``json`` block
with an ``$id`` per section, ``urn:`` and the output's ``schema`` name). When a shared loader exists (tests/cli/jsondoc.py),
``doc_schemas`` and ``check`` are the two functions to point at it.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from opsvault.cli import main
from opsvault.cli.init import create_ops_repo
from opsvault.git.base import Identity
from opsvault.git.local import Pygit2OpsRepo

DOC = Path(__file__).parents[2] / "docs" / "json.md"
BLOCK = re.compile(r"^```json\n(.*?)^```$", re.MULTILINE | re.DOTALL)
AGENT = Identity("dev-agent", "dev-agent@localhost")
NOOP = b'formula = "noop"\ncontext = "test"\n'
HOOK = (
    b'formula = "http-hook"\ncontext = "deploy"\nsecrets = ["HOOK_TOKEN"]\n'
    b'[params]\nurl = "https://deploy.example.org/hook"\n'
)
# Output schema names that share one documented schema.
SAME_AS = {"opsvault.release/1": "opsvault.hold/1"}


@cache
def doc_schemas() -> dict[str, dict[str, Any]]:
    """Every JSON Schema of docs/json.md by its ``$id``."""
    found: dict[str, dict[str, Any]] = {}
    for text in BLOCK.findall(DOC.read_text()):
        schema = json.loads(text)
        if isinstance(schema, dict) and "$id" in schema:
            Draft202012Validator.check_schema(schema)
            found[schema["$id"].removeprefix("urn:")] = schema
    return found


def check(data: dict[str, Any]) -> None:
    """Validate one envelope against the schema its ``schema`` names."""
    schemas = doc_schemas()
    name = SAME_AS.get(data["schema"], data["schema"])
    assert name in schemas, f"docs/json.md has no schema {name!r}"
    registry: Registry[Any] = Registry().with_resources(
        (s["$id"], Resource.from_contents(s)) for s in schemas.values()
    )
    Draft202012Validator(schemas[name], registry=registry).validate(data)


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


def test_every_command_of_these_has_a_schema_in_the_docs() -> None:
    mine = {
        "opsvault.init/1", "opsvault.request/1", "opsvault.approve/1",
        "opsvault.reject/1", "opsvault.hold/1", "opsvault.status/1",
        "opsvault.dispatcher.check-config/1", "opsvault.dispatcher.run/1",
        "opsvault.demo/1", "opsvault.failure/1",
    }  # fmt: skip
    assert mine <= set(doc_schemas())
    text = DOC.read_text()
    for command in ("request", "init", "approve", "reject", "hold", "status",
                    "dispatcher run", "dispatcher check-config", "demo"):  # fmt: skip
        assert f"\n## vault {command}\n" in text, command


def test_the_schemas_are_not_vacuous() -> None:
    from jsonschema import ValidationError

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
        with pytest.raises(ValidationError):
            check(broken)
