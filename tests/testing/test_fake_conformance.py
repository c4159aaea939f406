"""The fake Forgejo reproduces each behaviour of API-NOTES §17 (Forgejo v15.0.3).

One test per behaviour; each docstring names the Forgejo source it mirrors
(paths in the Forgejo tree at tag v15.0.3). Time moves on the fake's injected
clock, never by sleeping.
"""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pygit2
import pytest

from testing.fake_forgejo.model import BranchProtection
from testing.fake_forgejo.protection import PUSHER_ENV
from testing.fake_forgejo.pytest_plugin import assert_no_violations
from testing.fake_forgejo.server import FakeForgejo

REPO = "acme/ops"
API = f"/repos/{REPO}"
T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@dataclass
class World:
    forge: FakeForgejo
    now: list[datetime]
    http: dict[str, httpx.Client]

    def later(self, seconds: float = 10) -> None:
        self.now[0] += timedelta(seconds=seconds)

    def propose(
        self, branch: str, files: dict[str, str], author: str = "mallory"
    ) -> int:
        self.forge.push(REPO, branch, files, author=author, message=f"on {branch}")
        return self.forge.open_pull(REPO, head=branch, title=branch, author=author)

    def pull(self, number: int, as_user: str = "alice") -> dict[str, Any]:
        answer = self.http[as_user].get(f"{API}/pulls/{number}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def merge(
        self, number: int, as_user: str = "alice", **extra: object
    ) -> httpx.Response:
        return self.http[as_user].post(
            f"{API}/pulls/{number}/merge", json={"Do": "merge", **extra}
        )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    now = [T0]
    with FakeForgejo(
        tmp_path / "forge", clock=lambda: now[0], checking_seconds=3
    ) as forge:
        tokens = {
            "alice": forge.add_user("alice"),
            "bob": forge.add_user("bob"),
            "mallory": forge.add_user("mallory"),
            "root": forge.add_user("root", is_admin=True),
        }
        forge.add_org("acme")
        forge.create_repo(
            "acme", "ops", {"README.md": "hello\n", "vault/policy.toml": "a = 1\n"}
        )
        forge.add_collaborator(REPO, "alice", "admin")
        forge.add_collaborator(REPO, "bob", "write")
        forge.add_collaborator(REPO, "mallory", "write")
        clients = {
            user: httpx.Client(
                base_url=forge.api_url, headers={"Authorization": f"token {token}"}
            )
            for user, token in tokens.items()
        }
        try:
            yield World(forge, now, clients)
        finally:
            for client in clients.values():
                client.close()
    assert_no_violations(forge)


# -- pull requests -------------------------------------------------------------


def test_listed_prs_have_no_merger_the_single_pr_has(world: World) -> None:
    """routers/api/v1/repo/pull.go:133-185; services/convert/pull.go:263-267; models/issues/pull.go:257-269,681."""
    number = world.propose("p", {"a.txt": "a\n"})
    world.later()
    assert world.merge(number).status_code == 200
    listed = world.http["alice"].get(f"{API}/pulls", params={"state": "closed"}).json()
    assert listed[0]["merged"] is True and listed[0]["merged_by"] is None
    assert world.pull(number)["merged_by"]["login"] == "alice"


def test_head_sha_of_a_merged_pr_is_the_live_branch_tip(world: World) -> None:
    """services/convert/pull.go:200-233."""
    number = world.propose("p", {"a.txt": "a\n"})
    world.later()
    merged_head = world.pull(number)["head"]["sha"]
    assert world.merge(number).status_code == 200
    moved = world.forge.push(REPO, "p", {"a.txt": "b\n"}, author="mallory")
    pr = world.pull(number)
    assert pr["merged"] is True and pr["head"]["sha"] == moved != merged_head


