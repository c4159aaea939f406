from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from opsvault._resources import data_dir
from opsvault.dispatcher.runner import SubprocessRunner
from opsvault.dispatcher.secrets import EnvSecrets
from opsvault.vault.placeholders import KNOWN_NAMES, PARAM_PREFIX, placeholders_in
from tests.conftest import init_repo
from tests.steps.support import FormulaRequest, load_formula

FORMULAS = sorted(p.stem for p in Path(data_dir("formulas")).glob("*.toml"))
TOP_LEVEL = {
    "name", "description", "blast_radius", "idempotent", "timeout", "locks",
    "params", "secrets", "steps",
}  # fmt: skip
PARAM_KEYS = {"type", "pattern", "required", "default", "description"}


def test_the_built_in_formulas_are_shipped() -> None:
    assert {"noop", "http-hook", "git-make"} <= set(FORMULAS)


@pytest.mark.parametrize("name", FORMULAS)
def test_formula_uses_only_the_documented_format(name: str) -> None:
    data = load_formula(name)
    assert set(data) <= TOP_LEVEL
    assert data["name"] == name
    assert data["blast_radius"] in {"low", "medium", "high"}
    assert isinstance(data["idempotent"], bool)
    assert re.fullmatch(r"[1-9][0-9]*[smhd]", data["timeout"])
    for spec in data.get("params", {}).values():
        assert set(spec) <= PARAM_KEYS
        assert spec["type"] in {"string", "integer", "boolean", "array"}
        if "pattern" in spec:
            re.compile(spec["pattern"])
            if "default" in spec:
                assert re.fullmatch(spec["pattern"], spec["default"])
    declared = {PARAM_PREFIX + p for p in data.get("params", {})}
    for index, step in enumerate(data["steps"]):
        assert set(step) == {"name", "run"}
        used = placeholders_in(step["run"], name, f"$.steps[{index}].run")
        assert used <= declared | KNOWN_NAMES
    assert placeholders_in(data.get("locks", []), name, "$.locks") <= declared


def test_noop_runs_and_prints_the_action_id(
    formula_request: FormulaRequest, tmp_path: Path
) -> None:
    runner = SubprocessRunner(EnvSecrets({}), workspace_root=tmp_path)
    result = runner.execute(formula_request("noop", {}))
    assert (result.outcome, result.reason) == ("succeeded", "ok")
    assert "noop: noop-test-1: hello from opsvault\n" in result.output_tail


MAKEFILE = """\
build:
\t@echo "building $$(cat VERSION) in $$(basename $$PWD)"
\t@test -z "$$LEAK" || echo "leaked $$LEAK"

broken:
\t@echo "about to fail"; exit 4
"""


@pytest.fixture
def source_repo(tmp_path: Path) -> tuple[str, str]:
    repo = init_repo(tmp_path / "src", {"Makefile": MAKEFILE, "VERSION": "1.0\n"})
    return f"file://{tmp_path / 'src'}", str(repo.head.target)


@pytest.mark.parametrize("ref", ["main", "commit"])
def test_git_make_builds_the_target_at_the_ref(
    formula_request: FormulaRequest,
    source_repo: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    ref: str,
) -> None:
    monkeypatch.setenv("LEAK", "parent-env")
    url, commit = source_repo
    params = {"repo": url, "ref": commit if ref == "commit" else ref, "target": "build"}
    spec = load_formula("git-make")["params"]
    for key, value in params.items():
        assert re.fullmatch(spec[key]["pattern"], value), key
    workspaces = tmp_path / "ws"
    workspaces.mkdir()
    runner = SubprocessRunner(EnvSecrets({}), workspace_root=workspaces)

    result = runner.execute(formula_request("git-make", params))

    assert (result.outcome, result.reason, result.exit_code) == (
        "succeeded",
        "ok",
        0,
    ), result.output_tail
    assert "building 1.0 in checkout" in result.output_tail
    assert "leaked" not in result.output_tail
    assert list(workspaces.iterdir()) == []


def test_git_make_reports_the_failing_target(
    formula_request: FormulaRequest, source_repo: tuple[str, str], tmp_path: Path
) -> None:
    url, _ = source_repo
    runner = SubprocessRunner(EnvSecrets({}), workspace_root=tmp_path)
    result = runner.execute(
        formula_request("git-make", {"repo": url, "ref": "main", "target": "broken"})
    )
    assert (result.outcome, result.reason, result.failed_step) == (
        "failed",
        "exit-nonzero",
        "make",
    )
    assert result.exit_code == 2  # make's own status when a recipe fails
    assert "about to fail" in result.output_tail


def test_git_make_unknown_ref_fails_at_fetch(
    formula_request: FormulaRequest, source_repo: tuple[str, str], tmp_path: Path
) -> None:
    url, _ = source_repo
    runner = SubprocessRunner(EnvSecrets({}), workspace_root=tmp_path)
    result = runner.execute(
        formula_request(
            "git-make", {"repo": url, "ref": "no-such-branch", "target": "build"}
        )
    )
    assert (result.outcome, result.failed_step) == ("failed", "fetch")


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("repo", "file:///tmp/../etc"),
        ("repo", "--upload-pack=evil"),
        ("repo", "ssh://host/repo"),
        ("repo", "https://user@host/repo"),
        ("ref", "-x"),
        ("ref", "main..evil"),
        ("target", "CC=evil"),
        ("target", "-j"),
        ("target", "a b"),
    ],
)
def test_git_make_patterns_refuse_option_and_path_tricks(
    param: str, value: str
) -> None:
    pattern = tomllib.loads((Path(data_dir("formulas")) / "git-make.toml").read_text())
    assert not re.fullmatch(pattern["params"][param]["pattern"], value)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://h/x",
        "https://user:pw@h/x",
        "https://h/x#frag",
        "https://h/x y",
        "-https://h",
    ],
)
def test_http_hook_url_pattern_is_strict(url: str) -> None:
    assert not re.fullmatch(load_formula("http-hook")["params"]["url"]["pattern"], url)
