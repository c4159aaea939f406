"""I7 — every outcome is recorded, completely, and ids are never reused.

Who rejected a proposal and why lands in its result record; an id an eligible
approver rejected can never be used again; records of unmerged PRs live under
``pr-<N>/``, which no action id reaches; a closed PR whose head conflicts with
main is still recorded, from its head's blobs.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from opsvault.cli import cli
from opsvault.dispatcher.runner import RecordingRunner
from tests.dispatcher.harness import GIT_MAKE, NOOP, REPO, Harness
from tests.security.sides import LocalSide


def records(vault: Harness, suffix: str) -> dict[str, dict[str, object]]:
    return {
        p: json.loads(vault.main_file(p) or b"")
        for p in vault.main_files("vault/rejected")
        if p.endswith(suffix)
    }


def executed(vault: Harness) -> list[str]:
    assert isinstance(vault.runner, RecordingRunner)
    return [r.action_id for r in vault.runner.requests]


def close_with_comment(vault: Harness, user: str, number: int, text: str) -> None:
    """Forgejo's "Close with comment": the closer's comment, then the close."""
    client = vault.client(user)
    client.create_comment(number, text)
    client.close_pull_request(number)


# ---------------------------------------------------------------------------
# Who rejected, and why


def test_forgejo_rejection_records_the_closer_and_their_reason(vault: Harness) -> None:
    number = vault.propose("release-1", GIT_MAKE.format(n=1))
    vault.tick()
    close_with_comment(vault, "alice", number, "not before the freeze ends")
    vault.tick(at=timedelta(minutes=1))
    [(path, record)] = records(vault, "release-1.result.json").items()
    # An admin's rejection of a high change reserves the id: filed under it.
    assert path == "vault/rejected/2026/11/release-1.result.json"
    assert (record["outcome"], record["reason"], record["approver"]) == (
        "rejected",
        "closed-unmerged",
        "alice",
    )
    assert record["detail"] == "rejected by alice: not before the freeze ends"
    assert record["proposer"] == "dev-bot"
    assert vault.main_file("vault/rejected/2026/11/release-1.toml") is not None


def test_local_reject_records_the_approver_and_the_reason(tmp_path: Path) -> None:
    local = LocalSide(tmp_path, checkout=True)
    local.propose(
        "vault/release-1",
        {"vault/actions/release-1.toml": GIT_MAKE.format(n=1)},
        author="dev-bot",
    )
    local.tick()  # the dispatcher has seen the proposal
    args = ["reject", "release-1", "--reason", "use v2", "--as", "bob"]
    result = CliRunner().invoke(cli, [*args, "--ops", str(local.ops)])
    assert result.exit_code == 0, result.output
    local.tick()
    [path] = [p for p in local.main_files("vault/rejected") if p.endswith(".json")]
    assert path.endswith("/pr-1/release-1.result.json")
    record = local.main_json(path)
    assert (record["approver"], record["detail"]) == ("bob", "rejected by bob: use v2")


def test_a_withdrawal_by_the_proposer_names_no_approver(vault: Harness) -> None:
    number = vault.propose("release-1", GIT_MAKE.format(n=1))
    vault.tick()
    close_with_comment(vault, "dev-bot", number, "wrong ref")
    vault.tick(at=timedelta(minutes=1))
    [record] = records(vault, "release-1.result.json").values()
    assert record["approver"] is None
    assert record["detail"] == "withdrawn by its proposer: wrong ref"


def test_a_comment_after_the_close_is_not_the_rejection(vault: Harness) -> None:
    number = vault.propose("release-1", GIT_MAKE.format(n=1))
    vault.tick()
    vault.at(timedelta(minutes=1))
    vault.client("dev-bot").close_pull_request(number)
    vault.at(timedelta(minutes=1, seconds=10))
    vault.client("alice").create_comment(number, "fine by me")
    vault.tick(at=timedelta(minutes=2))
    [record] = records(vault, "release-1.result.json").values()
    assert record["approver"] is None
    assert record["detail"] == "the pull request was closed without merging"
    assert not reproposed_is_refused(vault, "release-1", GIT_MAKE.format(n=2))


# ---------------------------------------------------------------------------
# A rejected id is never reusable


def reproposed_is_refused(vault: Harness, action_id: str, content: str) -> bool:
    vault.forge.push(
        REPO, "again", {f"vault/actions/{action_id}.toml": content}, author="dev-bot"
    )
    number = vault.forge.open_pull(REPO, head="again", title="again", author="dev-bot")
    vault.tick(at=timedelta(minutes=5))
    return "vault/tier/refused" in vault.pull(number).labels


def test_forgejo_an_id_an_admin_rejected_is_never_reusable(vault: Harness) -> None:
    number = vault.propose("release-1", GIT_MAKE.format(n=1))
    vault.tick()
    close_with_comment(vault, "alice", number, "no")
    vault.tick(at=timedelta(minutes=1))
    assert reproposed_is_refused(vault, "release-1", GIT_MAKE.format(n=2))


def test_forgejo_a_withdrawn_id_reserves_nothing(vault: Harness) -> None:
    number = vault.propose("release-1", GIT_MAKE.format(n=1))
    vault.tick()
    close_with_comment(vault, "dev-bot", number, "oops")
    vault.tick(at=timedelta(minutes=1))
    assert not reproposed_is_refused(vault, "release-1", GIT_MAKE.format(n=2))


def test_local_an_id_the_operator_rejected_is_never_reusable(tmp_path: Path) -> None:
    local = LocalSide(tmp_path, checkout=True)
    action = {"vault/actions/release-1.toml": GIT_MAKE.format(n=1)}
    local.propose("vault/release-1", action, author="dev-bot")
    local.tick()
    ops = ["--ops", str(local.ops)]
    result = CliRunner().invoke(
        cli, ["reject", "release-1", "--reason", "no", "--as", "alice", *ops]
    )
    assert result.exit_code == 0, result.output
    local.tick()
    local.propose("vault/release-1", action, author="dev-bot")
    again = CliRunner().invoke(cli, ["approve", "release-1", "--as", "alice", *ops])
    assert again.exit_code == 1
    assert "was used before; ids are never reused" in again.output


# ---------------------------------------------------------------------------
# Records of unmerged PRs live where no action id reaches


def test_an_action_id_cannot_preempt_the_record_of_another_pr(vault: Harness) -> None:
    # PR 1 (low, merged and fired) uses the id the old layout gave PR 2's record.
    vault.propose("pr2-release-1", NOOP.format(msg="squat"))
    vault.tick()
    vault.tick(at=timedelta(minutes=1))
    assert executed(vault) == ["pr2-release-1"]
    number = vault.propose("release-1", GIT_MAKE.format(n=1))
    assert number == 2
    vault.tick(at=timedelta(minutes=2))
    vault.client("dev-bot").close_pull_request(number)
    vault.tick(at=timedelta(minutes=3))
    [record] = records(vault, "pr-2/release-1.result.json").values()
    assert (record["id"], record["pr"], record["outcome"]) == (
        "release-1",
        2,
        "rejected",
    )


# ---------------------------------------------------------------------------
# A closed PR whose head conflicts with main is still recorded


def test_a_closed_pr_that_conflicts_with_main_is_recorded(vault: Harness) -> None:
    victim = vault.propose(
        "release-1",
        GIT_MAKE.format(n=1),
        extra={"knowledge/notes.md": "the release plan\n"},
    )
    vault.tick()
    # A low PR adds the same file with other content: the first PR now conflicts.
    vault.forge.push(
        REPO, "notes", {"knowledge/notes.md": "other notes\n"}, author="dev-bot"
    )
    vault.forge.open_pull(REPO, head="notes", title="notes", author="dev-bot")
    vault.tick(at=timedelta(minutes=1))
    assert vault.main_file("knowledge/notes.md") == b"other notes\n"
    close_with_comment(vault, "alice", victim, "superseded")
    report = vault.tick(at=timedelta(minutes=2))
    assert not [d for d in report.decisions if d.event == "error"], report.decisions
    [(path, record)] = records(vault, "release-1.result.json").items()
    assert (record["approver"], record["pr"]) == ("alice", victim)
    assert vault.main_file(path.replace(".result.json", ".toml")) == (
        GIT_MAKE.format(n=1).encode()
    )


def test_local_a_rejected_proposal_that_conflicts_with_main_is_recorded(
    tmp_path: Path,
) -> None:
    local = LocalSide(tmp_path, checkout=True)
    local.propose(
        "vault/release-1",
        {
            "vault/actions/release-1.toml": GIT_MAKE.format(n=1),
            "knowledge/notes.md": "the release plan\n",
        },
        author="dev-bot",
    )
    local.propose("vault/notes", {"knowledge/notes.md": "other\n"}, author="dev-bot")
    local.tick()  # the low one is merged: release-1 now conflicts with main
    assert local.repo.read_file("main", "knowledge/notes.md") == b"other\n"
    ops = ["--ops", str(local.ops)]
    result = CliRunner().invoke(
        cli, ["reject", "release-1", "--reason", "superseded", "--as", "alice", *ops]
    )
    assert result.exit_code == 0, result.output
    report = local.tick()
    assert not [d for d in report.decisions if d.event == "error"], report.decisions
    [path] = [p for p in local.main_files("vault/rejected") if p.endswith(".json")]
    assert local.main_json(path)["approver"] == "alice"
    toml = local.repo.read_file("main", path.replace(".result.json", ".toml"))
    assert toml == GIT_MAKE.format(n=1).encode()


def test_local_an_action_id_cannot_preempt_the_record_of_another_pr(
    tmp_path: Path,
) -> None:
    local = LocalSide(tmp_path, checkout=True)
    local.propose(
        "vault/pr2-release-1",
        {"vault/actions/pr2-release-1.toml": NOOP.format(msg="squat")},
        author="dev-bot",
    )
    local.tick()  # low: merged
    local.tick()  # fired
    assert local.executed() == ["pr2-release-1"]
    number = local.propose(
        "vault/release-1",
        {"vault/actions/release-1.toml": GIT_MAKE.format(n=1)},
        author="dev-bot",
    )
    assert number == 2
    local.tick()
    local.forge("dev-bot").reject(number, "withdrawn")
    local.tick()
    [path] = [
        p
        for p in local.main_files("vault/rejected")
        if p.endswith("pr-2/release-1.result.json")
    ]
    assert (local.main_json(path)["id"], local.main_json(path)["pr"]) == (
        "release-1",
        2,
    )


@pytest.mark.parametrize(
    "stem",
    ["pr-x/a-1", "pr-0/a-1", "pr-1/../a", "pr-1/a/b", "../pr-1/a-1", "pr-1/", "a/b"],
)
def test_archive_paths_take_only_an_id_or_a_pull_record_stem(stem: str) -> None:
    from datetime import UTC, datetime

    from opsvault.dispatcher.records import Outcome, archive_paths
    from opsvault.errors import InvalidRequestError
    from opsvault.layout import pull_record_stem

    when = datetime(2026, 11, 1, tzinfo=UTC)
    assert archive_paths(Outcome.REJECTED, pull_record_stem(12, "a-1"), when) == (
        "vault/rejected/2026/11/pr-12/a-1.toml",
        "vault/rejected/2026/11/pr-12/a-1.result.json",
    )
    with pytest.raises(InvalidRequestError):
        archive_paths(Outcome.REJECTED, stem, when)