def test_a_push_to_the_head_makes_the_pr_checking_and_merge_405(world: World) -> None:
    """services/pull/check.go:45-56,96-98; services/pull/merge.go:251-253; routers/api/v1/repo/pull.go:945."""
    number = world.propose("p", {"a.txt": "a\n"})
    assert world.pull(number)["mergeable"] is False  # a new PR is checked too
    world.later()
    world.forge.push(REPO, "p", {"a.txt": "b\n"}, author="mallory")
    assert world.pull(number)["mergeable"] is False
    refused = world.merge(number)
    assert refused.status_code == 405
    assert refused.json()["message"] == "Please try again later"
    world.later(3)
    assert world.pull(number)["mergeable"] is True
    assert world.merge(number).status_code == 200


def test_a_merge_makes_the_other_prs_on_that_base_checking(world: World) -> None:
    """services/pull/pull.go:355-372 (TestPullRequest on the base), services/pull/check.go:45-56."""
    first = world.propose("p1", {"a.txt": "a\n"})
    second = world.propose("p2", {"b.txt": "b\n"})
    world.later()
    assert world.pull(second)["mergeable"] is True
    assert world.merge(first).status_code == 200
    assert world.pull(second)["mergeable"] is False
    assert world.merge(second).json()["message"] == "Please try again later"
    world.later()
    assert world.merge(second).status_code == 200


def test_a_closed_pr_keeps_its_head_ref_and_updated_at(world: World) -> None:
    """services/pull/pull.go:314-336 (only unmerged, open PRs are synced)."""
    number = world.propose("p", {"a.txt": "a\n"})
    old_head = world.pull(number)["head"]["sha"]
    closed = world.http["mallory"].patch(
        f"{API}/pulls/{number}", json={"state": "closed"}
    )
    assert closed.status_code == 201
    stamp = closed.json()["updated_at"]
    world.later(60)
    world.forge.push(REPO, "p", {"a.txt": "b\n"}, author="mallory")
    pr = world.pull(number)
    git = world.forge.repo(REPO).git
    assert git.ref(f"refs/pull/{number}/head") == old_head
    assert pr["updated_at"] == stamp


def test_the_listing_syncs_each_pr_with_its_pushed_head(world: World) -> None:
    """services/pull/pull.go:303-336 (a push re-stamps updated_at); routers/api/v1/repo/pull.go:106-185 (list by recentupdate).

    The listing reads every branch once; each PR still shows its own live head
    and only the pushed one moves up.
    """
    numbers = [world.propose(f"p{i}", {f"{i}.txt": "a\n"}) for i in range(3)]
    world.later(60)
    world.forge.push(REPO, "p0", {"0.txt": "b\n"}, author="mallory")
    listed = world.http["alice"].get(
        f"{API}/pulls", params={"state": "all", "sort": "recentupdate"}
    )
    assert listed.status_code == 200
    git = world.forge.repo(REPO).git
    assert [p["number"] for p in listed.json()] == [numbers[0], numbers[2], numbers[1]]
    for pr in listed.json():
        assert pr["head"]["sha"] == git.tip(pr["head"]["ref"])
        assert pr["base"]["sha"] == git.tip("main")
    assert listed.json()[0]["updated_at"] == "2026-11-21T12:01:00Z"
    assert git.ref(f"refs/pull/{numbers[0]}/head") == git.tip("p0")


def test_files_follow_refs_pull_head_which_lags_a_push(world: World) -> None:
    """routers/api/v1/repo/pull.go:1588-1631 (the diff is computed at refs/pull/N/head)."""
    number = world.propose("p", {"a.txt": "a\n"})
    world.forge.push(REPO, "p", {"b.txt": "b\n"}, author="mallory")
    files = world.http["alice"].get(f"{API}/pulls/{number}/files").json()
    assert [f["filename"] for f in files] == ["a.txt"]  # not yet synced
    head = world.pull(number)["head"]["sha"]  # Forgejo's queue has run
    files = world.http["alice"].get(f"{API}/pulls/{number}/files").json()
    assert [f["filename"] for f in files] == ["a.txt", "b.txt"]
    assert files[0]["contents_url"].endswith(f"?ref={head}")


