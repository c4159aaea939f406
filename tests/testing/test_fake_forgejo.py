from __future__ import annotations

import base64
import filecmp
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pygit2
import pytest

from testing.fake_forgejo.model import BranchProtection
from testing.fake_forgejo.pytest_plugin import assert_no_violations
from testing.fake_forgejo.server import FakeForgejo
from testing.fake_forgejo.validation import SWAGGER_PATH

SHARED_SWAGGER = (
    Path(__file__).parents[2] / ".." / "shared" / "forgejo" / "swagger.v1.json"
)
REPO = "ops/vault"
API = f"/repos/{REPO}"


@dataclass
class World:
    forge: FakeForgejo
    bot: httpx.Client
    alice: httpx.Client
    root: httpx.Client
    outsider: httpx.Client


def _client(forge: FakeForgejo, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=forge.api_url, headers={"Authorization": f"token {token}"}
    )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with FakeForgejo(tmp_path / "forge") as forge:
        bot = forge.add_user("opsvault-bot", is_bot=True)
        alice = forge.add_user("alice")
        root = forge.add_user("root", is_admin=True)
        outsider = forge.add_user("mallory")
        forge.add_org("ops")
        forge.add_team(
            "ops", "operators", "write", members=["alice", "opsvault-bot"], repos=[REPO]
        )
        forge.create_repo(
            "ops", "vault", {"README.md": "hello\n", "vault/policy.toml": "a = 1\n"}
        )
        clients = [_client(forge, t) for t in (bot, alice, root, outsider)]
        try:
            yield World(forge, *clients)
        finally:
            for client in clients:
                client.close()
    assert_no_violations(forge)


def _propose(
    world: World, branch: str = "req/restart", path: str = "vault/actions/a.toml"
) -> int:
    content = base64.b64encode(b"[action]\nname = 'restart'\n").decode()
    created = world.bot.post(
        f"{API}/contents/{path}", json={"content": content, "new_branch": branch}
    )
    assert created.status_code == 201, created.text
    pr = world.bot.post(
        f"{API}/pulls", json={"head": branch, "base": "main", "title": "restart web"}
    )
    assert pr.status_code == 201, pr.text
    world.forge.settle()  # wait for Forgejo's mergeability check
    return int(pr.json()["number"])


def test_vendored_swagger_matches_shared_copy() -> None:
    if not SHARED_SWAGGER.exists():
        pytest.skip(
            "shared/forgejo/swagger.v1.json is not checked out next to this repository"
        )
    assert filecmp.cmp(SWAGGER_PATH, SHARED_SWAGGER, shallow=False)


def test_version_settings_and_auth(world: World) -> None:
    assert world.bot.get("/version").json() == {"version": "15.0.3+gitea-1.22.0"}
    settings = httpx.get(f"{world.forge.api_url}/settings/api").json()
    assert settings["max_response_items"] == 50
    unknown = httpx.get(
        f"{world.forge.api_url}{API}/pulls", headers={"Authorization": "token nope"}
    )
    assert unknown.status_code == 401
    me = world.root.get("/user").json()
    assert me["login"] == "root" and me["is_admin"] is True
    # Hidden from non-admins.
    assert world.alice.get("/users/root").json()["is_admin"] is False


