"""LocalForge: the Forge port over a real local ops repo (local mode)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from opsvault.cli.init import create_ops_repo
from opsvault.errors import (
    ForgeAuthError,
    ForgeConflict,
    ForgeError,
    ForgeNotFound,
    PushRejected,
)
from opsvault.forge.local import LocalForge
from opsvault.forge.types import (
    CommitStatus,
    FileStatus,
    ListState,
    Permission,
    Proposal,
    PullState,
    ReviewState,
    StatusState,
)
from opsvault.git.base import Identity
from opsvault.git.pygit2_repo import Pygit2OpsRepo

T0 = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)
AGENT = Identity("dev-bot", "dev-bot@localhost")


class Clock:
    """A clock tests move by hand; each read also advances it by a second."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def ops(tmp_path: Path) -> Path:
    create_ops_repo(tmp_path / "ops", when=0)
    return tmp_path / "ops"


@pytest.fixture
def repo(ops: Path) -> Pygit2OpsRepo:
    return Pygit2OpsRepo.open(ops)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_forge(repo: Pygit2OpsRepo, clock: Clock) -> Callable[..., LocalForge]:
    def make(user: str = "vault-bot", r: Pygit2OpsRepo | None = None) -> LocalForge:
        return LocalForge(r or repo, user, operator="alice", clock=clock)

    return make


@pytest.fixture
def forge(make_forge: Callable[..., LocalForge]) -> LocalForge:
    return make_forge()


def propose(
    repo: Pygit2OpsRepo,
    branch: str,
    files: dict[str, bytes | None],
    *,
    parent: str = "main",
    author: Identity = AGENT,
) -> str:
    """Commit *files* on *branch* (created off main, or moved on from its tip)."""
    existing = repo.branches(branch).get(branch)
    commit = repo.commit_files(
        existing or repo.resolve(parent), files, f"propose {branch}", author, when=0
    )
    repo.update_ref(f"refs/heads/{branch}", commit, existing)
    return commit


def action(n: int) -> dict[str, bytes | None]:
    return {f"vault/actions/noop-{n}.toml": b'formula = "noop"\ncontext = "test"\n'}


def test_branches_become_pull_requests_numbered_by_name_and_stable(
    repo: Pygit2OpsRepo, make_forge: Callable[..., LocalForge]
) -> None:
    b = propose(repo, "vault/noop-b", action(2))
    propose(repo, "vault/noop-a", action(1))
    propose(repo, "plan/prereqs", {"prerequisites.md": b"# changed\n"})
    propose(repo, "feature/x", {"knowledge/x.md": b"x\n"})  # not a proposal prefix
    repo.update_ref("refs/heads/vault/empty", repo.resolve("main"), None)  # no change

    first = make_forge("vault-bot")
    numbers = {p.head_ref: p.number for p in first.fetch_pull_requests()}
    assert numbers == {"plan/prereqs": 1, "vault/noop-a": 2, "vault/noop-b": 3}

    pr = first.fetch_pull_request(3)
    assert (pr.state, pr.author, pr.head_sha, pr.base_ref) == (
        PullState.OPEN,
        "dev-bot",
        b,
        "main",
    )
    assert pr.base_sha == repo.resolve("main")
    assert pr.title == "propose vault/noop-b"

    propose(repo, "vault/noop-0", action(0))
    other = make_forge("alice")  # another instance, another identity
    again = {p.head_ref: p.number for p in other.fetch_pull_requests()}
    assert again == {**numbers, "vault/noop-0": 4}  # never renumbered


def test_state_lives_in_the_git_dir_as_json(
    repo: Pygit2OpsRepo, forge: LocalForge
) -> None:
    propose(repo, "vault/noop-1", action(1))
    forge.fetch_pull_requests()
    assert forge.state_path == repo.git_dir / "opsvault" / "forge.json"
    data = json.loads(forge.state_path.read_text())
    assert [p["branch"] for p in data["pulls"]] == ["vault/noop-1"]
    assert not [p for p in forge.state_path.parent.iterdir() if p.name.startswith(".")]