def _review(world: World, number: int, user: str, event: str, commit: str) -> None:
    answer = world.http[user].post(
        f"{API}/pulls/{number}/reviews",
        json={"event": event, "body": "r", "commit_id": commit},
    )
    assert answer.status_code == 200, answer.text


def _reviews(world: World, number: int) -> list[dict[str, object]]:
    return list(world.http["alice"].get(f"{API}/pulls/{number}/reviews").json())


def test_reviews_go_stale_only_when_the_diff_changes(world: World) -> None:
    """services/pull/pull.go:381-415 (CheckIfDiffDiffers, MarkReviewsAsStale/NotStale); services/pull/review.go:295-318."""
    world.forge.protect_branch(
        REPO, BranchProtection("main", dismiss_stale_approvals=True)
    )
    number = world.propose("p", {"a.txt": "a\n"})
    head = str(world.pull(number)["head"]["sha"])
    _review(world, number, "alice", "APPROVED", head)
    _review(world, number, "bob", "REQUEST_CHANGES", head)
    world.forge.push(REPO, "p", {}, author="mallory", message="empty commit")
    world.pull(number)
    # Same diff: nothing stale, REQUEST_CHANGES kept, approval kept.
    assert [(r["stale"], r["dismissed"]) for r in _reviews(world, number)] == [
        (False, False),
        (False, False),
    ]


def test_dismiss_stale_approvals_dismisses_every_approval_on_a_diff_change(
    world: World,
) -> None:
    """services/pull/review.go:348-389 (DismissApprovalReviews); services/pull/pull.go:395-405."""
    world.forge.protect_branch(
        REPO, BranchProtection("main", dismiss_stale_approvals=True)
    )
    number = world.propose("p", {"a.txt": "a\n"})
    first = str(world.pull(number)["head"]["sha"])
    _review(world, number, "alice", "APPROVED", first)
    second = world.forge.push(REPO, "p", {"b.txt": "b\n"}, author="mallory")
    world.pull(number)
    _review(world, number, "bob", "APPROVED", second)  # at the new head
    third = world.forge.push(REPO, "p", {"c.txt": "c\n"}, author="mallory")
    world.pull(number)
    reviews = _reviews(world, number)
    assert [(r["commit_id"], r["dismissed"], r["stale"]) for r in reviews] == [
        (first, True, True),
        (second, True, True),  # all approvals, not only those at older commits
    ]
    assert third != second


def test_a_new_review_clears_official_on_the_reviewers_older_ones(world: World) -> None:
    """models/issues/review.go:422-430,452-458."""
    number = world.propose("p", {"a.txt": "a\n"})
    head = str(world.pull(number)["head"]["sha"])
    _review(world, number, "alice", "APPROVED", head)
    _review(world, number, "alice", "REQUEST_CHANGES", head)
    assert [r["official"] for r in _reviews(world, number)] == [False, True]


def test_patch_state_of_a_merged_pr_is_412(world: World) -> None:
    """routers/api/v1/repo/pull.go:738-742."""
    number = world.propose("p", {"a.txt": "a\n"})
    world.later()
    assert world.merge(number).status_code == 200
    for state in ("closed", "open"):
        answer = world.http["alice"].patch(
            f"{API}/pulls/{number}", json={"state": state}
        )
        assert answer.status_code == 412


def test_wip_prefixes_are_wip_and_bracket_wip_only(world: World) -> None:
    """modules/setting/repository.go:231; models/issues/pull.go:799-806 (case-insensitive prefix)."""
    results = {}
    for title in ("WIP: a", "[wip] b", "Draft: c", "[Draft] d"):
        branch = title.split()[-1]
        world.forge.push(REPO, branch, {f"{branch}.txt": "x\n"}, author="mallory")
        number = world.forge.open_pull(REPO, head=branch, title=title, author="mallory")
        world.later()
        results[title] = (world.pull(number)["draft"], world.merge(number).status_code)
    assert results == {
        "WIP: a": (True, 405),
        "[wip] b": (True, 405),
        "Draft: c": (False, 200),
        "[Draft] d": (False, 200),
    }


