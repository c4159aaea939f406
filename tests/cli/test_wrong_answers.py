"""Issue 12, "wrong answers" of request, init, approve, reject and the dispatcher: one test each."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from opsvault.cli import cli
from opsvault.cli.init import create_ops_repo
from opsvault.errors import GitError, RemoteUnavailable
from opsvault.forge.local import LocalForge
from opsvault.git import transport
from opsvault.git.base import Identity
from opsvault.git.pygit2_repo import Pygit2OpsRepo
from tests.dispatcher.local_harness import LocalHarness, make_local_harness

AGENT = Identity("dev-agent", "dev-agent@localhost")
NOOP = b'formula = "noop"\ncontext = "test"\n'
GIT_MAKE = (
    b'formula = "git-make"\ncontext = "release"\n'
    b'[params]\nrepo = "https://git.example.org/acme/app"\nref = "v1"\ntarget = "release"\n'
)


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


@pytest.fixture
def ops(tmp_path: Path) -> Path:
    create_ops_repo(tmp_path / "ops", when=0)
    return tmp_path / "ops"


def propose(ops: Path, branch: str, files: dict[str, bytes | None]) -> str:
    repo = Pygit2OpsRepo.open(ops)
    commit = repo.commit_files(
        repo.resolve("main"), files, f"propose {branch}", AGENT, when=0
    )
    repo.update_ref(f"refs/heads/{branch}", commit, None)
    return commit


def git_config(ops: Path, name: str, value: str) -> None:
    subprocess.run(["git", "-C", str(ops), "config", name, value], check=True)


# -- [forge] operator ------------------------------------------------------------


def test_forge_operator_of_the_config_is_who_approve_acts_as(
    tmp_path: Path, ops: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USER", "mallory")
    monkeypatch.delenv("OPSVAULT_FORGE_OPERATOR", raising=False)
    git_config(ops, "opsvault.operator", "mallory")
    config = tmp_path / "dispatcher.toml"
    config.write_text(f'[forge]\npath = "{ops}"\noperator = "alice"\n')
    propose(ops, "vault/noop-1", {"vault/actions/noop-1.toml": NOOP})
    # No --ops and no --as: the configuration names both the repo and the operator.
    result = invoke("approve", "noop-1", "--config", str(config), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["ok"], data["approved"], data["approver"]) == (True, True, "alice")


def test_the_operator_variable_beats_git_config(
    ops: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    git_config(ops, "opsvault.operator", "mallory")
    propose(ops, "vault/noop-1", {"vault/actions/noop-1.toml": NOOP})
    result = invoke(
        "approve",
        "noop-1",
        "--ops",
        str(ops),
        "--json",
        env={"OPSVAULT_FORGE_OPERATOR": "alice"},
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["approver"] == "alice"


def test_a_forgejo_config_is_refused_by_the_local_commands(
    tmp_path: Path, ops: Path
) -> None:
    config = tmp_path / "dispatcher.toml"
    config.write_text(
        '[forge]\nkind = "forgejo"\nurl = "https://f.example"\nrepo = "o/ops"\n'
    )
    result = invoke(
        "approve",
        "x",
        "--ops",
        str(ops),
        "--config",
        str(config),
        env={"OPSVAULT_FORGE_TOKEN": "t" * 20},
    )
    assert result.exit_code == 78
    assert "local-mode ops repo" in result.output


# -- an unreachable forge: 75 ------------------------------------------------------


def test_a_git_fetch_that_cannot_connect_is_forge_unavailable(tmp_path: Path) -> None:
    with pytest.raises(RemoteUnavailable) as caught:
        transport.clone("http://127.0.0.1:9/o/ops.git", tmp_path / "clone")
    assert caught.value.exit_code == 75
    assert isinstance(caught.value, GitError)  # every `except GitError` still applies
    assert "retry later" in str(caught.value)


def test_a_missing_repository_is_not_forge_unavailable(tmp_path: Path) -> None:
    with pytest.raises(GitError) as caught:
        transport.clone(str(tmp_path / "nowhere"), tmp_path / "clone")
    assert not isinstance(caught.value, RemoteUnavailable)
    assert caught.value.exit_code == 1


def test_dispatcher_once_exits_75_when_the_forge_git_is_unreachable(
    tmp_path: Path,
) -> None:
    config = tmp_path / "dispatcher.toml"
    config.write_text(
        '[forge]\nkind = "forgejo"\nurl = "http://127.0.0.1:9"\nrepo = "o/ops"\n'
        f'[dispatcher]\nstate_dir = "{tmp_path / "state"}"\n'
    )
    env = {"OPSVAULT_FORGE_TOKEN": "t" * 20}
    result = invoke("dispatcher", "run", "--config", str(config), "--once", env=env)
    assert result.exit_code == 75, result.output
    assert "unreachable" in result.output
    as_json = invoke(
        "dispatcher", "run", "--config", str(config), "--once", "--json", env=env
    )
    assert as_json.exit_code == 75
    data = json.loads(as_json.stdout)
    assert data["ok"] is False
    assert data["error"]["code"] == "forge-unavailable"


def test_a_tick_whose_fetch_fails_reports_exit_75(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def tick_failing_with(exc: Exception, where: Path) -> int:
        harness = make_local_harness(where)
        app = harness.app()

        def refresh() -> str:
            raise exc

        monkeypatch.setattr(app.mainline, "refresh", refresh)
        report = harness.tick(app)
        assert report.unavailable is (exc.__class__ is RemoteUnavailable)
        return report.exit_code

    unreachable = RemoteUnavailable(
        "origin", "git fetch failed: 'Could not resolve host'"
    )
    assert tick_failing_with(unreachable, tmp_path / "a") == 75
    broken = GitError("origin", "git fetch failed: 'not a git repository'")
    assert tick_failing_with(broken, tmp_path / "b") == 1


# -- check-config ---------------------------------------------------------------------


@pytest.mark.parametrize("offline", [False, True])
def test_check_config_refuses_a_forge_path_that_is_not_a_git_repo(
    tmp_path: Path, ops: Path, offline: bool
) -> None:
    plain = tmp_path / "plain"
    (plain / "vault").mkdir(parents=True)
    (plain / "vault" / "policy.toml").write_bytes(
        (ops / "vault" / "policy.toml").read_bytes()
    )
    config = tmp_path / "dispatcher.toml"
    config.write_text(f'[forge]\npath = "{plain}"\n')
    extra = ["--offline"] if offline else []
    result = invoke("dispatcher", "check-config", "--config", str(config), *extra)
    assert result.exit_code == 78, result.output
    assert "is not a git repository" in result.output
    assert "forge.path" in result.output
    run = invoke("dispatcher", "run", "--config", str(config), "--once")
    assert run.exit_code == 78 and "is not a git repository" in run.output


def test_check_config_refuses_a_broken_policy_on_main(
    tmp_path: Path, ops: Path
) -> None:
    policy = ops / "vault" / "policy.toml"
    policy.write_text(policy.read_text() + "\ngarbage = [\n")
    subprocess.run(
        ["git", "-C", str(ops), "commit", "-qam", "break it"],
        check=True,
        env={
            "GIT_AUTHOR_NAME": "a",
            "GIT_AUTHOR_EMAIL": "a@x",
            "GIT_COMMITTER_NAME": "a",
            "GIT_COMMITTER_EMAIL": "a@x",
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
        },
    )
    config = tmp_path / "dispatcher.toml"
    config.write_text(f'[forge]\npath = "{ops}"\n')
    result = invoke("dispatcher", "check-config", "--config", str(config))
    assert result.exit_code == 78, result.output
    assert "vault/policy.toml on 'main'" in result.output
    assert "every tick fails" in result.output
    assert "A broken policy on the base branch" in result.output
    operating = (Path(__file__).parents[2] / "docs" / "operating.md").read_text()
    assert "### A broken policy on the base branch" in operating
    as_json = invoke("dispatcher", "check-config", "--config", str(config), "--json")
    data = json.loads(as_json.output)
    assert (data["ok"], data["error"]["code"]) == (False, "config")


def _revert_on_main(vault_ops: Path, home: Path) -> None:
    env = {
        "GIT_AUTHOR_NAME": "alice",
        "GIT_AUTHOR_EMAIL": "alice@localhost",
        "GIT_COMMITTER_NAME": "alice",
        "GIT_COMMITTER_EMAIL": "alice@localhost",
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
    }
    for args in (
        ["checkout", "-q", "-f", "main"],
        ["revert", "--no-edit", "-m", "1", "HEAD"],
    ):
        subprocess.run(["git", "-C", str(vault_ops), *args], check=True, env=env)


@pytest.mark.parametrize("how", ["admin-merges-the-fix", "operator-reverts-on-main"])
def test_the_documented_recovery_from_a_broken_policy_works(
    tmp_path: Path, how: str
) -> None:
    """docs/operating.md "A broken policy on the base branch", both ways."""
    vault = make_local_harness(tmp_path)
    good = vault.main_file("vault/policy.toml")
    assert good is not None
    broken = propose_files(
        vault, "vault/break", {"vault/policy.toml": good + b"\nx = [\n"}
    )
    vault.tick()
    vault.merge_as("alice", broken)  # an admin merged it by hand
    stuck = vault.tick()
    assert stuck.errors and "vault/policy.toml" in stuck.errors[0]
    if how == "admin-merges-the-fix":
        fix = propose_files(vault, "vault/fix", {"vault/policy.toml": good})
        assert vault.tick().errors  # the dispatcher itself merges nothing meanwhile
        vault.merge_as("alice", fix)
    else:
        _revert_on_main(vault.root / "ops", tmp_path)
    healed = vault.tick()
    assert healed.ok, healed.errors
    vault.propose("noop-1", NOOP.decode())
    vault.tick()
    assert any(
        p.endswith("noop-1.result.json") for p in vault.main_files("vault/fired")
    )


def propose_files(harness: LocalHarness, branch: str, files: dict[str, bytes]) -> int:
    """Push *branch* (one commit by dev-bot on main, only *files*); return its PR number."""
    repo = harness.repo
    commit = repo.commit_files(
        repo.resolve("main"),
        dict(files),
        f"propose {branch}",
        Identity("dev-bot", "dev-bot@localhost"),
        when=0,
    )
    repo.update_ref(f"refs/heads/{branch}", commit, None)
    [pr] = [
        p
        for p in harness.client("dev-bot").fetch_pull_requests()
        if p.head_ref == branch
    ]
    return pr.number


# -- request ------------------------------------------------------------------------------


def test_a_blast_radius_below_the_tier_is_refused_and_nothing_written(
    ops: Path,
) -> None:
    args = [
        "request",
        "http-hook",
        "--param",
        "url=https://x.example/h",
        "--secret",
        "HOOK_TOKEN",
        "--context",
        "deploy",
        "--ops",
        str(ops),
    ]
    result = invoke(*args, "--blast-radius", "low")
    assert result.exit_code == 2
    assert "--blast-radius" in result.output and "below the tier" in result.output
    assert not (ops / "vault" / "actions").exists() or not list(
        (ops / "vault" / "actions").glob("*.toml")
    )
    raised = invoke(*args, "--blast-radius", "high", "--json")
    assert raised.exit_code == 0, raised.output
    assert json.loads(raised.output)["tier"] == "high"


@pytest.mark.parametrize("context", ["", "  "])
def test_an_empty_context_gives_one_clear_message(ops: Path, context: str) -> None:
    result = invoke("request", "noop", "--context", context, "--ops", str(ops))
    assert result.exit_code == 2
    [error] = [line for line in result.output.splitlines() if "Error" in line]
    assert "--context" in error and "empty" in error
    assert "\\S" not in result.output and "match" not in result.output


# -- init -----------------------------------------------------------------------------------


def test_init_inside_an_ops_repo_is_refused_with_a_hint(ops: Path) -> None:
    result = invoke("init", str(ops / "nested"))
    assert result.exit_code == 78
    assert "inside the ops repo" in result.output and "--force" in result.output
    assert not (ops / "nested").exists()
    forced = invoke("init", str(ops / "nested"), "--force")
    assert forced.exit_code == 0, forced.output
    assert (ops / "nested" / ".git").is_dir()


def test_init_branch_names_the_base_branch(tmp_path: Path) -> None:
    result = invoke("init", str(tmp_path / "ops"), "--branch", "master", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["branch"] == "master"
    repo = Pygit2OpsRepo.open(tmp_path / "ops")
    assert set(repo.branches()) == {"master"}
    assert repo.config_value("opsvault.branch") == "master"
    status = invoke("status", "--ops", str(tmp_path / "ops"))
    assert status.exit_code == 0, status.output
    bad = invoke("init", str(tmp_path / "x"), "--branch", "vault/main")
    assert bad.exit_code == 2 and "proposal branch" in bad.output


@pytest.mark.parametrize(
    "command", [["status"], ["approve", "x"], ["reject", "x", "--reason", "r"]]
)
def test_a_repo_on_master_gets_a_hint_not_unknown_revision(
    ops: Path, command: list[str]
) -> None:
    subprocess.run(
        ["git", "-C", str(ops), "branch", "-m", "main", "master"], check=True
    )
    who = [] if command == ["status"] else ["--as", "alice"]
    result = invoke(*command, "--ops", str(ops), *who)
    assert result.exit_code == 78, result.output
    assert "unknown revision" not in result.output
    assert "no base branch 'main'" in result.output
    assert "git config opsvault.branch master" in result.output


# -- reject ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "standing", "reserves"),
    [
        ("alice", "approver", True),
        ("bob", "other", False),
        ("dev-agent", "proposer", False),
    ],
)
def test_reject_says_what_the_rejection_means_for_who_gives_it(
    ops: Path, user: str, standing: str, reserves: bool
) -> None:
    propose(ops, "vault/release-1", {"vault/actions/release-1.toml": GIT_MAKE})
    result = invoke(
        "reject",
        "release-1",
        "--reason",
        "no",
        "--as",
        user,
        "--ops",
        str(ops),
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["standing"], data["reserves_id"]) == (standing, reserves)


def test_a_reject_by_someone_who_may_not_approve_is_flagged(ops: Path) -> None:
    propose(ops, "vault/release-1", {"vault/actions/release-1.toml": GIT_MAKE})
    result = invoke(
        "reject", "release-1", "--reason", "no", "--as", "bob", "--ops", str(ops)
    )
    assert result.exit_code == 0
    assert "rejected vault/release-1" in result.stdout
    assert "only an admin may approve" in result.stderr
    assert "reserves nothing" in result.stderr


def test_reject_rules_are_documented() -> None:
    docs = Path(__file__).parents[2] / "docs" / "local-mode.md"
    text = " ".join(docs.read_text().split())
    assert "Who may reject" in text
    assert "reserves nothing" in text
    help_text = " ".join(invoke("reject", "--help").output.split())
    assert "Who may reject" in help_text


# -- request --open-pr in local mode ------------------------------------------------


@pytest.mark.parametrize("who", [["--requested-by", "dev-agent"], []])
def test_open_pr_in_local_mode_makes_the_branch_as_the_requester(
    ops: Path, monkeypatch: pytest.MonkeyPatch, who: list[str]
) -> None:
    monkeypatch.setenv("USER", "carol")
    for name in ("OPSVAULT_FORGE_KIND", "OPSVAULT_FORGE_PATH"):
        monkeypatch.delenv(name, raising=False)
    args = ["request", "noop", "--context", "x", "--id", "loc-1", "--open-pr"]
    result = invoke(*args, *who, "--ops", str(ops), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["branch"] == "vault/loc-1"
    assert not (ops / "vault" / "actions" / "loc-1.toml").exists()
    repo = Pygit2OpsRepo.open(ops)
    [pr] = LocalForge(repo, "vault-bot").fetch_pull_requests()
    assert pr.author == (who[1] if who else "carol")  # never the dispatcher


# -- typing help ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        (["stauts"], "'status'"),
        (["aprove"], "'approve'"),
        (["dispatcher", "chek-config"], "'check-config'"),
    ],
)
def test_a_mistyped_subcommand_gets_a_did_you_mean(
    typed: list[str], meant: str
) -> None:
    result = invoke(*typed)
    assert result.exit_code == 2
    assert f"Did you mean {meant}?" in result.output


def test_shell_completion_works_as_documented() -> None:
    vault = Path(__file__).parents[2] / ".venv" / "bin" / "vault"
    if not vault.is_file():
        pytest.skip("needs the installed console script (`make`)")
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert "_VAULT_COMPLETE=bash_source" in readme
    env = {
        "PATH": "/usr/bin:/bin",
        "COMP_WORDS": "vault sta",
        "COMP_CWORD": "1",
        "_VAULT_COMPLETE": "bash_complete",
    }
    done = subprocess.run(
        [str(vault)], env=env, capture_output=True, text=True, check=False
    )
    assert "status" in done.stdout.split(",")[-1].split()
    source = subprocess.run(
        [str(vault)],
        env={"PATH": "/usr/bin:/bin", "_VAULT_COMPLETE": "bash_source"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert "complete -o nosort -F _vault_completion vault" in source.stdout