def test_listing_is_most_recent_first_and_stops_at_the_watermark(
    repo: Pygit2OpsRepo, forge: LocalForge, clock: Clock
) -> None:
    propose(repo, "vault/noop-1", action(1))
    propose(repo, "vault/noop-2", action(2))
    forge.fetch_pull_requests()
    watermark = clock.now + timedelta(seconds=30)  # a PR updated at it is included
    clock.now += timedelta(minutes=5)
    forge.create_comment(1, "bump")  # #1 is now the most recent
    assert [p.number for p in forge.fetch_pull_requests()] == [1, 2]
    assert [p.number for p in forge.fetch_pull_requests(updated_since=watermark)] == [1]

    clock.now += timedelta(minutes=5)
    mark = clock.now
    assert forge.fetch_pull_requests(updated_since=mark) == []  # idle: nothing
    clock.now += timedelta(minutes=5)
    moved = propose(repo, "vault/noop-2", {"knowledge/more.md": b"more\n"})
    listed = forge.fetch_pull_requests(updated_since=mark)
    assert [(p.number, p.head_sha) for p in listed] == [(2, moved)]


def test_changed_files_are_the_branch_diff_pinned_to_the_head(
    repo: Pygit2OpsRepo, forge: LocalForge
) -> None:
    head = propose(
        repo,
        "vault/noop-1",
        {**action(1), "prerequisites.md": b"# edited\n", "RESOURCES.md": None},
    )
    files = forge.fetch_changed_files(1, head) if forge.fetch_pull_requests() else []
    assert {(f.filename, f.status) for f in files} == {
        ("vault/actions/noop-1.toml", FileStatus.ADDED),
        ("prerequisites.md", FileStatus.CHANGED),
        ("RESOURCES.md", FileStatus.DELETED),
    }
    with pytest.raises(ForgeConflict):
        forge.fetch_changed_files(1, repo.resolve("main"))
    assert forge.fetch_file("vault/actions/noop-1.toml", head).startswith(b"formula")
    with pytest.raises(ForgeNotFound):
        forge.fetch_file("vault/actions/noop-1.toml", "main")
    with pytest.raises(ForgeNotFound):
        forge.fetch_file("x", "no-such-ref")


def test_merge_is_pinned_to_the_head_and_idempotent(
    ops: Path, repo: Pygit2OpsRepo, forge: LocalForge
) -> None:
    old = propose(repo, "vault/noop-1", action(1))
    forge.fetch_pull_requests()
    new = propose(repo, "vault/noop-1", {"knowledge/late.md": b"pushed later\n"})
    with pytest.raises(ForgeConflict, match="head moved"):
        forge.merge(1, old)

    main_before = repo.resolve("main")
    result = forge.merge(1, new)
    assert not result.already_merged
    merge = repo.commit_info("main")
    assert merge.id == result.merge_commit_sha
    assert merge.parents == (main_before, new)
    assert (
        merge.author == merge.committer == Identity("vault-bot", "vault-bot@localhost")
    )
    assert "vault/noop-1" not in repo.branches("vault/")

    pr = forge.fetch_pull_request(1)
    assert (pr.state, pr.merged, pr.merged_by, pr.head_sha) == (
        PullState.CLOSED,
        True,
        "vault-bot",
        new,
    )
    assert pr.merge_commit_sha == result.merge_commit_sha
    # The PR's diff stays what it was, although main now contains it, and its
    # head stays referenced (as on Forgejo) so gc keeps it.
    assert repo.resolve("refs/pull/1/head") == new
    assert {f.filename for f in forge.fetch_changed_files(1, new)} == {
        "vault/actions/noop-1.toml",
        "knowledge/late.md",
    }
    again = forge.merge(1, new)
    assert again.already_merged and again.merge_commit_sha == result.merge_commit_sha
    with pytest.raises(ForgeConflict):
        forge.merge(1, old)
    # The checked-out work tree of main followed.
    assert (ops / "vault/actions/noop-1.toml").is_file()
    assert (ops / "knowledge/late.md").is_file()