# -- merges that are not API merges --------------------------------------------


def test_auto_merge_runs_unpinned_as_whoever_scheduled_it(world: World) -> None:
    """services/automerge/automerge.go:30-70,206-231; routers/api/v1/repo/pull.go (merge_when_checks_succeed → 201)."""
    world.forge.protect_branch(
        REPO,
        BranchProtection(
            "main", enable_status_check=True, status_check_contexts=("ci",)
        ),
    )
    number = world.propose("p", {"a.txt": "a\n"})
    world.later()
    assert world.merge(number, merge_when_checks_succeed=True).status_code == 201
    pushed = world.forge.push(REPO, "p", {"a.txt": "changed\n"}, author="mallory")
    world.pull(number)  # Forgejo notices the push and re-checks
    world.later()
    assert world.pull(number)["merged"] is False  # waits for the required status
    status = world.http["bob"].post(
        f"{API}/statuses/{pushed}", json={"state": "success", "context": "ci"}
    )
    assert status.status_code == 201
    pr = world.pull(number)
    assert pr["merged"] is True and pr["merged_by"]["login"] == "alice"
    git = world.forge.repo(REPO).git
    assert str(git.commit_info(str(pr["merge_commit_sha"])).parent_ids[1]) == pushed


def test_mark_as_merged_takes_any_commit_on_the_base(world: World) -> None:
    """services/pull/merge_manual.go:23-86; services/pull/check.go:96-98 (nothing else is checked)."""
    number = world.propose("p", {"a.txt": "a\n"})
    unrelated = world.forge.repo(REPO).git.tip("main")
    assert unrelated is not None
    wrong = world.merge(number, Do="manually-merged", MergeCommitID="0" * 40)
    assert wrong.status_code == 409
    marked = world.merge(number, Do="manually-merged", MergeCommitID=unrelated)
    # Even while checking, and for a commit without the PR.
    assert marked.status_code == 200
    pr = world.pull(number)
    assert pr["merged"] is True and pr["merge_commit_sha"] == unrelated
    assert pr["merged_by"]["login"] == "alice"
    author = world.forge.repo(REPO).git.commit_info(unrelated).author
    assert pr["merged_at"] == datetime.fromtimestamp(
        author.time, UTC
    ).isoformat().replace("+00:00", "Z")


def test_an_auto_detected_merge_names_the_owner_of_the_author_email(
    world: World,
) -> None:
    """services/pull/merge_manual.go:89-132 (GetUserByEmail of the commit author, else the repo owner); services/pull/check.go:198-250."""
    world.forge.repo(REPO).autodetect_manual_merge = True
    number = world.propose("p", {"a.txt": "a\n"})
    head = str(world.pull(number)["head"]["sha"])
    forged = pygit2.Signature("anyone", "root@example.invalid", 1795000000, 0)
    sha = world.forge.repo(REPO).git.merge("main", head, "local merge", forged)
    pr = world.pull(number)
    assert pr["merged"] is True and pr["merged_by"]["login"] == "root"
    assert pr["merge_commit_sha"] == sha


# -- branch protection on git pushes -------------------------------------------


def _clone(world: World, tmp_path: Path) -> Path:
    work = tmp_path / "work"
    subprocess.run(
        ["git", "clone", "-q", str(world.forge.repo(REPO).git.path), str(work)],
        check=True,
    )
    for key, value in (("user.name", "t"), ("user.email", "t@example.invalid")):
        subprocess.run(["git", "-C", str(work), "config", key, value], check=True)
    return work