def test_merge_with_matching_pin_creates_real_merge_commit(world: World) -> None:
    number = _propose(world)
    pr = world.alice.get(f"{API}/pulls/{number}").json()
    head = pr["head"]["sha"]
    files = world.alice.get(f"{API}/pulls/{number}/files").json()
    assert [(f["filename"], f["status"]) for f in files] == [
        ("vault/actions/a.toml", "added")
    ]
    assert files[0]["contents_url"].endswith(f"?ref={head}")

    merged = world.alice.post(
        f"{API}/pulls/{number}/merge", json={"Do": "merge", "head_commit_id": head}
    )
    assert merged.status_code == 200 and merged.content == b""

    after = world.alice.get(f"{API}/pulls/{number}").json()
    git = world.forge.repo(REPO).git.repo
    commit = git.revparse_single("refs/heads/main")
    assert isinstance(commit, pygit2.Commit)
    assert [str(p) for p in commit.parent_ids] == [pr["base"]["sha"], head]
    assert (
        commit.author.name == "alice"
        and commit.committer.email == "alice@example.invalid"
    )
    assert after["merged"] is True and after["state"] == "closed"
    assert after["merge_commit_sha"] == str(commit.id)
    assert after["merged_by"]["login"] == "alice"
    assert after["merge_base"] == pr["base"]["sha"]
    assert after["head"]["sha"] == head
    assert world.alice.get(f"{API}/pulls/{number}/merge").status_code == 204


def test_merge_with_stale_pin_is_409_and_leaves_git_alone(world: World) -> None:
    number = _propose(world)
    stale = world.alice.get(f"{API}/pulls/{number}").json()["head"]["sha"]
    world.forge.push(
        REPO, "req/restart", {"vault/actions/a.toml": "changed\n"}, author="mallory"
    )
    world.forge.settle()  # past the re-check the push started
    before = world.forge.repo(REPO).git.tip("main")
    answer = world.alice.post(
        f"{API}/pulls/{number}/merge", json={"Do": "merge", "head_commit_id": stale}
    )
    assert answer.status_code == 409
    assert answer.json()["message"] == "head out of date"
    assert world.forge.repo(REPO).git.tip("main") == before
    pr = world.alice.get(f"{API}/pulls/{number}").json()
    assert pr["head"]["sha"] != stale and pr["merged"] is False


def test_push_with_git_moves_head_and_marks_reviews_stale(
    world: World, tmp_path: Path
) -> None:
    number = _propose(world)
    head = world.alice.get(f"{API}/pulls/{number}").json()["head"]["sha"]
    assert (
        world.alice.post(
            f"{API}/pulls/{number}/reviews", json={"event": "APPROVED"}
        ).status_code
        == 200
    )
    clone = pygit2.clone_repository(
        str(world.forge.repo(REPO).git.path), str(tmp_path / "clone")
    )
    clone.checkout("refs/remotes/origin/req/restart")
    (tmp_path / "clone" / "extra.txt").write_text("x\n")
    clone.index.add("extra.txt")
    clone.index.write()
    sig = pygit2.Signature("m", "m@example.invalid", 0, 0)
    new = clone.create_commit(
        None, sig, sig, "more", clone.index.write_tree(), [clone.head.target]
    )
    clone.references.create("refs/heads/push", new)
    clone.remotes["origin"].push(["+refs/heads/push:refs/heads/req/restart"])
    pr = world.alice.get(f"{API}/pulls/{number}").json()
    assert pr["head"]["sha"] == str(new) != head
    assert world.forge.repo(REPO).git.ref(f"refs/pull/{number}/head") == str(new)
    reviews = world.alice.get(f"{API}/pulls/{number}/reviews").json()
    assert reviews[0]["commit_id"] == head and reviews[0]["stale"] is True


def test_self_approval_is_422(world: World) -> None:
    number = _propose(world)
    for event in ("APPROVED", "REQUEST_CHANGES"):
        answer = world.bot.post(
            f"{API}/pulls/{number}/reviews", json={"event": event, "body": "x"}
        )
        assert answer.status_code == 422
    approved = world.alice.post(
        f"{API}/pulls/{number}/reviews", json={"event": "APPROVED"}
    )
    assert approved.status_code == 200
    assert (
        approved.json()["official"] is True and approved.json()["state"] == "APPROVED"
    )


