"""Contract tests for the read calls: method, path, query and auth are pinned."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from pytest_httpserver import HTTPServer

from opsvault.errors import ForgeAuthError, ForgeConflict, ForgeNotFound
from opsvault.forge.client import ForgejoClient
from opsvault.forge.types import (
    BranchProtection,
    FileStatus,
    ListState,
    Permission,
    PullState,
    ReviewState,
)

from .support import API, AUTH, HEAD, REPO, RESPONSES, load_http, load_json

PAGE1 = {"page": "1", "limit": "50"}


def test_fetch_pull_requests_sends_state_sort_and_cap(
    httpserver: HTTPServer, client: ForgejoClient
) -> None:
    headers, body = load_http("forgejo-GET-repos-pulls-state-all.http")
    httpserver.expect_oneshot_request(
        f"{REPO}/pulls",
        method="GET",
        query_string={"state": "all", "sort": "recentupdate", **PAGE1},
        headers=AUTH,
    ).respond_with_data(body, headers=headers, content_type="application/json")

    prs = client.fetch_pull_requests(ListState.ALL)

    httpserver.check_assertions()
    assert len(prs) == 1
    pr = prs[0]
    assert pr.number == 1
    assert pr.state is PullState.OPEN
    assert pr.author == "Gusted"
    assert pr.head_sha == "667e9317ec37b977e6d3d7d43e3440636970563c"
    assert pr.base_ref == "main"
    assert pr.merged is False and pr.merged_by is None
    assert pr.updated_at == datetime(2025, 4, 1, 20, 28, 45, tzinfo=UTC)


def test_fetch_pull_requests_follows_pages_not_link_hosts(
    httpserver: HTTPServer, client: ForgejoClient
) -> None:
    # The recorded Link points at gitea.com; the client must rebuild the page
    # URL against its own base URL instead of following the link.
    headers, body = load_http("gitea-GET-repos-pulls-state-all-limit3.http")
    first = json.loads(body)
    httpserver.expect_oneshot_request(
        f"{REPO}/pulls", query_string={"state": "all", "sort": "recentupdate", **PAGE1}
    ).respond_with_json(first, headers={"X-Total-Count": "6", "Link": headers["Link"]})
    second = [dict(pr, number=pr["number"] - 3) for pr in first]
    httpserver.expect_oneshot_request(
        f"{REPO}/pulls",
        query_string={
            "state": "all",
            "sort": "recentupdate",
            "page": "2",
            "limit": "50",
        },
    ).respond_with_json(second, headers={"X-Total-Count": "6"})

    prs = client.fetch_pull_requests(ListState.ALL)

    httpserver.check_assertions()
    assert [pr.number for pr in prs] == [13, 12, 11, 10, 9, 8]


def test_fetch_pull_requests_stops_at_watermark(
    httpserver: HTTPServer, client: ForgejoClient
) -> None:
    newer = load_json("pull-7-open.json")
    older = dict(newer, number=6, updated_at="2026-11-01T00:00:00Z")
    listing = {"state": "open", "sort": "recentupdate"}
    httpserver.expect_oneshot_request(
        f"{REPO}/pulls", query_string={**listing, "page": "1", "limit": "1"}
    ).respond_with_json([newer], headers={"X-Total-Count": "500"})
    httpserver.expect_oneshot_request(
        f"{REPO}/pulls", query_string={**listing, **PAGE1}
    ).respond_with_json([newer, None, older], headers={"X-Total-Count": "500"})

    since = datetime(2026, 11, 20, tzinfo=UTC)
    prs = client.fetch_pull_requests(updated_since=since)

    httpserver.check_assertions()
    assert [pr.number for pr in prs] == [7]
    # the newest PR alone (it changed), settings, one page, although 500 exist
    assert client.requests_made == 3


def test_fetch_pull_requests_reads_one_pr_when_none_changed(
    httpserver: HTTPServer, client: ForgejoClient
) -> None:
    older = dict(load_json("pull-7-open.json"), updated_at="2026-11-01T00:00:00Z")
    httpserver.expect_oneshot_request(
        f"{REPO}/pulls",
        query_string={
            "state": "all",
            "sort": "recentupdate",
            "page": "1",
            "limit": "1",
        },
        headers=AUTH,
    ).respond_with_json([older], headers={"X-Total-Count": "500"})

    since = datetime(2026, 11, 20, tzinfo=UTC)
    assert client.fetch_pull_requests(ListState.ALL, updated_since=since) == []

    httpserver.check_assertions()
    assert client.requests_made == 1  # an idle tick: one PR, not a page of 50


def test_fetch_pull_request_parses_merged_fields(
    httpserver: HTTPServer, client: ForgejoClient
) -> None:
    httpserver.expect_oneshot_request(
        f"{REPO}/pulls/7", method="GET", headers=AUTH
    ).respond_with_json(load_json("pull-7-merged.json"))

    pr = client.fetch_pull_request(7)

    assert pr.merged and pr.state is PullState.CLOSED
    assert pr.merged_by == "opsvault-bot"
    assert pr.head_sha == HEAD
    assert pr.merge_commit_sha == "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00"
    assert pr.labels == ("vault/tier-low",)


def test_missing_pull_request_is_forge_not_found(
    httpserver: HTTPServer, client: ForgejoClient
) -> None:
    httpserver.expect_request(f"{REPO}/pulls/99").respond_with_json(
        load_json("error-not-found.json"), status=404
    )
    with pytest.raises(ForgeNotFound, match="pulls/99"):
        client.fetch_pull_request(99)


def test_bad_token_is_forge_auth_error(
    httpserver: HTTPServer, client: ForgejoClient
) -> None:
    httpserver.expect_request(f"{REPO}/pulls/7").respond_with_json(
        {"message": "user does not exist", "url": "x"}, status=401
    )
    with pytest.raises(ForgeAuthError):
        client.fetch_pull_request(7)


def test_fetch_changed_files_binds_list_to_head(
    httpserver: HTTPServer, client: ForgejoClient
) -> None:
    httpserver.expect_oneshot_request(
        f"{REPO}/pulls/7/files", query_string=PAGE1, headers=AUTH
    ).respond_with_json(
        load_json("pull-7-files.json"),
        headers={"X-Total-Count": "2", "X-HasMore": "false", "X-PerPage": "50"},
    )

    files = client.fetch_changed_files(7, HEAD)

    assert [(f.filename, f.status) for f in files] == [
        ("vault/actions/restart-web-20261121-1.toml", FileStatus.ADDED),
        ("knowledge/web.md", FileStatus.RENAMED),
    ]
    assert files[1].previous_filename == "knowledge/old-web.md"


def test_fetch_changed_files_refuses_list_of_other_head(
    httpserver: HTTPServer, client: ForgejoClient
) -> None:
    httpserver.expect_request(f"{REPO}/pulls/7/files").respond_with_json(
        load_json("pull-7-files-stale.json"), headers={"X-HasMore": "false"}
    )
    with pytest.raises(ForgeConflict, match="not at head"):
        client.fetch_changed_files(7, HEAD)


def test_fetch_file_decodes_content_at_ref(
    httpserver: HTTPServer, client: ForgejoClient
) -> None:
    path = "vault/actions/restart-web-20261121-1.toml"
    httpserver.expect_oneshot_request(
        f"{REPO}/contents/{path}", query_string={"ref": HEAD}, headers=AUTH
    ).respond_with_json(load_json("contents-action.json"))

    content = client.fetch_file(path, HEAD)

    assert content == (RESPONSES / "action-content.toml").read_bytes()


def test_fetch_file_falls_back_to_raw_for_large_blobs(
    httpserver: HTTPServer, client: ForgejoClient
) -> None:
    path = "evidence/big.log"
    big = dict(
        load_json("contents-action.json"), path=path, size=20_000_000, content=""
    )
    httpserver.expect_oneshot_request(
        f"{REPO}/contents/{path}", query_string={"ref": "main"}
    ).respond_with_json(big)
    httpserver.expect_oneshot_request(
        f"{REPO}/raw/{path}", query_string={"ref": "main"}, headers=AUTH
    ).respond_with_data(b"x" * 10)

    assert client.fetch_file(path, "main") == b"x" * 10
    httpserver.check_assertions()


def test_fetch_reviews_reads_recorded_reviews(
    httpserver: HTTPServer, client: ForgejoClient
) -> None:
    headers, body = load_http("gitea-GET-repos-pulls-7-reviews.http")
    httpserver.expect_oneshot_request(
        f"{REPO}/pulls/7/reviews", query_string=PAGE1, headers=AUTH
    ).respond_with_data(body, headers=headers, content_type="application/json")

    reviews = client.fetch_reviews(7)

    assert [r.state for r in reviews][:2] == [
        ReviewState.COMMENT,
        ReviewState.REQUEST_CHANGES,
    ]
    assert reviews[1].reviewer == "techknowlogick"
    assert reviews[1].commit_id == "187ece0cb6631e2858a6872e5733433bb3ca3b03"
    assert reviews[1].dismissed is True
    assert client.requests_made == 2  # X-Total-Count: 3 ends the listing


def test_fetch_comments_is_one_unpaginated_request(
    httpserver: HTTPServer, client: ForgejoClient
) -> None:
    httpserver.expect_oneshot_request(
        f"{REPO}/issues/7/comments", query_string="", headers=AUTH
    ).respond_with_json(load_json("comments-7.json"))

    comments = client.fetch_comments(7)

    assert [c.author for c in comments] == ["mallory", "opsvault-bot", "alice"]
    assert client.requests_made == 1


def test_is_team_member_resolves_org_team(
    httpserver: HTTPServer, client: ForgejoClient
) -> None:
    httpserver.expect_oneshot_request(
        f"{API}/orgs/acme/teams", query_string=PAGE1, headers=AUTH
    ).respond_with_json(load_json("teams-acme.json"), headers={"X-Total-Count": "2"})
    httpserver.expect_oneshot_request(
        f"{API}/teams/32/members/alice", headers=AUTH
    ).respond_with_json(load_json("user-alice.json"))
    httpserver.expect_oneshot_request(
        f"{API}/teams/32/members/mallory"
    ).respond_with_json(load_json("error-not-found.json"), status=404)

    assert client.is_team_member("acme/ops-admins", "alice") is True
    assert client.is_team_member("acme/ops-admins", "mallory") is False
    httpserver.check_assertions()


def test_unknown_team_is_not_found(
    httpserver: HTTPServer, client: ForgejoClient
) -> None:
    httpserver.expect_request(f"{API}/orgs/acme/teams").respond_with_json(
        load_json("teams-acme.json"), headers={"X-Total-Count": "2"}
    )
    with pytest.raises(ForgeNotFound, match="acme/nobody"):
        client.is_team_member("acme/nobody", "alice")


def test_fetch_permission(httpserver: HTTPServer, client: ForgejoClient) -> None:
    httpserver.expect_oneshot_request(
        f"{REPO}/collaborators/alice/permission", headers=AUTH
    ).respond_with_json(load_json("permission-alice.json"))

    assert client.fetch_permission("alice") is Permission.ADMIN


def test_fetch_issues_lists_only_issues_since(
    httpserver: HTTPServer, client: ForgejoClient
) -> None:
    httpserver.expect_oneshot_request(
        f"{REPO}/issues",
        query_string={
            "state": "all",
            "type": "issues",
            "since": "2026-11-01T00:00:00+00:00",
            **PAGE1,
        },
        headers=AUTH,
    ).respond_with_json(load_json("issues.json"), headers={"X-Total-Count": "2"})

    issues = client.fetch_issues(updated_since=datetime(2026, 11, 1, tzinfo=UTC))

    assert [(i.number, i.state) for i in issues] == [
        (12, PullState.CLOSED),
        (758, PullState.OPEN),
    ]
    assert issues[0].closed_at == datetime(2026, 11, 20, 9, tzinfo=UTC)


def test_fetch_branch_protection(httpserver: HTTPServer, client: ForgejoClient) -> None:
    httpserver.expect_oneshot_request(
        f"{REPO}/branch_protections/main", headers=AUTH
    ).respond_with_json(load_json("branch-protection-main.json"))

    rule = client.fetch_branch_protection("main")

    assert rule is not None
    # Only what opsvault reads (the dispatcher and the guard check) is kept;
    # the rule's other fields (status checks, merge whitelist users, ...) are ignored.
    assert rule == BranchProtection(
        required_approvals=1,
        enable_push=True,
        enable_push_whitelist=True,
        push_whitelist_usernames=("opsvault-bot",),
        dismiss_stale_approvals=True,
        protected_file_patterns="vault/policy.toml;vault/formulas/**",
        approvals_whitelist_teams=("ops-admins",),
        merge_whitelist_teams=("ops-admins",),
    )


def test_missing_branch_protection_is_none(
    httpserver: HTTPServer, client: ForgejoClient
) -> None:
    httpserver.expect_request(f"{REPO}/branch_protections/dev").respond_with_json(
        load_json("error-not-found.json"), status=404
    )
    assert client.fetch_branch_protection("dev") is None


def test_user_agent_names_opsvault(
    httpserver: HTTPServer, client: ForgejoClient
) -> None:
    httpserver.expect_oneshot_request(
        f"{REPO}/pulls/7", headers={"User-Agent": "opsvault/0.1.0", **AUTH}
    ).respond_with_json(load_json("pull-7-open.json"))
    client.fetch_pull_request(7)
    httpserver.check_assertions()


def test_recorded_content_is_base64() -> None:
    data = load_json("contents-action.json")
    assert (
        base64.b64decode(data["content"])
        == (RESPONSES / "action-content.toml").read_bytes()
    )