def test_merge_leaves_a_dirty_work_tree_alone(
    ops: Path, repo: Pygit2OpsRepo, forge: LocalForge
) -> None:
    head = propose(repo, "plan/prereqs", {"prerequisites.md": b"# planned\n"})
    (ops / "prerequisites.md").write_text("# my local edit\n")
    forge.fetch_pull_requests()
    forge.merge(1, head)
    assert repo.read_file("main", "prerequisites.md") == b"# planned\n"
    assert (ops / "prerequisites.md").read_text() == "# my local edit\n"


def test_merge_refuses_content_conflicts_and_closed_prs(
    repo: Pygit2OpsRepo, forge: LocalForge
) -> None:
    a = propose(repo, "plan/a", {"prerequisites.md": b"# a\n"})
    b = propose(repo, "plan/b", {"prerequisites.md": b"# b\n"})
    forge.fetch_pull_requests()
    forge.merge(1, a)
    with pytest.raises(ForgeConflict, match="cannot merge"):
        forge.merge(2, b)
    assert forge.fetch_pull_request(2).state is PullState.OPEN
    forge.close_pull_request(2)
    with pytest.raises(ForgeConflict, match="closed without merge"):
        forge.merge(2, b)
    with pytest.raises(ForgeNotFound):
        forge.merge(99, b)


class MovingMainRepo(Pygit2OpsRepo):
    """Moves main behind the merger's back once, as a dispatcher's bookkeeping commit would."""

    moved = 0

    def update_ref(self, ref: str, new: str, expected_old: str | None) -> None:
        if ref == "refs/heads/main" and self.moved == 0:
            self.moved += 1
            main = self.resolve("main")
            other = self.commit_files(
                main, {"knowledge/bookkeeping.md": b"x\n"}, "bookkeeping", AGENT
            )
            super().update_ref(ref, other, main)
        super().update_ref(ref, new, expected_old)


def test_merge_retries_when_main_moved_concurrently(
    ops: Path, repo: Pygit2OpsRepo, make_forge: Callable[..., LocalForge]
) -> None:
    head = propose(repo, "vault/noop-1", action(1))
    moving = MovingMainRepo(Pygit2OpsRepo.open(ops)._repo)
    forge = make_forge(r=moving)
    forge.fetch_pull_requests()
    result = forge.merge(1, head)
    assert moving.moved == 1
    assert repo.resolve("main") == result.merge_commit_sha
    tip = repo.commit_info("main")
    assert tip.parents[1] == head
    assert repo.read_file("main", "knowledge/bookkeeping.md") == b"x\n"