def _push(
    work: Path, pusher: str, path: str, *, force: bool = False
) -> subprocess.CompletedProcess[str]:
    target = work / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(f"{path} by {pusher}\n")
    subprocess.run(["git", "-C", str(work), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(work), "commit", "-qm", path], check=True)
    env = {**os.environ, PUSHER_ENV: pusher}
    argv = ["git", "-C", str(work), "push", "-q", "origin", "HEAD:main"]
    if force:
        argv.insert(4, "--force")
    return subprocess.run(argv, capture_output=True, text=True, env=env, check=False)


def test_pre_receive_refuses_protected_files_even_for_a_whitelisted_pusher(
    world: World, tmp_path: Path
) -> None:
    """routers/private/hook_pre_receive.go:329-378 (protected files checked before the whitelist); models/git/protected_branch.go:205-227."""
    world.forge.protect_branch(
        REPO,
        BranchProtection(
            "main",
            enable_push=True,
            enable_push_whitelist=True,
            push_whitelist_usernames=("bob",),
            protected_file_patterns="vault/policy.toml;vault/formulas/**",
            unprotected_file_patterns="notes/**",
        ),
    )
    work = _clone(world, tmp_path)
    refused = _push(work, "bob", "vault/formulas/x.toml")
    assert refused.returncode != 0
    assert "protected from changing file vault/formulas/x.toml" in refused.stderr
    subprocess.run(
        ["git", "-C", str(work), "reset", "-q", "--hard", "origin/main"], check=True
    )
    assert _push(work, "bob", "vault/running/x.toml").returncode == 0  # whitelisted
    outsider = _push(work, "mallory", "vault/fired/y.toml")
    assert outsider.returncode != 0 and "Not allowed to push" in outsider.stderr
    subprocess.run(
        ["git", "-C", str(work), "reset", "-q", "--hard", "origin/main"], check=True
    )
    # Unprotected files only.
    assert _push(work, "mallory", "notes/z.md").returncode == 0
    subprocess.run(
        ["git", "-C", str(work), "reset", "-q", "--hard", "HEAD~2"], check=True
    )
    forced = _push(work, "bob", "other.txt", force=True)
    assert forced.returncode != 0 and "force push" in forced.stderr


def test_protected_file_globs_treat_dot_as_a_separator(
    world: World, tmp_path: Path
) -> None:
    """models/git/protected_branch.go:214-227 (glob.Compile(expr, '.', '/'), lower-cased)."""
    world.forge.protect_branch(
        REPO,
        BranchProtection(
            "main",
            enable_push=True,
            protected_file_patterns="vault/*;Docs/**",
        ),
    )
    work = _clone(world, tmp_path)
    assert _push(work, "bob", "vault/x.toml").returncode == 0  # `*` stops at "."
    assert _push(work, "bob", "docs/a.md").returncode != 0  # patterns are lower-cased


def test_branch_protection_lists_only_readers_and_teams_with_access(
    world: World,
) -> None:
    """services/convert/convert.go:115-188 (ToBranchProtection, getWhitelistEntities); models/perm/access/repo_permission.go:441-475 (GetRepoReaders); models/organization/team_repo.go:71-80."""
    world.forge.add_user("gone")  # a user who has no access to the repository
    world.forge.add_team("acme", "admins", "write", members=["alice"], repos=[REPO])
    world.forge.add_team("acme", "elsewhere", "write", members=["bob"], repos=[])
    world.forge.protect_branch(
        REPO,
        BranchProtection(
            "main",
            enable_push=True,
            enable_push_whitelist=True,
            push_whitelist_usernames=("mallory", "gone", "bob"),
            push_whitelist_teams=("elsewhere", "admins"),
            approvals_whitelist_teams=("admins",),
        ),
    )
    rule = world.http["alice"].get(f"{API}/branch_protections/main").json()
    # database order of the readers (by id), never the order they were given in
    assert rule["push_whitelist_usernames"] == ["bob", "mallory"]
    assert rule["push_whitelist_teams"] == ["admins"]  # no access: not listed
    assert rule["approvals_whitelist_teams"] == ["admins"]
    assert rule["rule_name"] == rule["branch_name"] == "main"


