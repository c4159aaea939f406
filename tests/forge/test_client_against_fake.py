"""ForgejoClient against the stateful, swagger-checked fake Forgejo: what only HTTP has.

The port contract itself (both forges) is in ``test_forge_conformance.py``;
here: adapter helpers (changed files, comment edits, permissions), dropped answers, 5xx
retries, pagination.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from opsvault.errors import ForgeNotFound
from opsvault.forge.client import ForgejoClient
from opsvault.forge.types import (
    FileStatus,
    ListState,
    Permission,
    Proposal,
    PullState,
)
from testing.fake_forgejo.clients import client_for
from testing.fake_forgejo.server import FakeForgejo

REPO = "acme/ops"
ACTION = "vault/actions/restart-web-1.toml"
CONTENT = b'formula = "restart-web"\ncontext = "wedged"\n'
MARKER = "<!-- opsvault:tier -->"


@dataclass
class World:
    forge: FakeForgejo
    bot: ForgejoClient
    dev: ForgejoClient


@pytest.fixture
def world(fake_forgejo: FakeForgejo) -> Iterator[World]:
    forge = fake_forgejo
    bot_token = forge.add_user("opsvault-bot", is_bot=True)
    dev_token = forge.add_user("dev-bot", is_bot=True)
    forge.add_user("alice")
    forge.add_user("mallory")
    forge.add_org("acme")
    forge.create_repo(
        "acme", "ops", {"vault/policy.toml": "schema = 1\n", "README.md": "ops\n"}
    )
    forge.add_team(
        "acme",
        "Owners",
        "owner",
        members=["opsvault-bot"],
        includes_all_repositories=True,
    )
    forge.add_team("acme", "ops-admins", "write", members=["alice"], repos=[REPO])
    forge.add_collaborator(REPO, "dev-bot", "write")
    forge.add_collaborator(REPO, "mallory", "read")
    bot, dev = (
        client_for(forge, bot_token, attempts=4, cap=0.05, seed=3),
        client_for(forge, dev_token, attempts=4, cap=0.05, seed=3),
    )
    yield World(forge, bot, dev)
    bot.close()
    dev.close()


def _propose(world: World, name: str = "restart-web-1") -> int:
    proposal = Proposal(
        branch=f"vault/{name}",
        base="main",
        title=f"vault: {name}",
        body="Proposed by dev-bot",
        message=f"vault: request {name}",
        files=((f"vault/actions/{name}.toml", CONTENT),),
    )
    pr = world.dev.open_proposal(proposal)
    assert pr.state is PullState.OPEN and pr.author == "dev-bot"
    assert pr.head_ref == f"vault/{name}" and pr.base_ref == "main"
    world.forge.settle()  # wait for Forgejo's mergeability check
    return pr.number


def test_proposal_is_listed_read_and_its_files_bound_to_head(world: World) -> None:
    number = _propose(world)

    listed = world.bot.fetch_pull_requests(ListState.OPEN)
    pr = world.bot.fetch_pull_request(number)
    files = world.bot.fetch_changed_files(number, pr.head_sha)

    assert [p.number for p in listed] == [number]
    assert [(f.filename, f.status) for f in files] == [(ACTION, FileStatus.ADDED)]
    assert world.bot.fetch_file(ACTION, pr.head_sha) == CONTENT
    assert world.bot.fetch_file("vault/policy.toml", "main") == b"schema = 1\n"
    with pytest.raises(ForgeNotFound):
        world.bot.fetch_file(ACTION, "main")


def test_comments_are_upserted_by_marker_never_duplicated(world: World) -> None:
    number = _propose(world)
    world.dev.create_comment(number, f"{MARKER}\nTier: low, trust me")  # a spoof

    first = world.bot.upsert_comment(number, MARKER, "Tier: low")
    again = world.bot.upsert_comment(number, MARKER, "Tier: low")
    edited = world.bot.upsert_comment(number, MARKER, "Tier: high")

    comments = world.bot.fetch_comments(number)
    ours = [c for c in comments if c.author == "opsvault-bot"]
    assert first.id == again.id == edited.id
    assert [c.body for c in ours] == [f"{MARKER}\nTier: high"]
    assert any(c.author == "dev-bot" and "trust me" in c.body for c in comments)
    assert world.bot.edit_comment(first.id, "plain").body == "plain"


def test_merge_with_dropped_answer_reports_merged_once(world: World) -> None:
    number = _propose(world)
    head = world.bot.fetch_pull_request(number).head_sha
    world.forge.faults.drop_after_write("POST", "/repos/*/pulls/*/merge")

    result = world.bot.merge(number, head)

    assert result.already_merged is True
    merges = world.forge.requests.snapshot()[
        "POST /repos/{owner}/{repo}/pulls/{index}/merge"
    ]
    assert merges == 1


def test_comment_with_dropped_answer_is_not_duplicated(world: World) -> None:
    number = _propose(world)
    world.forge.faults.drop_after_write("POST", "/repos/*/issues/*/comments")

    world.bot.create_comment(number, "Fired: succeeded")

    bodies = [c.body for c in world.bot.fetch_comments(number)]
    assert bodies.count("Fired: succeeded") == 1


def test_reads_survive_injected_5xx(world: World) -> None:
    number = _propose(world)
    world.forge.faults.fail("GET", "/repos/*/pulls/*", status=502, times=2)
    assert world.bot.fetch_pull_request(number).number == number


def test_people_and_privileges(world: World) -> None:
    assert world.bot.is_team_member("acme/ops-admins", "alice") is True
    assert world.bot.is_team_member("acme/ops-admins", "mallory") is False
    assert world.bot.fetch_permission("dev-bot") is Permission.WRITE
    assert world.bot.fetch_permission("mallory") is Permission.READ
    with pytest.raises(ForgeNotFound):
        world.bot.is_team_member("acme/nobody", "alice")


def test_issues_for_the_planner(world: World) -> None:
    done = world.forge.add_issue(REPO, "done thing", author="alice", state="closed")
    todo = world.forge.add_issue(REPO, "open thing", author="alice")
    _propose(world)  # PRs are not issues

    issues = {i.number: i.state for i in world.bot.fetch_issues()}

    assert issues == {done: PullState.CLOSED, todo: PullState.OPEN}


def test_pagination_over_many_pulls(world: World) -> None:
    numbers = world.forge.create_pulls_bulk(REPO, 120, author="dev-bot")
    world.bot.begin_tick()

    prs = world.bot.fetch_pull_requests()

    assert sorted(p.number for p in prs) == sorted(numbers)
    assert world.bot.requests_made == 1 + 3  # settings + 3 pages of at most 50