def test_two_instances_merging_two_prs_at_once_both_land(
    repo: Pygit2OpsRepo, ops: Path, make_forge: Callable[..., LocalForge]
) -> None:
    heads = [propose(repo, f"vault/noop-{n}", action(n)) for n in (1, 2)]
    make_forge().fetch_pull_requests()
    forges = [make_forge(r=Pygit2OpsRepo.open(ops)) for _ in heads]
    errors: list[BaseException] = []

    def run(forge: LocalForge, number: int, head: str) -> None:
        try:
            forge.merge(number, head)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(f, n, h))
        for f, n, h in zip(forges, (1, 2), heads, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for head in heads:
        assert repo.is_ancestor(head, "main")
    prs = make_forge().fetch_pull_requests(ListState.CLOSED)
    assert sorted((p.number, p.merged) for p in prs) == [(1, True), (2, True)]


def test_a_merge_made_by_hand_is_attributed_to_its_merge_commit(
    repo: Pygit2OpsRepo, forge: LocalForge
) -> None:
    head = propose(repo, "vault/noop-1", action(1))
    forge.fetch_pull_requests()
    main = repo.resolve("main")
    merge = repo.merge(main, head, "merge by hand", Identity("alice", "a@x"))
    repo.update_ref("refs/heads/main", merge, main)
    pr = forge.fetch_pull_request(1)
    assert (pr.merged, pr.merged_by, pr.merge_commit_sha) == (True, "alice", merge)


def test_a_deleted_branch_closes_its_pull_request(
    repo: Pygit2OpsRepo, forge: LocalForge
) -> None:
    propose(repo, "vault/noop-1", action(1))
    forge.fetch_pull_requests()
    repo.delete_branch("vault/noop-1")
    pr = forge.fetch_pull_request(1)
    assert (pr.state, pr.merged) == (PullState.CLOSED, False)


def test_close_and_reject_delete_the_branch_and_keep_the_record(
    repo: Pygit2OpsRepo, forge: LocalForge
) -> None:
    head = propose(repo, "vault/noop-1", action(1))
    forge.fetch_pull_requests()
    pr = forge.reject(1, "not now")
    assert (pr.state, pr.merged, pr.head_sha) == (PullState.CLOSED, False, head)
    assert "vault/noop-1" not in repo.branches("vault/")
    assert [c.body for c in forge.fetch_comments(1)] == ["not now"]
    assert forge.close_pull_request(1).closed_at == pr.closed_at  # no-op
    # Recreating the branch at the same head does not reopen the proposal.
    repo.update_ref("refs/heads/vault/noop-1", head, None)
    assert forge.fetch_pull_requests() == []


def test_comments_upsert_keeps_one_of_ours(
    repo: Pygit2OpsRepo, make_forge: Callable[..., LocalForge]
) -> None:
    propose(repo, "vault/noop-1", action(1))
    bot, alice = make_forge("vault-bot"), make_forge("alice")
    bot.fetch_pull_requests()
    marker = "<!-- opsvault:tier -->"
    alice.create_comment(1, f"{marker}\nquoting the bot")  # not ours: never matches
    first = bot.upsert_comment(1, marker, "tier: low")
    assert first.body == f"{marker}\ntier: low"
    assert bot.upsert_comment(1, marker, "tier: low") == first  # unchanged: no write
    second = bot.upsert_comment(1, marker, "tier: medium")
    assert second.id == first.id and second.body.endswith("medium")
    assert [(c.author, c.body.splitlines()[-1]) for c in bot.fetch_comments(1)] == [
        ("alice", "quoting the bot"),
        ("vault-bot", "tier: medium"),
    ]
    with pytest.raises(ForgeAuthError):
        alice.edit_comment(first.id, "hijack")
    with pytest.raises(ForgeNotFound):
        bot.edit_comment(999, "x")
    with pytest.raises(ForgeNotFound):
        bot.create_comment(42, "no such PR")


def test_labels_are_ensured_added_and_removed(
    repo: Pygit2OpsRepo, forge: LocalForge
) -> None:
    propose(repo, "vault/noop-1", action(1))
    forge.fetch_pull_requests()
    low = forge.ensure_label("vault/low", "00ff00", "low tier")
    assert forge.ensure_label("vault/low", "ffffff") == low
    added = forge.add_labels(1, ["vault/low", "unknown"])  # unknown ignored
    assert [x.name for x in added] == ["vault/low"]
    assert forge.fetch_pull_request(1).labels == ("vault/low",)
    forge.remove_label(1, "vault/low")
    forge.remove_label(1, "absent")
    assert forge.fetch_pull_request(1).labels == ()


def test_commit_statuses_keep_the_latest_per_context(
    repo: Pygit2OpsRepo, forge: LocalForge
) -> None:
    head = propose(repo, "vault/noop-1", action(1))
    forge.set_commit_status(head, CommitStatus(StatusState.PENDING, "vault/tier"))
    forge.set_commit_status(
        head, CommitStatus(StatusState.SUCCESS, "vault/tier", "low")
    )
    forge.set_commit_status(head, CommitStatus(StatusState.SUCCESS, "ci"))
    assert forge.fetch_commit_statuses(head) == [
        CommitStatus(StatusState.SUCCESS, "ci"),
        CommitStatus(StatusState.SUCCESS, "vault/tier", "low"),
    ]
    with pytest.raises(ForgeNotFound):
        forge.set_commit_status("0" * 40, CommitStatus(StatusState.SUCCESS, "x"))


def test_approve_records_a_review_but_never_by_the_proposer(
    repo: Pygit2OpsRepo, make_forge: Callable[..., LocalForge]
) -> None:
    head = propose(repo, "vault/noop-1", action(1))
    alice = make_forge("alice")
    alice.fetch_pull_requests()
    review = alice.approve(1, head, "lgtm")
    assert (review.reviewer, review.state, review.commit_id) == (
        "alice",
        ReviewState.APPROVED,
        head,
    )
    assert alice.approve(1, head) == review  # once per head
    with pytest.raises(ForgeConflict, match="cannot approve"):
        make_forge("dev-bot").approve(1, head)
    moved = propose(repo, "vault/noop-1", {"knowledge/x.md": b"x\n"})
    with pytest.raises(ForgeConflict):
        alice.approve(1, head)
    (old,) = alice.fetch_reviews(1)
    assert old.stale and old.commit_id == head != moved


def test_open_proposal_creates_the_branch_once(
    repo: Pygit2OpsRepo, forge: LocalForge
) -> None:
    proposal = Proposal(
        branch="plan/prereqs",
        base="main",
        title="planner: update prerequisites",
        body="two items done",
        message="planner: update prerequisites",
        files=(("prerequisites.md", b"# updated\n"),),
    )
    pr = forge.open_proposal(proposal)
    assert (pr.number, pr.title, pr.body, pr.author) == (
        1,
        "planner: update prerequisites",
        "two items done",
        "vault-bot",
    )
    assert forge.open_proposal(proposal) == pr  # reused
    with pytest.raises(ForgeConflict, match="other content"):
        forge.open_proposal(replace(proposal, files=(("prerequisites.md", b"#\n"),)))
    with pytest.raises(ForgeError):
        forge.open_proposal(replace(proposal, branch="feature/x"))


def test_people_issues_and_protection_in_local_mode(forge: LocalForge) -> None:
    assert forge.fetch_permission("alice") is Permission.ADMIN  # the operator
    assert forge.fetch_permission("vault-bot") is Permission.READ
    assert not forge.is_team_member("acme/ops-admins", "alice")
    assert forge.fetch_issues() == []
    assert forge.fetch_branch_protection("main") is None


def test_corrupt_state_is_a_clear_forge_error(forge: LocalForge) -> None:
    forge.state_path.parent.mkdir(parents=True, exist_ok=True)
    forge.state_path.write_text("{not json")
    with pytest.raises(ForgeError, match="unreadable local forge state"):
        forge.fetch_pull_requests()


def test_pygit2_repo_reads_git_config_and_git_dir(
    ops: Path, repo: Pygit2OpsRepo
) -> None:
    assert repo.git_dir == ops / ".git"
    assert repo.config_value("opsvault.operator") is None
    with (ops / ".git" / "config").open("a") as fh:
        fh.write("[opsvault]\n\toperator = alice\n")
    assert Pygit2OpsRepo.open(ops).config_value("opsvault.operator") == "alice"


def test_push_rejected_is_what_a_lost_ref_race_raises(repo: Pygit2OpsRepo) -> None:
    # The merge retry relies on update_ref raising PushRejected, nothing broader.
    with pytest.raises(PushRejected):
        repo.update_ref("refs/heads/main", repo.resolve("main"), "0" * 40)
