"""One contract, two forges: every Forge port method against LocalForge and ForgejoClient+fake.

The ``forge`` fixture runs each test body twice (params ``local`` and
``forgejo``), so a behaviour the dispatcher relies on cannot hold on one side
only. Adapter-specific behaviour (local state file, HTTP retries, pagination)
stays in ``test_local_forge.py`` and the ``test_client_*.py`` files.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from opsvault.cli.init import create_ops_repo
from opsvault.errors import ForgeAuthError, ForgeConflict, ForgeError, ForgeNotFound
from opsvault.forge.client import ForgejoClient
from opsvault.forge.local import LocalForge
from opsvault.forge.types import (
    CommitStatus,
    ListState,
    MergeResult,
    Proposal,
    PullState,
    ReviewState,
    StatusState,
    TimelineKind,
)
from opsvault.git.base import Identity
from opsvault.git.pygit2_repo import Pygit2OpsRepo
from opsvault.ports import Forge
from testing.fake_forgejo.clients import client_for
from testing.fake_forgejo.model import BranchProtection as RuleModel
from testing.fake_forgejo.server import FakeForgejo

REPO = "acme/ops"
BOT = "vault-bot"  # the dispatcher: the forge under test acts as it
ACTION = "vault/actions/noop-1.toml"
CONTENT = b'formula = "noop"\ncontext = "conformance"\n'
MARKER = "<!-- opsvault:tier -->"


@dataclass
class Side:
    """One forge and the world around it: other users, pushes, what main holds."""

    kind: str
    bot: Forge
    as_user: Callable[[str], Forge]
    push: Callable[[str, dict[str, bytes | None], str], str]  # branch, files, author
    main_file: Callable[[str], bytes | None]
    settle: Callable[[], None] = lambda: None
    closers: list[Callable[[], None]] = field(default_factory=list)

    def propose(self, name: str = "noop-1", author: str = "dev-bot") -> int:
        proposal = Proposal(
            branch=f"vault/{name}",
            base="main",
            title=f"vault: {name}",
            body=f"Proposed by {author}",
            message=f"vault: request {name}",
            files=((f"vault/actions/{name}.toml", CONTENT),),
        )
        pr = self.as_user(author).open_proposal(proposal)
        self.settle()
        return pr.number


def _local(tmp_path: Path) -> Side:
    create_ops_repo(tmp_path / "ops", when=0)
    repo = Pygit2OpsRepo.open(tmp_path / "ops")
    now = [datetime(2026, 4, 1, 12, 0, tzinfo=UTC)]

    def clock() -> datetime:
        now[0] += timedelta(seconds=1)
        return now[0]

    def as_user(user: str) -> Forge:
        return LocalForge(repo, user, operator="alice", clock=clock)

    def push(branch: str, files: dict[str, bytes | None], author: str) -> str:
        old = repo.branches(branch).get(branch)
        commit = repo.commit_files(
            old or repo.resolve("main"),
            files,
            f"push {branch}",
            Identity(author, f"{author}@localhost"),
            when=0,
        )
        repo.update_ref(f"refs/heads/{branch}", commit, old)
        return commit

    def main_file(path: str) -> bytes | None:
        return repo.read_file(repo.resolve("main"), path)

    return Side("local", as_user(BOT), as_user, push, main_file)


def _forgejo(fake: FakeForgejo) -> Side:
    tokens = {
        BOT: fake.add_user(BOT),
        "dev-bot": fake.add_user("dev-bot", is_bot=True),
        "alice": fake.add_user("alice"),
        "mallory": fake.add_user("mallory"),
    }
    fake.add_org("acme")
    fake.create_repo("acme", "ops", {"vault/policy.toml": "schema = 1\n"})
    fake.add_team("acme", "ops-admins", "write", members=["alice"], repos=[REPO])
    # The dispatcher's user may read the org's teams (docs/forgejo.md).
    fake.add_team(
        "acme", "Owners", "owner", members=[BOT], includes_all_repositories=True
    )
    for user, access in ((BOT, "admin"), ("dev-bot", "write"), ("mallory", "read")):
        fake.add_collaborator(REPO, user, access)
    clients: dict[str, ForgejoClient] = {}

    def as_user(user: str) -> Forge:
        if user not in clients:
            clients[user] = client_for(fake, tokens[user], attempts=4, cap=0.05)
        return clients[user]

    def push(branch: str, files: dict[str, bytes | None], author: str) -> str:
        sha = fake.push(REPO, branch, files, author=author)
        fake.settle()
        return sha

    def main_file(path: str) -> bytes | None:
        repo = Pygit2OpsRepo.open(fake.repo(REPO).git.path)
        return repo.read_file(repo.resolve("refs/heads/main"), path)

    side = Side("forgejo", as_user(BOT), as_user, push, main_file, fake.settle)

    def close_all() -> None:
        for client in clients.values():
            client.close()

    side.closers.append(close_all)
    return side


@pytest.fixture(params=["local", "forgejo"])
def forge(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Side]:
    if request.param == "local":
        yield _local(tmp_path)
        return
    fake: FakeForgejo = request.getfixturevalue("fake_forgejo")
    side = _forgejo(fake)
    yield side
    for close in side.closers:
        close()


# -- identity, budget, lifetime ---------------------------------------------------


def test_whoami_is_the_acting_user(forge: Side) -> None:
    assert forge.bot.whoami() == BOT
    assert forge.as_user("dev-bot").whoami() == "dev-bot"


def test_requests_made_counts_what_was_sent(forge: Side) -> None:
    before = forge.bot.requests_made
    forge.bot.fetch_pull_requests()
    sent = forge.bot.requests_made - before
    # The tick reports the difference; local mode sends nothing.
    assert sent == 0 if forge.kind == "local" else sent >= 1


def test_close_may_be_called_twice(forge: Side) -> None:
    spare = forge.as_user("alice")
    spare.close()
    spare.close()


# -- proposals and listing --------------------------------------------------------


def test_open_proposal_is_listed_read_and_reused(forge: Side) -> None:
    number = forge.propose()
    pr = forge.bot.fetch_pull_request(number)
    assert (pr.state, pr.author, pr.head_ref, pr.base_ref) == (
        PullState.OPEN,
        "dev-bot",
        "vault/noop-1",
        "main",
    )
    assert pr.title == "vault: noop-1" and not pr.merged
    assert [p.number for p in forge.bot.fetch_pull_requests(ListState.OPEN)] == [number]
    assert forge.propose() == number  # the same proposal again: reused
    with pytest.raises(ForgeNotFound):
        forge.bot.fetch_pull_request(number + 100)


def test_fetch_file_reads_a_branch_or_a_commit(forge: Side) -> None:
    number = forge.propose()
    head = forge.bot.fetch_pull_request(number).head_sha
    assert forge.bot.fetch_file(ACTION, head) == CONTENT
    assert forge.bot.fetch_file(ACTION, "vault/noop-1") == CONTENT
    assert forge.bot.fetch_file("vault/policy.toml", "main")
    with pytest.raises(ForgeNotFound):
        forge.bot.fetch_file(ACTION, "main")


def test_listing_stops_at_the_watermark(forge: Side) -> None:
    forge.propose()
    later = datetime.now(UTC) + timedelta(days=3650)
    assert forge.bot.fetch_pull_requests(updated_since=later) == []
    earlier = datetime(2000, 1, 1, tzinfo=UTC)
    assert len(forge.bot.fetch_pull_requests(updated_since=earlier)) == 1


def test_a_push_moves_the_head(forge: Side) -> None:
    number = forge.propose()
    old = forge.bot.fetch_pull_request(number).head_sha
    new = forge.push("vault/noop-1", {"knowledge/late.md": b"late\n"}, "dev-bot")
    assert new != old and forge.bot.fetch_pull_request(number).head_sha == new


def test_close_pull_request_is_idempotent(forge: Side) -> None:
    number = forge.propose()
    closed = forge.bot.close_pull_request(number)
    assert closed.state is PullState.CLOSED and not closed.merged
    assert forge.bot.close_pull_request(number).state is PullState.CLOSED
    assert forge.bot.fetch_pull_requests(ListState.OPEN) == []
    listed = forge.bot.fetch_pull_requests(ListState.CLOSED)
    assert [p.number for p in listed] == [number]


# -- comments and the timeline ----------------------------------------------------


def test_upsert_comment_keeps_one_of_ours_and_ignores_spoofs(forge: Side) -> None:
    number = forge.propose()
    dev = forge.as_user("dev-bot")
    spoof = dev.create_comment(number, f"{MARKER}\nTier: low, trust me")
    assert spoof.author == "dev-bot"

    first = forge.bot.upsert_comment(number, MARKER, "Tier: low")
    again = forge.bot.upsert_comment(number, MARKER, "Tier: low")
    edited = forge.bot.upsert_comment(number, MARKER, "Tier: high")

    assert first.body == f"{MARKER}\nTier: low"
    assert first.id == again.id == edited.id != spoof.id
    assert edited.body == f"{MARKER}\nTier: high"
    comments = [(c.id, c.author, c.body) for c in forge.bot.fetch_comments(number)]
    assert comments == [
        (spoof.id, "dev-bot", f"{MARKER}\nTier: low, trust me"),
        (first.id, BOT, f"{MARKER}\nTier: high"),
    ]
    with pytest.raises(ForgeNotFound):
        forge.bot.create_comment(number + 100, "no such PR")


def test_timeline_names_who_commented_and_who_labelled(forge: Side) -> None:
    number = forge.propose()
    forge.as_user("dev-bot").create_comment(number, "/vault hold")
    forge.bot.ensure_label("vault/hold", "d93f0b", "held")
    forge.bot.add_labels(number, ["vault/hold"])
    forge.bot.remove_label(number, "vault/hold")

    events = [
        (e.kind, e.actor, e.body or e.label) for e in forge.bot.fetch_timeline(number)
    ]

    assert events == [
        (TimelineKind.COMMENT, "dev-bot", "/vault hold"),
        (TimelineKind.LABEL_ADDED, BOT, "vault/hold"),
        (TimelineKind.LABEL_REMOVED, BOT, "vault/hold"),
    ]


def test_timeline_names_who_closed_the_pull_request(forge: Side) -> None:
    number = forge.propose()
    forge.as_user("alice").close_pull_request(number)
    forge.bot.close_pull_request(number)  # already closed: no second event

    closes = [
        (e.kind, e.actor)
        for e in forge.bot.fetch_timeline(number)
        if e.kind in (TimelineKind.CLOSED, TimelineKind.REOPENED)
    ]

    assert closes == [(TimelineKind.CLOSED, "alice")]


# -- labels and statuses ----------------------------------------------------------


def test_labels_are_ensured_added_and_removed(forge: Side) -> None:
    number = forge.propose()
    low = forge.bot.ensure_label("vault/tier-low", "2ea44f", "low tier")
    assert forge.bot.ensure_label("vault/tier-low", "2ea44f", "low tier") == low
    forge.bot.ensure_label("bug", "ee0701")

    added = forge.bot.add_labels(number, ["vault/tier-low", "bug"])
    forge.bot.remove_label(number, "vault/tier-low")
    forge.bot.remove_label(number, "not-there")  # absent: ignored

    assert sorted(x.name for x in added) == ["bug", "vault/tier-low"]
    assert forge.bot.fetch_pull_request(number).labels == ("bug",)


def test_commit_status_on_an_unknown_commit_is_refused(forge: Side) -> None:
    number = forge.propose()
    head = forge.bot.fetch_pull_request(number).head_sha
    forge.bot.set_commit_status(head, CommitStatus(StatusState.PENDING, "vault/tier"))
    forge.bot.set_commit_status(
        head, CommitStatus(StatusState.SUCCESS, "vault/tier", "low")
    )
    with pytest.raises(ForgeError):
        forge.bot.set_commit_status(
            "0" * 40, CommitStatus(StatusState.SUCCESS, "vault/tier")
        )


# -- reviews and merges -----------------------------------------------------------


def test_approve_is_a_review_at_the_head_never_by_the_proposer(forge: Side) -> None:
    number = forge.propose()
    head = forge.bot.fetch_pull_request(number).head_sha

    review = forge.bot.approve(number, head, "low tier")

    assert (review.reviewer, review.state, review.commit_id) == (
        BOT,
        ReviewState.APPROVED,
        head,
    )
    reviews = forge.bot.fetch_reviews(number)
    assert [(r.reviewer, r.state, r.commit_id) for r in reviews] == [
        (BOT, ReviewState.APPROVED, head)
    ]
    with pytest.raises((ForgeConflict, ForgeAuthError)):
        forge.as_user("dev-bot").approve(number, head)


def test_merge_is_pinned_to_the_head_and_never_twice(forge: Side) -> None:
    number = forge.propose()
    old = forge.bot.fetch_pull_request(number).head_sha
    new = forge.push("vault/noop-1", {"knowledge/late.md": b"late\n"}, "dev-bot")
    with pytest.raises(ForgeConflict, match="head moved"):
        forge.bot.merge(number, old)
    assert not forge.bot.fetch_pull_request(number).merged

    result = forge.bot.merge(number, new)
    again = forge.bot.merge(number, new)

    assert result == MergeResult(number, new, result.merge_commit_sha)
    assert result.merge_commit_sha
    assert again == replace(result, already_merged=True)
    pr = forge.bot.fetch_pull_request(number)
    assert (pr.merged, pr.merged_by, pr.head_sha, pr.state) == (
        True,
        BOT,
        new,
        PullState.CLOSED,
    )
    assert pr.merge_commit_sha == result.merge_commit_sha
    assert forge.main_file(ACTION) == CONTENT
    with pytest.raises(ForgeConflict):
        forge.bot.merge(number, old)


def test_merge_of_a_closed_pull_request_is_refused(forge: Side) -> None:
    number = forge.propose()
    head = forge.bot.fetch_pull_request(number).head_sha
    forge.bot.close_pull_request(number)
    with pytest.raises(ForgeConflict):
        forge.bot.merge(number, head)
    assert forge.main_file(ACTION) is None


# -- people, issues, protection ---------------------------------------------------


def test_team_membership(forge: Side) -> None:
    assert forge.bot.is_team_member("acme/ops-admins", "mallory") is False
    # Local mode has no teams at all; on Forgejo alice is in ops-admins.
    expected = forge.kind == "forgejo"
    assert forge.bot.is_team_member("acme/ops-admins", "alice") is expected


def test_pull_requests_are_never_issues(forge: Side) -> None:
    number = forge.propose()
    issues = forge.bot.fetch_issues(ListState.ALL)
    assert number not in {i.number for i in issues}
    assert not any(i.is_pull for i in issues)


def test_branch_protection_of_an_unprotected_branch_is_none(forge: Side) -> None:
    assert forge.bot.fetch_branch_protection("dev") is None


def test_branch_protection_reads_required_approvals(
    request: pytest.FixtureRequest, forge: Side
) -> None:
    if forge.kind == "local":
        # Local mode has no branch protection (docs/local-mode.md).
        assert forge.bot.fetch_branch_protection("main") is None
        return
    fake: FakeForgejo = request.getfixturevalue("fake_forgejo")
    fake.protect_branch(REPO, RuleModel("main", required_approvals=2))
    rule = forge.bot.fetch_branch_protection("main")
    assert rule is not None and rule.required_approvals == 2
    assert forge.bot.fetch_branch_protection("release") is None  # another rule


def test_branch_protection_reads_what_the_guard_check_needs(
    request: pytest.FixtureRequest, forge: Side
) -> None:
    """The fields ``dispatcher/guard.py`` reads, as the forge reports them (ADR 0018)."""
    if forge.kind == "local":
        # Local mode has no rule: the guard checks the repository itself instead.
        assert forge.bot.fetch_branch_protection("main") is None
        return
    fake: FakeForgejo = request.getfixturevalue("fake_forgejo")
    fake.protect_branch(
        REPO,
        RuleModel(
            "main",
            enable_push=True,
            enable_push_whitelist=True,
            push_whitelist_usernames=(BOT, "mallory", "nobody-here"),
            push_whitelist_teams=("ops-admins",),
            push_whitelist_deploy_keys=True,
            unprotected_file_patterns="notes/**",
            dismiss_stale_approvals=True,
            protected_file_patterns="vault/policy.toml",
            approvals_whitelist_teams=("ops-admins",),
            merge_whitelist_teams=("Owners",),
        ),
    )
    rule = forge.bot.fetch_branch_protection("main")
    assert rule is not None
    # a name that is no repository reader is not reported (nor can it push)
    assert set(rule.push_whitelist_usernames) == {BOT, "mallory"}
    assert rule.push_whitelist_teams == ("ops-admins",)
    assert rule.enable_push and rule.enable_push_whitelist
    assert rule.push_whitelist_deploy_keys and rule.dismiss_stale_approvals
    assert rule.unprotected_file_patterns == "notes/**"
    assert rule.protected_file_patterns == "vault/policy.toml"
    assert rule.approvals_whitelist_teams == ("ops-admins",)
    assert rule.merge_whitelist_teams == ("Owners",)


def test_open_proposal_refuses_a_branch_with_other_content(forge: Side) -> None:
    number = forge.propose()
    proposal = Proposal(
        branch="vault/noop-1",
        base="main",
        title="vault: noop-1",
        body="Proposed by dev-bot",
        message="vault: request noop-1",
        files=((ACTION, b"other\n"),),
    )
    with pytest.raises(ForgeConflict):
        forge.as_user("dev-bot").open_proposal(proposal)
    assert forge.bot.fetch_pull_request(number).state is PullState.OPEN


def test_every_port_member_is_exercised_here() -> None:
    source = Path(__file__).read_text()
    members = {n for n, _ in inspect.getmembers(Forge) if not n.startswith("_")}
    assert {"whoami", "requests_made", "close", "merge"} <= members
    missing = {m for m in members if not re.search(rf"\.{m}\b", source)}
    assert not missing