def test_a_glob_rule_has_an_empty_branch_name(world: World) -> None:
    """services/convert/convert.go:154-157; models/git/protected_branch.go:72-79 (IsRuleNameSpecial: gobwas syntax.Special)."""
    world.forge.protect_branch(REPO, BranchProtection("release/*"))
    rules = world.http["alice"].get(f"{API}/branch_protections").json()
    assert [(r["rule_name"], r["branch_name"]) for r in rules] == [("release/*", "")]


def test_editing_a_rule_changes_only_what_is_sent(world: World) -> None:
    """routers/api/v1/repo/branch.go:756-1000 (EditBranchProtection): enable_push false also drops the whitelist."""
    world.forge.protect_branch(
        REPO,
        BranchProtection(
            "main",
            enable_push=True,
            enable_push_whitelist=True,
            push_whitelist_usernames=("bob",),
            dismiss_stale_approvals=True,
            required_approvals=1,
        ),
    )
    url = f"{API}/branch_protections/main"
    loosened = world.http["alice"].patch(url, json={"enable_push_whitelist": True})
    assert loosened.status_code == 200
    # enable_push_whitelist alone changes nothing: it is read only with enable_push
    assert loosened.json()["enable_push_whitelist"] is True
    off = (
        world.http["alice"]
        .patch(url, json={"enable_push": False, "required_approvals": -1})
        .json()
    )
    assert (off["enable_push"], off["enable_push_whitelist"]) == (False, False)
    assert off["required_approvals"] == 1 and off["dismiss_stale_approvals"] is True
    again = (
        world.http["alice"]
        .patch(url, json={"enable_push": True, "dismiss_stale_approvals": False})
        .json()
    )
    assert (again["enable_push"], again["enable_push_whitelist"]) == (True, False)
    assert again["push_whitelist_usernames"] == ["bob"]
    assert world.http["bob"].patch(url, json={"enable_push": True}).status_code == 403


# -- labels ----------------------------------------------------------------------


def test_org_labels_resolve_and_exclusive_scopes_drop_siblings(world: World) -> None:
    """routers/api/v1/repo/issue_label.go:378-393; models/issues/issue_label.go:66-85; models/issues/label.go:194-203."""
    world.forge.add_org_label("acme", "kind/bug", exclusive=True)
    world.forge.add_org_label("acme", "kind/feature", exclusive=True)
    world.forge.add_label(REPO, "kind-free")
    number = world.propose("p", {"a.txt": "a\n"})
    url = f"{API}/issues/{number}/labels"
    world.http["alice"].post(url, json={"labels": ["kind/bug", "kind-free", "nope"]})
    after = world.http["alice"].post(url, json={"labels": ["kind/feature"]}).json()
    assert sorted(label["name"] for label in after) == ["kind-free", "kind/feature"]


def test_removing_a_label_tries_the_name_before_the_id(world: World) -> None:
    """routers/api/v1/repo/issue_label.go:192-199."""
    number = world.propose("p", {"a.txt": "a\n"})
    plain = world.forge.add_label(REPO, "plain")
    numeric = world.forge.add_label(REPO, str(plain))  # named like the other's id
    url = f"{API}/issues/{number}/labels"
    world.http["alice"].post(url, json={"labels": [plain, numeric]})
    assert world.http["alice"].delete(f"{url}/{plain}").status_code == 204
    left = world.http["alice"].get(url).json()
    assert [label["name"] for label in left] == ["plain"]  # the name won


# -- statuses and contents ---------------------------------------------------------


