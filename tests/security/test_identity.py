"""I2 — the dispatcher identity is never an approver.

Whatever role the forge or the policy gives ``dispatcher.identity``, a merge
by it counts only for a ``merge = "auto"`` tier and for medium after its veto
window; `vault dispatcher check-config` and `vault dispatcher run` refuse to
start (exit 78) while the policy names it as an approver.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from opsvault.cli import cli
from opsvault.dispatcher.runner import RecordingRunner
from tests.dispatcher.harness import GIT_MAKE, HOOK, NOOP, REPO, Harness, make_harness
from tests.security.sides import IDENTITY, LocalSide

ADMIN_TEAM = "acme/ops-admins"


def admins_are_the_team(policy: str) -> str:
    """The admins are a forge team (alice is in it), not listed users."""
    return policy.replace(
        '[admins]                  # may merge high (and everything below); never the proposer\nusers = ["alice"]\nteams = []',
        f'[admins]\nusers = []\nteams = ["{ADMIN_TEAM}"]',
        1,
    )


def bot_is_an_admin(policy: str) -> str:
    return policy.replace('users = ["alice"]', f'users = ["alice", "{IDENTITY}"]', 1)


@pytest.fixture
def forgejo(tmp_path: Path) -> Iterator[Harness]:
    harness = make_harness(tmp_path, admins_are_the_team)
    # What docs/forgejo.md used to ask for: the bot in every team policy names.
    harness.forge.add_team(
        "acme", "ops-admins", "write", members=["alice", "vault-bot"], repos=[REPO]
    )
    try:
        yield harness
    finally:
        harness.close()


def executed(runner: object) -> list[str]:
    assert isinstance(runner, RecordingRunner)
    return [r.action_id for r in runner.requests]


def test_forgejo_bot_in_the_admin_team_cannot_approve_a_high_action(
    forgejo: Harness,
) -> None:
    number = forgejo.propose("release-1", GIT_MAKE.format(n=1))
    forgejo.tick()
    assert not forgejo.pull(number).merged  # high: the dispatcher never merges it
    # The high action reaches main through a merge made with the bot's account,
    # carrying a mark that matches what landed (I1 passes): a dispatcher merge
    # that classified wrongly, or anyone holding its token.
    forgejo.wait_for_checks()
    forgejo.merge_as_dispatcher(number)
    forgejo.tick(at=timedelta(minutes=1))
    assert executed(forgejo.runner) == []
    [result] = [
        p for p in forgejo.main_files("vault/rejected") if p.endswith(".result.json")
    ]
    record = json.loads(forgejo.main_file(result) or b"")
    assert (record["id"], record["outcome"], record["reason"]) == (
        "release-1",
        "refused",
        "merger-not-eligible",
    )
    assert record["approver"] == "vault-bot"


def test_forgejo_a_real_admin_of_the_same_team_still_approves(
    forgejo: Harness,
) -> None:
    number = forgejo.propose("release-2", GIT_MAKE.format(n=2))
    forgejo.tick()
    forgejo.merge_as("alice", number)
    forgejo.tick(at=timedelta(minutes=1))
    assert executed(forgejo.runner) == ["release-2"]


def test_forgejo_low_tier_still_merged_and_fired_by_the_dispatcher(
    forgejo: Harness,
) -> None:
    number = forgejo.propose("noop-1", NOOP.format(msg="hi"))
    forgejo.tick()
    assert forgejo.pull(number).merged_by == "vault-bot"
    forgejo.tick(at=timedelta(minutes=1))
    assert executed(forgejo.runner) == ["noop-1"]


def test_local_bot_listed_as_admin_cannot_approve_a_high_action(
    tmp_path: Path,
) -> None:
    vault = LocalSide(tmp_path, checkout=True, policy_edit=bot_is_an_admin)
    number = vault.propose(
        "vault/release-1",
        {"vault/actions/release-1.toml": GIT_MAKE.format(n=1)},
        author="dev-bot",
    )
    vault.tick()
    vault.merge_as_dispatcher(number)  # a marked merge made as the dispatcher
    vault.tick()
    assert vault.executed() == []
    [result] = [p for p in vault.main_files("vault/rejected") if p.endswith(".json")]
    record = vault.main_json(result)
    assert (record["reason"], record["approver"]) == ("merger-not-eligible", IDENTITY)


def test_a_dispatcher_merge_of_low_counts_only_when_low_is_auto(
    tmp_path: Path,
) -> None:
    def low_needs_a_reviewer(policy: str) -> str:
        return policy.replace(
            '[tiers.low]\nmerge = "auto"', '[tiers.low]\nmerge = "reviewer"'
        )

    vault = LocalSide(tmp_path, checkout=True, policy_edit=low_needs_a_reviewer)
    number = vault.propose(
        "vault/noop-1",
        {"vault/actions/noop-1.toml": NOOP.format(msg="hi")},
        author="dev-bot",
    )
    vault.tick()
    pr = vault.forge("alice").fetch_pull_request(number)
    assert not pr.merged  # the dispatcher does not merge what a person must approve
    vault.merge_as_dispatcher(number)
    vault.tick()
    assert vault.executed() == []
    [result] = [p for p in vault.main_files("vault/rejected") if p.endswith(".json")]
    assert vault.main_json(result)["reason"] == "merger-not-eligible"


# ---------------------------------------------------------------------------
# Refusing to start


def run(args: list[str], env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, args, env=env)


def assert_refused(result: Result, *names: str) -> None:
    assert result.exit_code == 78, result.output
    assert "dispatcher.identity 'vault-bot'" in result.output
    assert "docs/forgejo.md" in result.output  # the message names the fix
    for name in names:
        assert name in result.output


def test_local_check_config_and_start_refuse_a_bot_listed_as_admin(
    tmp_path: Path,
) -> None:
    vault = LocalSide(tmp_path, checkout=True, policy_edit=bot_is_an_admin)
    config = str(vault.config)
    assert_refused(
        run(["dispatcher", "check-config", "--config", config]),
        "[admins] users lists 'vault-bot'",
    )
    assert_refused(
        run(["dispatcher", "run", "--once", "--config", config]),
        "[admins] users lists 'vault-bot'",
    )
    assert (
        run(["dispatcher", "check-config", "--offline", "--config", config]).exit_code
        == 0
    )


def test_local_check_config_refuses_a_bot_listed_as_reviewer(tmp_path: Path) -> None:
    def bot_reviews(policy: str) -> str:
        return policy.replace('users = ["bob"]', f'users = ["bob", "{IDENTITY}"]', 1)

    vault = LocalSide(tmp_path, checkout=True, policy_edit=bot_reviews)
    assert_refused(
        run(["dispatcher", "check-config", "--config", str(vault.config)]),
        "[reviewers] users lists 'vault-bot'",
    )


def test_local_check_config_accepts_a_bot_that_is_no_approver(tmp_path: Path) -> None:
    vault = LocalSide(tmp_path, checkout=True)
    result = run(["dispatcher", "check-config", "--config", str(vault.config)])
    assert result.exit_code == 0, result.output


def forgejo_config(tmp_path: Path, harness: Harness) -> tuple[str, dict[str, str]]:
    config = tmp_path / "forgejo.toml"
    config.write_text(
        f'[forge]\nkind = "forgejo"\nurl = "{harness.forge.url}"\nrepo = "{REPO}"\n'
        # the fake forge serves its repository by path, not over HTTP
        f'git_url = "{harness.forge.repo(REPO).git.path}"\n'
        f'[dispatcher]\nidentity = "vault-bot"\nstate_dir = "{tmp_path / "state"}"\n'
    )
    return str(config), {"OPSVAULT_FORGE_TOKEN": harness.tokens["vault-bot"]}


def test_forgejo_check_config_and_start_refuse_a_bot_in_an_admin_team(
    tmp_path: Path, forgejo: Harness
) -> None:
    config, env = forgejo_config(tmp_path, forgejo)
    team = f"[admins] teams names '{ADMIN_TEAM}', and 'vault-bot' is a member"
    assert_refused(run(["dispatcher", "check-config", "--config", config], env), team)
    assert_refused(run(["dispatcher", "run", "--once", "--config", config], env), team)


def test_forgejo_check_config_accepts_the_bot_outside_the_approver_teams(
    tmp_path: Path,
) -> None:
    harness = make_harness(tmp_path, admins_are_the_team)
    try:
        harness.forge.add_team(
            "acme", "ops-admins", "write", members=["alice"], repos=[REPO]
        )
        # Team visibility without approving: the bot is an organisation owner.
        harness.forge.add_team(
            "acme", "Owners", "owner", members=["vault-bot"], repos=[REPO]
        )
        config, env = forgejo_config(tmp_path, harness)
        result = run(["dispatcher", "check-config", "--config", config], env)
        assert result.exit_code == 0, result.output
    finally:
        harness.close()


# ---------------------------------------------------------------------------
# Medium: the dispatcher's merge counts only after an *unvetoed* window


def request_changes(harness: Harness, user: str, number: int) -> None:
    import httpx

    head = harness.pull(number).head_sha
    with httpx.Client() as http:
        reply = http.post(
            f"{harness.forge.api_url}/repos/{REPO}/pulls/{number}/reviews",
            headers={"Authorization": f"token {harness.tokens[user]}"},
            json={"event": "REQUEST_CHANGES", "body": "no", "commit_id": head},
        )
    assert reply.status_code == 200, reply.text


def with_veto_window(policy: str) -> str:
    return policy.replace(
        'merge = "reviewer"\n# veto_window = "2h"',
        'merge = "reviewer"\nveto_window = "2h"',
    )


def test_a_dispatcher_merge_of_a_vetoed_medium_change_is_refused(
    tmp_path: Path,
) -> None:
    harness = make_harness(tmp_path, with_veto_window)
    try:
        number = harness.propose("deploy-1", HOOK.format(n=1))
        harness.tick()
        request_changes(harness, "bob", number)
        harness.tick(at=timedelta(hours=3))
        assert not harness.pull(number).merged  # the tick honours the veto
        # A merge with the dispatcher's account after the window, despite the veto.
        harness.wait_for_checks()
        harness.merge_as_dispatcher(number)
        harness.tick(at=timedelta(hours=3, minutes=1))
        assert executed(harness.runner) == []
        [result] = [
            p for p in harness.main_files("vault/rejected") if p.endswith(".json")
        ]
        assert json.loads(harness.main_file(result) or b"")["reason"] == "vetoed"
    finally:
        harness.close()