def test_branch_protection_blocks_until_approved_and_whitelisted(world: World) -> None:
    rule = BranchProtection(
        "main",
        required_approvals=1,
        enable_merge_whitelist=True,
        merge_whitelist_usernames=("alice",),
    )
    world.forge.protect_branch(REPO, rule)
    number = _propose(world)
    head = world.alice.get(f"{API}/pulls/{number}").json()["head"]["sha"]
    body = {"Do": "merge", "head_commit_id": head}
    blocked = world.alice.post(f"{API}/pulls/{number}/merge", json=body)
    assert blocked.status_code == 405
    assert "Does not have enough approvals" in blocked.json()["message"]
    world.alice.post(
        f"{API}/pulls/{number}/reviews", json={"event": "APPROVED", "commit_id": head}
    )
    not_allowed = world.outsider.post(f"{API}/pulls/{number}/merge", json=body)
    assert not_allowed.status_code == 405
    assert not_allowed.json()["message"] == "User not allowed to merge PR"
    assert world.alice.post(f"{API}/pulls/{number}/merge", json=body).status_code == 200
    shown = world.root.get(f"{API}/branch_protections/main").json()
    assert shown["required_approvals"] == 1 and shown["merge_whitelist_usernames"] == [
        "alice"
    ]
    assert world.alice.get(f"{API}/branch_protections").status_code == 403
    branch = world.alice.get(f"{API}/branches/main").json()
    assert branch["protected"] is True and branch["user_can_merge"] is True


def test_token_scope_is_enforced(world: World) -> None:
    token = world.forge.add_token("alice", scopes=["read:repository"])
    with _client(world.forge, token) as client:
        number = _propose(world)
        assert client.get(f"{API}/pulls/{number}").status_code == 200
        answer = client.post(f"{API}/pulls/{number}/merge", json={"Do": "merge"})
        assert answer.status_code == 403
        assert "write:repository" in answer.json()["message"]


def test_pagination_caps_at_50_over_1000_pulls(world: World) -> None:
    world.forge.create_pulls_bulk(REPO, 1000, author="opsvault-bot")
    seen: list[int] = []
    page = 1
    while True:
        answer = world.bot.get(
            f"{API}/pulls", params={"state": "all", "limit": 100, "page": page}
        )
        assert answer.status_code == 200
        batch = answer.json()
        assert answer.headers["X-Total-Count"] == "1000"
        if page == 1:
            assert len(batch) == 50
            assert (
                'rel="next"' in answer.headers["Link"]
                and "page=2" in answer.headers["Link"]
            )
        seen += [pr["number"] for pr in batch]
        if len(batch) < 50:
            break
        page += 1
        if page > 21:
            break
    assert page == 21 and sorted(seen) == list(range(1, 1001))
    assert seen[0] == 1000  # newest first
    assert world.forge.requests.snapshot()["GET /repos/{owner}/{repo}/pulls"] == 21


def test_wrong_request_field_is_a_violation(world: World) -> None:
    number = _propose(world)
    for body in ({"Do": "merg"}, {"Do": "merge", "head_commit_id": 7}, {"do": "merge"}):
        answer = world.alice.post(f"{API}/pulls/{number}/merge", json=body)
        assert answer.status_code == 500
        assert "violates" in answer.text or "request" in answer.json()["message"]
    assert len(world.forge.violations) == 3
    assert "'merg' is not one of" in str(world.forge.violations[0])
    assert "7 is not of type 'string'" in str(world.forge.violations[1])
    assert "'do' was unexpected" in str(world.forge.violations[2])
    unknown_query = world.alice.get(f"{API}/pulls", params={"per_page": 5})
    assert unknown_query.status_code == 500
    with pytest.raises(pytest.fail.Exception, match="per_page"):
        assert_no_violations(world.forge)
    world.forge.violations.clear()


