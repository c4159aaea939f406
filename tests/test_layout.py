"""The ops-repo layout lives in one module, and the base branch is a setting, not ``main``."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import pygit2
import pytest

from opsvault import layout
from opsvault.app import build_app, open_local
from opsvault.config import InvalidConfigError, load_settings
from opsvault.dispatcher.notify import RecordingNotifier
from opsvault.dispatcher.runner import RecordingRunner
from opsvault.dispatcher.tick import tick
from opsvault.errors import InvalidRequestError
from opsvault.git.base import Identity
from opsvault.git.pygit2_repo import Pygit2OpsRepo
from tests.dispatcher.harness import NOOP, template_files

WHEN = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)


def test_paths_come_from_one_place() -> None:
    assert layout.action_path("a-1") == "vault/actions/a-1.toml"
    assert layout.claim_path("a-1") == "vault/running/a-1.claim.json"
    assert layout.archive_dir("succeeded", WHEN) == "vault/fired/2026/03"
    assert layout.archive_dir("expired", WHEN) == "vault/rejected/2026/03"
    assert layout.archive_paths(
        "rejected", layout.pull_record_stem(7, "a-1"), WHEN
    ) == (
        "vault/rejected/2026/03/pr-7/a-1.toml",
        "vault/rejected/2026/03/pr-7/a-1.result.json",
    )
    assert layout.proposal_branch("a-1") == "vault/a-1"
    with pytest.raises(InvalidRequestError):
        layout.proposal_branch("../a")


def _trunk_repo(ops: Path) -> Pygit2OpsRepo:
    """An ops repo from the template whose only branch is ``trunk``."""
    raw = pygit2.init_repository(str(ops), initial_head="trunk")
    signature = pygit2.Signature("init", "init@localhost", 0, 0)
    for name, content in template_files().items():
        target = ops / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)
    raw.index.add_all()
    raw.index.write()
    raw.create_commit(
        "HEAD", signature, signature, "initial", raw.index.write_tree(), []
    )
    return Pygit2OpsRepo.open(ops)


def test_a_local_tick_runs_end_to_end_on_a_base_branch_not_named_main(
    tmp_path: Path,
) -> None:
    ops = tmp_path / "ops"
    repo = _trunk_repo(ops)
    config = tmp_path / "dispatcher.toml"
    config.write_text(
        f'[forge]\npath = "{ops}"\noperator = "alice"\nbranch = "trunk"\n'
        f'[dispatcher]\nidentity = "vault-bot"\nstate_dir = "{tmp_path / "state"}"\n'
    )
    app = build_app(load_settings({}, config), {})
    runner = RecordingRunner()
    app.runner, app.notifier = runner, RecordingNotifier()
    assert app.mainline.branch == "trunk"

    proposal = repo.commit_files(
        repo.resolve("refs/heads/trunk"),
        {layout.action_path("noop-1"): NOOP.format(msg="hi").encode()},
        "propose noop-1",
        Identity("dev-bot", "dev-bot@localhost"),
        when=0,
    )
    repo.update_ref(layout.branch_ref(layout.proposal_branch("noop-1")), proposal, None)
    [pr] = open_local(repo, "dev-bot", branch="trunk").fetch_pull_requests()
    assert pr.base_ref == "trunk"

    for _ in range(2):  # merge the low-tier proposal, then fire it
        report = tick(app, datetime.now(UTC))
        assert report.ok, report
    assert [r.action_id for r in runner.requests] == ["noop-1"]
    trunk = repo.resolve("refs/heads/trunk")
    fired = [p for p in repo.list_files(trunk, layout.FIRED) if p.endswith(".json")]
    assert len(fired) == 1 and fired[0].endswith("/noop-1.result.json")
    assert layout.action_path("noop-1") not in repo.list_files(trunk, layout.ACTIONS)
    assert not any(b == "main" for b in repo.branches(""))  # nothing fell back to main


def test_the_tick_report_names_the_configured_base_branch(tmp_path: Path) -> None:
    ops = tmp_path / "ops"
    repo = _trunk_repo(ops)
    config = tmp_path / "dispatcher.toml"
    config.write_text(
        f'[forge]\npath = "{ops}"\noperator = "alice"\nbranch = "trunk"\n'
        f'[dispatcher]\nidentity = "vault-bot"\nstate_dir = "{tmp_path / "state"}"\n'
    )
    app = build_app(load_settings({}, config), {})
    app.runner, app.notifier = RecordingRunner(), RecordingNotifier()
    repo.update_ref(
        "refs/heads/trunk",
        repo.commit_files(
            repo.resolve("refs/heads/trunk"),
            {layout.HALT: b"halted by hand\n"},
            "halt",
            Identity("alice", "alice@localhost"),
            when=0,
        ),
        repo.resolve("refs/heads/trunk"),
    )
    report = tick(app, datetime.now(UTC))
    [decision] = report.decisions
    assert (decision.subject, decision.event) == ("trunk", "halted")
    assert "on trunk" in decision.detail and "main" not in decision.detail


def test_a_proposal_branch_cannot_be_the_base_branch(tmp_path: Path) -> None:
    ops = tmp_path / "ops"
    _trunk_repo(ops)
    config = tmp_path / "dispatcher.toml"
    config.write_text(f'[forge]\npath = "{ops}"\nbranch = "vault/x"\n')
    with pytest.raises(InvalidConfigError) as caught:
        load_settings({}, config)
    assert "proposal branch" in str(caught.value)


LAYOUT_LITERALS = (
    "vault/actions",
    "vault/running",
    "vault/fired",
    "vault/rejected",
    "vault/HALT",
    "vault/policy.toml",
    "vault/formulas",
    "vault/policy-tests",
    "prerequisites.md",
)


def _docstrings(tree: ast.AST) -> set[int]:
    found: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                found.add(id(value))
    return found


def test_no_module_but_layout_spells_an_ops_repo_path() -> None:
    """Code (not docstrings, not messages naming layout constants) takes paths from layout."""
    package = Path(layout.__file__).parent
    offenders = []
    for source in sorted(package.rglob("*.py")):
        if source.name == "layout.py" or "testing" in source.parts:
            continue
        tree = ast.parse(source.read_text(), str(source))
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in skip
                and node.value.startswith(LAYOUT_LITERALS)
            ):
                offenders.append(f"{source.relative_to(package)}:{node.lineno}")
    assert offenders == []