def test_combined_status_ranks_warning_below_pending(world: World) -> None:
    """modules/structs/commit_status.go:23-29; services/convert/status.go:46-61; routers/api/v1/repo/status.go:281-283; models/git/commit_status.go:411-413."""
    sha = world.forge.repo(REPO).git.tip("main")
    empty = world.http["alice"].get(f"{API}/commits/{sha}/status").json()
    assert empty["state"] == "" and empty["total_count"] == 0 and empty["sha"] == ""
    post = world.http["alice"].post
    post(
        f"{API}/statuses/{sha}",
        json={"state": "pending", "context": " a ", "description": " d "},
    )
    post(f"{API}/statuses/{sha}", json={"state": "warning", "context": "b"})
    combined = world.http["alice"].get(f"{API}/commits/{sha}/status").json()
    assert combined["state"] == "warning"
    assert {s["context"] for s in combined["statuses"]} == {"a", "b"}
    assert [s["description"] for s in combined["statuses"] if s["context"] == "a"] == [
        "d"
    ]
    post(f"{API}/statuses/{sha}", json={"state": "error", "context": "c"})
    assert (
        world.http["alice"].get(f"{API}/commits/{sha}/status").json()["state"]
        == "failure"
    )


def test_contents_of_symlinks_and_blobs_above_10_mib(world: World) -> None:
    """services/repository/files/content.go:206-213,277."""
    git = world.forge.repo(REPO).git
    index = pygit2.Index()
    index.read_tree(git.commit_info(str(git.tip("main"))).tree)
    link = git.repo.create_blob(b"README.md")
    index.add(pygit2.IndexEntry("link", link, pygit2.enums.FileMode.LINK))
    big = git.repo.create_blob(b"x" * (10 * 1024 * 1024 + 1))
    index.add(pygit2.IndexEntry("big.bin", big, pygit2.enums.FileMode.BLOB))
    tree = index.write_tree(git.repo)
    sig = pygit2.Signature("t", "t@example.invalid", 1795000000, 0)
    main = git.tip("main")
    assert main is not None
    sha = git.repo.create_commit(None, sig, sig, "files", tree, [pygit2.Oid(hex=main)])
    git.set_ref("refs/heads/main", str(sha))
    shown = world.http["alice"].get(f"{API}/contents/link").json()
    assert (shown["type"], shown["target"], shown["content"]) == (
        "symlink",
        "README.md",
        None,
    )
    large = world.http["alice"].get(f"{API}/contents/big.bin").json()
    assert (large["type"], large["content"], large["size"]) == (
        "file",
        "",
        10 * 1024 * 1024 + 1,
    )
    raw = world.http["alice"].get(f"{API}/raw/big.bin")
    assert len(raw.content) == 10 * 1024 * 1024 + 1


def test_change_files_writes_several_files_in_one_commit(world: World) -> None:
    """routers/api/v1/api.go:1387 (POST /repos/{o}/{r}/contents, ChangeFiles); services/repository/files/update.go."""
    readme = world.http["alice"].get(f"{API}/contents/README.md").json()
    body = {
        "new_branch": "multi",
        "message": "two files",
        "files": [
            {
                "operation": "create",
                "path": "n/a.txt",
                "content": base64.b64encode(b"a").decode(),
            },
            {
                "operation": "update",
                "path": "README.md",
                "sha": readme["sha"],
                "content": base64.b64encode(b"b").decode(),
            },
            {"operation": "delete", "path": "vault/policy.toml"},
        ],
    }
    answer = world.http["alice"].post(f"{API}/contents", json=body)
    assert answer.status_code == 201, answer.text
    data = answer.json()
    git = world.forge.repo(REPO).git
    commit = git.commit_info(data["commit"]["sha"])
    assert git.tip("multi") == data["commit"]["sha"] and len(commit.parents) == 1
    assert [f and f["path"] for f in data["files"]] == ["n/a.txt", "README.md", None]
    assert git.entry(data["commit"]["sha"], "vault/policy.toml") is None
    direct = world.http["alice"].post(
        f"{API}/contents", json={**body, "new_branch": ""}
    )
    assert direct.status_code == 422  # an update without sha needs new_branch