def test_wrong_response_field_is_a_violation(world: World) -> None:
    number = _propose(world)

    def corrupt(operation: str, status: int, payload: object) -> object:
        if operation == "GET /repos/{owner}/{repo}/pulls/{index}" and isinstance(
            payload, dict
        ):
            return {**payload, "number": "one", "surprise": True}
        return payload

    world.forge.response_hooks.append(corrupt)
    answer = world.alice.get(f"{API}/pulls/{number}")
    assert answer.status_code == 500
    problems = world.forge.violations[0].problems
    assert any(
        "'one' is not valid" in p or "'one' is not of type" in p for p in problems
    )
    assert any("'surprise' was unexpected" in p for p in problems)
    world.forge.violations.clear()


def test_fault_injection(world: World) -> None:
    world.forge.faults.fail("GET", "/repos/*/pulls", status=503, times=2)
    statuses = [world.bot.get(f"{API}/pulls").status_code for _ in range(3)]
    assert statuses == [503, 503, 200]

    world.forge.faults.delay("GET", "/version", 0.3)
    with pytest.raises(httpx.ReadTimeout):
        world.bot.get("/version", timeout=0.05)

    number = _propose(world)
    world.forge.faults.drop_after_write(
        "POST", "/repos/{owner}/{repo}/issues/{index}/comments"
    )
    with pytest.raises(httpx.RemoteProtocolError):
        world.bot.post(f"{API}/issues/{number}/comments", json={"body": "tier: low"})
    comments = world.bot.get(f"{API}/issues/{number}/comments").json()
    assert [c["body"] for c in comments] == ["tier: low"]  # the write was applied
    counts = world.forge.requests.snapshot()
    assert counts["GET /repos/{owner}/{repo}/pulls"] == 3
    assert counts["POST /repos/{owner}/{repo}/issues/{index}/comments"] == 1


def test_labels_comments_statuses_and_issues(world: World) -> None:
    number = _propose(world)
    label = world.bot.post(
        f"{API}/labels", json={"name": "tier/low", "color": "00ff00"}
    )
    assert label.status_code == 201
    added = world.bot.post(
        f"{API}/issues/{number}/labels", json={"labels": ["tier/low", "nope"]}
    )
    assert [x["name"] for x in added.json()] == ["tier/low"]
    assert (
        world.bot.post(
            f"{API}/issues/{number}/labels", json={"labels": [1, "x"]}
        ).status_code
        == 400
    )
    assert (
        world.bot.delete(f"{API}/issues/{number}/labels/tier%2Flow").status_code == 204
    )
    assert world.bot.delete(f"{API}/issues/{number}/labels/ghost").status_code == 422

    comment = world.bot.post(
        f"{API}/issues/{number}/comments", json={"body": "one"}
    ).json()
    edited = world.bot.patch(
        f"{API}/issues/comments/{comment['id']}", json={"body": "two"}
    )
    assert edited.json()["body"] == "two"
    assert (
        world.outsider.patch(
            f"{API}/issues/comments/{comment['id']}", json={"body": "x"}
        ).status_code
        == 403
    )

    head = world.bot.get(f"{API}/pulls/{number}").json()["head"]["sha"]
    for state in ("pending", "success"):
        posted = world.bot.post(
            f"{API}/statuses/{head[:10]}",
            json={"state": state, "context": "vault/tier"},
        )
        assert posted.status_code == 201 and posted.json()["status"] == state
    combined = world.bot.get(f"{API}/commits/{head}/status").json()
    assert combined["state"] == "success" and combined["total_count"] == 1
    assert len(world.bot.get(f"{API}/commits/{head}/statuses").json()) == 2

    issue = world.forge.add_issue(REPO, "plan: upgrade", author="alice")
    listed = world.bot.get(
        f"{API}/issues", params={"state": "all", "type": "issues"}
    ).json()
    assert [i["number"] for i in listed] == [issue] and listed[0][
        "pull_request"
    ] is None
    closed = world.alice.patch(f"{API}/issues/{issue}", json={"state": "closed"})
    assert closed.status_code == 201 and closed.json()["state"] == "closed"
    closed_pr = world.bot.patch(f"{API}/pulls/{number}", json={"state": "closed"})
    assert closed_pr.status_code == 201 and closed_pr.json()["state"] == "closed"
    assert (
        world.alice.post(
            f"{API}/pulls/{number}/merge", json={"Do": "merge"}
        ).status_code
        == 404
    )


