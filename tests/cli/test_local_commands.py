"""`vault approve` and `vault reject` on a real local ops repo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from opsvault.cli import cli
from opsvault.cli.init import create_ops_repo
from opsvault.forge.local import LocalForge
from opsvault.forge.types import PullState
from opsvault.git.base import Identity
from opsvault.git.pygit2_repo import Pygit2OpsRepo

AGENT = Identity("dev-agent", "dev-agent@localhost")
NOOP = b'formula = "noop"\ncontext = "test"\n'


@pytest.fixture
def ops(tmp_path: Path) -> Path:
    create_ops_repo(tmp_path / "ops", when=0)
    return tmp_path / "ops"


@pytest.fixture
def repo(ops: Path) -> Pygit2OpsRepo:
    return Pygit2OpsRepo.open(ops)


def propose(
    repo: Pygit2OpsRepo,
    branch: str,
    files: dict[str, bytes | None],
    author: Identity = AGENT,
) -> str:
    commit = repo.commit_files(
        repo.resolve("main"), files, f"propose {branch}", author, when=0
    )
    repo.update_ref(f"refs/heads/{branch}", commit, None)
    return commit


def vault(ops: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--ops", str(ops)])


def test_admin_approves_a_high_change_and_it_is_merged_as_them(
    ops: Path, repo: Pygit2OpsRepo
) -> None:
    policy = repo.read_file("main", "vault/policy.toml") or b""
    head = propose(repo, "vault/tighten", {"vault/policy.toml": policy + b"\n"})
    result = vault(ops, "approve", "tighten", "--as", "alice", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["approved"], data["tier"], data["protected"]) == (True, "high", True)
    assert (data["proposer"], data["approver"], data["head"]) == (
        "dev-agent",
        "alice",
        head,
    )
    merge = repo.commit_info("main")
    assert merge.id == data["merge_commit"]
    assert merge.parents[1] == head and merge.author.name == "alice"
    pr = LocalForge(repo, "vault-bot").fetch_pull_request(data["number"])
    assert (pr.merged, pr.merged_by) == (True, "alice")


def test_text_output_names_tier_reasons_and_merge_commit(
    ops: Path, repo: Pygit2OpsRepo
) -> None:
    propose(repo, "vault/sprint", {"sprints/next.md": b"plan\n"})
    result = vault(ops, "approve", "vault/sprint", "--as", "alice")
    assert result.exit_code == 0, result.output
    assert "medium tier" in result.output
    assert "sprints/next.md" in result.output  # a reason
    assert f"merged into main: {repo.resolve('main')}" in result.output


def test_the_operator_comes_from_git_config_then_user(
    ops: Path, repo: Pygit2OpsRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    propose(repo, "vault/a", {"sprints/a.md": b"a\n"})
    propose(repo, "vault/b", {"sprints/b.md": b"b\n"})
    monkeypatch.setenv("USER", "alice")
    assert vault(ops, "approve", "a", "--json").exit_code == 0
    with (ops / ".git" / "config").open("a") as fh:
        fh.write("[opsvault]\n\toperator = mallory\n")
    result = vault(ops, "approve", "b")
    assert result.exit_code == 1
    assert "'mallory' is neither" in result.output


def test_the_proposer_may_not_approve_their_own_change(
    ops: Path, repo: Pygit2OpsRepo
) -> None:
    propose(repo, "vault/mine", {"sprints/x.md": b"x\n"}, Identity("alice", "a@x"))
    result = vault(ops, "approve", "mine", "--as", "alice")
    assert result.exit_code == 1
    assert "'alice' proposed this change and cannot approve it" in result.output
    assert "vault/mine" in repo.branches("vault/")  # nothing merged


@pytest.mark.parametrize(
    ("files", "user", "expected"),
    [
        ({"vault/policy.toml": b"x"}, "bob", "only an admin may approve (alice)"),
        ({"sprints/x.md": b"x"}, "bob", "needs a reviewer or admin (alice)"),
        ({"knowledge/x.md": b"x"}, "bob", "needs a reviewer or admin (alice)"),
        ({"knowledge/x.md": b"x"}, "planner-bot", "is a bot"),
    ],
)
def test_ineligible_approvers_are_refused(
    ops: Path,
    repo: Pygit2OpsRepo,
    files: dict[str, bytes | None],
    user: str,
    expected: str,
) -> None:
    main = repo.resolve("main")
    propose(repo, "vault/x", files)
    result = vault(ops, "approve", "x", "--as", user)
    assert result.exit_code == 1
    assert expected in result.output
    assert repo.resolve("main") == main


def test_a_refused_change_is_never_merged(ops: Path, repo: Pygit2OpsRepo) -> None:
    propose(repo, "vault/bad-1", {"vault/actions/bad-1.toml": b'formula = "noop"\n'})
    result = vault(ops, "approve", "bad-1", "--as", "alice", "--json")
    assert result.exit_code == 1
    data = json.loads(result.output.split("\nError:")[0])
    assert data["approved"] is False and data["refused"] is True
    assert any("context" in p for p in data["problems"])
    assert "vault/bad-1" in repo.branches("vault/")


def test_unknown_ids_name_the_branch_and_list_open_proposals(
    ops: Path, repo: Pygit2OpsRepo
) -> None:
    empty = vault(ops, "approve", "nope", "--as", "alice")
    assert empty.exit_code == 1
    assert "vault/nope: no such proposal; open proposals: there are none" in (
        empty.output
    )
    propose(repo, "vault/noop-1", {"vault/actions/noop-1.toml": NOOP})
    propose(repo, "plan/prereqs", {"prerequisites.md": b"# x\n"})
    result = vault(ops, "reject", "nope", "--reason", "x", "--as", "alice")
    assert result.exit_code == 1
    assert "open proposals: plan/prereqs, vault/noop-1" in result.output


def test_approving_twice_says_it_was_merged(ops: Path, repo: Pygit2OpsRepo) -> None:
    propose(repo, "vault/s", {"sprints/s.md": b"s\n"})
    assert vault(ops, "approve", "s", "--as", "alice").exit_code == 0
    again = vault(ops, "approve", "s", "--as", "alice")
    assert again.exit_code == 1
    assert "already merged (PR #1, by 'alice')" in again.output


def test_reject_closes_the_proposal_with_the_reason(
    ops: Path, repo: Pygit2OpsRepo
) -> None:
    head = propose(repo, "vault/noop-1", {"vault/actions/noop-1.toml": NOOP})
    result = vault(
        ops, "reject", "noop-1", "--reason", "not this week", "--as", "bob", "--json"
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["state"], data["head"], data["rejected_by"]) == ("closed", head, "bob")
    assert "vault/noop-1" not in repo.branches("vault/")
    forge = LocalForge(repo, "vault-bot")
    pr = forge.fetch_pull_request(data["number"])
    assert (pr.state, pr.merged) == (PullState.CLOSED, False)
    assert [(c.author, c.body) for c in forge.fetch_comments(pr.number)] == [
        ("bob", "not this week")
    ]
    again = vault(ops, "reject", "noop-1", "--reason", "x", "--as", "bob")
    assert again.exit_code == 1 and "closed without merge" in again.output


def test_reject_needs_a_reason(ops: Path) -> None:
    assert vault(ops, "reject", "x").exit_code == 2
    assert vault(ops, "reject", "x", "--reason", " ", "--as", "a").exit_code == 2


def test_help_teaches_the_rules() -> None:
    approve = CliRunner().invoke(cli, ["approve", "--help"])
    assert approve.exit_code == 0
    text = " ".join(approve.output.split())  # undo click's wrapping
    assert "vault classify --base main --head vault/ID" in text
    assert "admins for high" in text
    assert "Examples:" in approve.output
    reject = CliRunner().invoke(cli, ["reject", "--help"])
    assert "--reason" in reject.output and "vault/rejected/" in reject.output


@pytest.mark.parametrize("command", ["approve", "reject"])
@pytest.mark.parametrize("empty", ["", " "])
def test_an_empty_as_is_a_usage_error_and_changes_nothing(
    ops: Path, repo: Pygit2OpsRepo, command: str, empty: str
) -> None:
    # The configured operator is an admin: an empty --as used to act as her.
    with (ops / ".git" / "config").open("a") as fh:
        fh.write("[opsvault]\n\toperator = alice\n")
    propose(repo, "vault/noop-1", {"vault/actions/noop-1.toml": NOOP})
    main = repo.resolve("main")
    extra = ["--reason", "no"] if command == "reject" else []
    result = vault(ops, command, "noop-1", *extra, "--as", empty)
    assert result.exit_code == 2, result.output
    assert "--as" in result.output
    assert repo.resolve("main") == main
    assert "vault/noop-1" in repo.branches("vault/")