def test_contents_raw_branches_and_privileges(world: World) -> None:
    got = world.bot.get(
        f"{API}/contents/vault/policy.toml", params={"ref": "main"}
    ).json()
    assert base64.b64decode(got["content"]) == b"a = 1\n"
    raw = world.bot.get(f"{API}/raw/vault/policy.toml", params={"ref": "main"})
    assert raw.content == b"a = 1\n"
    again = world.bot.get(
        f"{API}/raw/vault/policy.toml", headers={"If-None-Match": raw.headers["ETag"]}
    )
    assert again.status_code == 304
    assert world.bot.get(f"{API}/contents/missing.toml").status_code == 404
    listing = world.bot.get(f"{API}/contents/vault").json()
    assert [e["name"] for e in listing] == ["policy.toml"]

    made = world.bot.post(
        f"{API}/branches", json={"new_branch_name": "x", "old_ref_name": "main"}
    )
    assert made.status_code == 201
    assert (
        world.bot.post(f"{API}/branches", json={"new_branch_name": "x"}).status_code
        == 409
    )
    update = {
        "content": base64.b64encode(b"b = 2\n").decode(),
        "sha": "0" * 40,
        "branch": "x",
    }
    assert (
        world.bot.put(f"{API}/contents/vault/policy.toml", json=update).status_code
        == 409
    )

    perm = world.root.get(f"{API}/collaborators/alice/permission").json()
    assert perm["permission"] == "write"
    assert (
        world.root.get(f"{API}/collaborators/root/permission").json()["permission"]
        == "owner"
    )
    assert (
        world.outsider.get(f"{API}/collaborators/alice/permission").status_code == 403
    )
    teams = world.alice.get("/orgs/ops/teams").json()
    team_id = teams[0]["id"]
    assert world.alice.get(f"/teams/{team_id}/members/opsvault-bot").status_code == 200
    assert world.alice.get(f"/teams/{team_id}/members/mallory").status_code == 404
    assert world.outsider.get(f"/teams/{team_id}/members/alice").status_code == 403
    redirect = world.outsider.get("/orgs/ops/members/alice")
    assert redirect.status_code == 303
    assert world.alice.get("/orgs/ops/members/alice").status_code == 204


def test_files_report_forgejo_statuses(fake_forgejo: FakeForgejo) -> None:
    token = fake_forgejo.add_user("bob")
    fake_forgejo.create_repo(
        "bob", "r", {"keep.txt": "1\n", "old.txt": "same\n" * 20, "gone.txt": "x\n"}
    )
    fake_forgejo.push(
        "bob/r",
        "topic",
        {
            "keep.txt": "2\n",
            "old.txt": None,
            "new.txt": "same\n" * 20,
            "gone.txt": None,
            "add.txt": "a\n",
        },
        author="bob",
    )
    number = fake_forgejo.open_pull("bob/r", head="topic", title="t", author="bob")
    with _client(fake_forgejo, token) as client:
        answer = client.get(f"/repos/bob/r/pulls/{number}/files", params={"limit": 2})
        files = answer.json()
        assert (
            answer.headers["X-PerPage"] == "2" and answer.headers["X-HasMore"] == "true"
        )
        files += client.get(
            f"/repos/bob/r/pulls/{number}/files", params={"limit": 2, "page": 2}
        ).json()
    got = {f["filename"]: (f["status"], f["previous_filename"]) for f in files}
    assert got == {
        "add.txt": ("added", ""),
        "gone.txt": ("deleted", ""),
        "keep.txt": ("changed", ""),
        "new.txt": ("renamed", "old.txt"),
    }
