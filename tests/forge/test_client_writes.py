"""Contract tests for the write calls: method, path, auth and JSON body are pinned."""

from __future__ import annotations

import base64

import pytest
from pytest_httpserver import HTTPServer

from opsvault.errors import ForgeConflict
from opsvault.forge.client import ForgejoClient
from opsvault.forge.types import (
    CommitStatus,
    MergeStyle,
    Proposal,
    PullState,
    ReviewState,
    StatusState,
)

from .support import API, AUTH, HEAD, REPO, RESPONSES, load_json

MARKER = "<!-- opsvault:tier -->"
ACTION = "vault/actions/restart-web-20261121-1.toml"
BRANCH = "vault/restart-web-20261121-1"


def test_create_comment_posts_body(
    httpserver: HTTPServer, client: ForgejoClient
) -> None:
    httpserver.expect_oneshot_request(
        f"{REPO}/issues/7/comments",
        method="POST",
        headers=AUTH,
        json={"body": "Fired: succeeded"},
    ).respond_with_json(load_json("comment-created.json"), status=201)

    comment = client.create_comment(7, "Fired: succeeded")

    httpserver.check_assertions()
    assert comment.id == 104 and comment.author == "opsvault-bot"


def test_upsert_comment_edits_our_marked_comment_not_a_spoof(
    httpserver: HTTPServer, client: ForgejoClient
) -> None:
    # Comment 101 by mallory carries the marker too; only ours (102) is edited.
    new_body = f"{MARKER}\nTier: **high**\n- rule production"
    httpserver.expect_oneshot_request(
        f"{REPO}/issues/7/comments", method="GET"
    ).respond_with_json(load_json("comments-7.json"))
    httpserver.expect_oneshot_request(
        f"{REPO}/issues/comments/102",
        method="PATCH",
        headers=AUTH,
        json={"body": new_body},
    ).respond_with_json(load_json("comment-edited.json"))

    comment = client.upsert_comment(7, MARKER, "Tier: **high**\n- rule production")

    httpserver.check_assertions()
    assert comment.id == 102 and comment.body == new_body


def test_upsert_comment_with_same_body_sends_nothing(
    httpserver: HTTPServer, client: ForgejoClient
) -> None:
    httpserver.expect_oneshot_request(f"{REPO}/issues/7/comments").respond_with_json(
        load_json("comments-7.json")
    )

    comment = client.upsert_comment(
        7, MARKER, f"{MARKER}\nTier: **low**\n- formula restart-web"
    )

    assert comment.id == 102
    assert client.requests_made == 1


def test_upsert_comment_posts_when_none_is_ours(
    httpserver: HTTPServer, client: ForgejoClient
) -> None:
    others = [
        c for c in load_json("comments-7.json") if c["user"]["login"] != "opsvault-bot"
    ]
    httpserver.expect_oneshot_request(
        f"{REPO}/issues/7/comments", method="GET"
    ).respond_with_json(others)
    httpserver.expect_oneshot_request(
        f"{REPO}/issues/7/comments",
        method="POST",
        json={"body": f"{MARKER}\nTier: low"},
    ).respond_with_json(load_json("comment-created.json"), status=201)

    client.upsert_comment(7, MARKER, "Tier: low")

    httpserver.check_assertions()


def test_upsert_comment_learns_own_login_once(
    httpserver: HTTPServer, make_client: object, client: ForgejoClient
) -> None:
    assert callable(make_client)
    anonymous = make_client(httpserver.url_for("/").rstrip("/"), bot_login=None)
    httpserver.expect_oneshot_request(f"{API}/user", headers=AUTH).respond_with_json(
        load_json("user-opsvault-bot.json")
    )
    httpserver.expect_request(f"{REPO}/issues/7/comments").respond_with_json(
        load_json("comments-7.json")
    )
    body = f"{MARKER}\nTier: **low**\n- formula restart-web"

    anonymous.upsert_comment(7, MARKER, body)
    anonymous.upsert_comment(7, MARKER, body)

    assert anonymous.requests_made == 3  # /user once, comments twice


def test_ensure_label_creates_missing_label(
    httpserver: HTTPServer, client: ForgejoClient
) -> None:
    httpserver.expect_oneshot_request(
        f"{REPO}/labels", method="GET", query_string={"page": "1", "limit": "50"}
    ).respond_with_json(load_json("labels.json"), headers={"X-Total-Count": "1"})
    httpserver.expect_oneshot_request(
        f"{REPO}/labels",
        method="POST",
        headers=AUTH,
        json={
            "name": "vault/tier-low",
            "color": "2ea44f",
            "description": "opsvault: low tier",
        },
    ).respond_with_json(load_json("label-created.json"), status=201)

    label = client.ensure_label("vault/tier-low", "2ea44f", "opsvault: low tier")

    httpserver.check_assertions()
    assert label.id == 11


def test_ensure_label_reuses_existing_label(
    httpserver: HTTPServer, client: ForgejoClient
) -> None:
    httpserver.expect_oneshot_request(f"{REPO}/labels", method="GET").respond_with_json(
        load_json("labels.json"), headers={"X-Total-Count": "1"}
    )
    assert client.ensure_label("bug", "ee0701").id == 12
    assert client.requests_made == 2  # settings + labels, no POST


def test_add_labels_by_name(httpserver: HTTPServer, client: ForgejoClient) -> None:
    httpserver.expect_oneshot_request(
        f"{REPO}/issues/7/labels",
        method="POST",
        headers=AUTH,
        json={"labels": ["vault/tier-low"]},
    ).respond_with_json(load_json("issue-7-labels.json"))

    labels = client.add_labels(7, ["vault/tier-low"])

    httpserver.check_assertions()
    assert [x.name for x in labels] == ["bug", "vault/tier-low"]


def test_remove_label_deletes_by_id(
    httpserver: HTTPServer, client: ForgejoClient
) -> None:
    httpserver.expect_oneshot_request(
        f"{REPO}/issues/7/labels", method="GET"
    ).respond_with_json(load_json("issue-7-labels.json"))
    httpserver.expect_oneshot_request(
        f"{REPO}/issues/7/labels/11", method="DELETE", headers=AUTH
    ).respond_with_data("", status=204)

    client.remove_label(7, "vault/tier-low")
    client_calls = client.requests_made

    httpserver.check_assertions()
    assert client_calls == 2


def test_set_commit_status_sends_state_not_status(
    httpserver: HTTPServer, client: ForgejoClient
) -> None:
    httpserver.expect_oneshot_request(
        f"{REPO}/statuses/{HEAD}",
        method="POST",
        headers=AUTH,
        json={
            "state": "success",
            "context": "vault/tier",
            "description": "low: formula restart-web",
            "target_url": "",
        },
    ).respond_with_json(load_json("commit-status.json"), status=201)

    client.set_commit_status(
        HEAD,
        CommitStatus(StatusState.SUCCESS, "vault/tier", "low: formula restart-web"),
    )

    httpserver.check_assertions()


def test_approve_pins_commit(httpserver: HTTPServer, client: ForgejoClient) -> None:
    httpserver.expect_oneshot_request(
        f"{REPO}/pulls/7/reviews",
        method="POST",
        headers=AUTH,
        json={
            "event": "APPROVED",
            "body": "low tier: approved by opsvault",
            "commit_id": HEAD,
        },
    ).respond_with_json(load_json("review-approved.json"))

    review = client.approve(7, HEAD, "low tier: approved by opsvault")

    httpserver.check_assertions()
    assert review.state is ReviewState.APPROVED and review.commit_id == HEAD


def test_merge_pins_head_and_reports_merge_commit(
    httpserver: HTTPServer, client: ForgejoClient
) -> None:
    httpserver.expect_oneshot_request(
        f"{REPO}/pulls/7/merge",
        method="POST",
        headers=AUTH,
        json={
            "Do": "squash",
            "head_commit_id": HEAD,
            "MergeMessageField": "vault: low",
        },
    ).respond_with_data("", status=200)
    httpserver.expect_oneshot_request(
        f"{REPO}/pulls/7", method="GET"
    ).respond_with_json(load_json("pull-7-merged.json"))

    result = client.merge(7, HEAD, style=MergeStyle.SQUASH, message="vault: low")

    httpserver.check_assertions()
    assert result.merge_commit_sha == "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00"
    assert result.already_merged is False


def test_merge_with_moved_head_is_conflict(
    httpserver: HTTPServer, client: ForgejoClient
) -> None:
    moved = dict(load_json("pull-7-open.json"))
    moved["head"] = dict(moved["head"], sha="b" * 40)
    httpserver.expect_oneshot_request(
        f"{REPO}/pulls/7/merge", method="POST"
    ).respond_with_json(load_json("error-head-out-of-date.json"), status=409)
    httpserver.expect_oneshot_request(
        f"{REPO}/pulls/7", method="GET"
    ).respond_with_json(moved)

    with pytest.raises(ForgeConflict, match="head moved"):
        client.merge(7, HEAD)
    httpserver.check_assertions()


def test_merge_refused_by_protection_is_conflict_without_retry(
    httpserver: HTTPServer, client: ForgejoClient
) -> None:
    httpserver.expect_oneshot_request(
        f"{REPO}/pulls/7/merge", method="POST"
    ).respond_with_json(load_json("error-not-allowed.json"), status=405)
    httpserver.expect_oneshot_request(
        f"{REPO}/pulls/7", method="GET"
    ).respond_with_json(load_json("pull-7-open.json"))

    with pytest.raises(ForgeConflict, match="enough approvals"):
        client.merge(7, HEAD)
    assert client.requests_made == 2


def test_merge_403_after_success_reports_merged(
    httpserver: HTTPServer, client: ForgejoClient
) -> None:
    # API-NOTES §10: with delete_branch_after_merge a 403 can follow a merge.
    httpserver.expect_oneshot_request(
        f"{REPO}/pulls/7/merge", method="POST"
    ).respond_with_json(load_json("error-branch-delete.json"), status=403)
    httpserver.expect_oneshot_request(
        f"{REPO}/pulls/7", method="GET"
    ).respond_with_json(load_json("pull-7-merged.json"))

    result = client.merge(7, HEAD)

    assert result.already_merged is True
    httpserver.check_assertions()


def test_merge_try_again_later_is_retried_after_reread(
    httpserver: HTTPServer, client: ForgejoClient, sleeps: list[float]
) -> None:
    httpserver.expect_ordered_request(
        f"{REPO}/pulls/7/merge", method="POST"
    ).respond_with_json(load_json("error-try-again-later.json"), status=405)
    httpserver.expect_ordered_request(
        f"{REPO}/pulls/7", method="GET"
    ).respond_with_json(load_json("pull-7-open.json"))
    httpserver.expect_ordered_request(
        f"{REPO}/pulls/7/merge", method="POST"
    ).respond_with_data("", status=200)
    httpserver.expect_ordered_request(
        f"{REPO}/pulls/7", method="GET"
    ).respond_with_json(load_json("pull-7-merged.json"))

    result = client.merge(7, HEAD)

    httpserver.check_assertions()
    assert result.already_merged is False
    assert len(sleeps) == 1


def test_close_pull_request(httpserver: HTTPServer, client: ForgejoClient) -> None:
    httpserver.expect_oneshot_request(
        f"{REPO}/pulls/7", method="PATCH", headers=AUTH, json={"state": "closed"}
    ).respond_with_json(load_json("pull-7-closed.json"), status=201)

    pr = client.close_pull_request(7)

    httpserver.check_assertions()
    assert pr.state is PullState.CLOSED and not pr.merged


def _proposal() -> Proposal:
    return Proposal(
        branch=BRANCH,
        base="main",
        title="vault: restart-web-20261121-1",
        body="Proposed by dev-bot",
        message="vault: request restart-web-20261121-1",
        files=((ACTION, (RESPONSES / "action-content.toml").read_bytes()),),
    )


def _contents_body() -> dict[str, object]:
    content = (RESPONSES / "action-content.toml").read_bytes()
    return {
        "branch": "main",
        "new_branch": BRANCH,
        "message": "vault: request restart-web-20261121-1",
        "content": base64.b64encode(content).decode("ascii"),
    }


def test_open_proposal_creates_branch_file_and_pull(
    httpserver: HTTPServer, client: ForgejoClient
) -> None:
    httpserver.expect_oneshot_request(
        f"{REPO}/contents/{ACTION}", method="POST", headers=AUTH, json=_contents_body()
    ).respond_with_json(load_json("file-response.json"), status=201)
    httpserver.expect_oneshot_request(
        f"{REPO}/pulls",
        method="POST",
        headers=AUTH,
        json={
            "head": BRANCH,
            "base": "main",
            "title": "vault: restart-web-20261121-1",
            "body": "Proposed by dev-bot",
        },
    ).respond_with_json(load_json("pull-7-open.json"), status=201)

    pr = client.open_proposal(_proposal())

    httpserver.check_assertions()
    assert pr.number == 7 and pr.head_ref == BRANCH


def test_open_proposal_again_reuses_branch_and_pull(
    httpserver: HTTPServer, client: ForgejoClient
) -> None:
    httpserver.expect_oneshot_request(
        f"{REPO}/contents/{ACTION}", method="POST", json=_contents_body()
    ).respond_with_json(load_json("error-branch-exists.json"), status=422)
    httpserver.expect_oneshot_request(
        f"{REPO}/contents/{ACTION}", method="GET", query_string={"ref": BRANCH}
    ).respond_with_json(load_json("contents-action.json"))
    httpserver.expect_oneshot_request(f"{REPO}/pulls", method="POST").respond_with_json(
        load_json("error-pull-exists.json"), status=409
    )
    httpserver.expect_oneshot_request(
        f"{REPO}/pulls",
        method="GET",
        query_string={
            "state": "open",
            "sort": "recentupdate",
            "page": "1",
            "limit": "50",
        },
    ).respond_with_json([load_json("pull-7-open.json")], headers={"X-Total-Count": "1"})

    pr = client.open_proposal(_proposal())

    httpserver.check_assertions()
    assert pr.number == 7


def test_open_proposal_with_several_files_commits_once(
    httpserver: HTTPServer, client: ForgejoClient
) -> None:
    files = ((ACTION, b"a = 1\n"), ("knowledge/web.md", b"# web\n"))
    proposal = Proposal(BRANCH, "main", "t", "b", "m", files)
    httpserver.expect_oneshot_request(
        f"{REPO}/contents",
        method="POST",
        headers=AUTH,
        json={
            "branch": "main",
            "new_branch": BRANCH,
            "message": "m",
            "files": [
                {"operation": "create", "path": ACTION, "content": "YSA9IDEK"},
                {
                    "operation": "create",
                    "path": "knowledge/web.md",
                    "content": "IyB3ZWIK",
                },
            ],
        },
    ).respond_with_json(load_json("files-response.json"), status=201)
    httpserver.expect_oneshot_request(f"{REPO}/pulls", method="POST").respond_with_json(
        load_json("pull-7-open.json"), status=201
    )

    assert client.open_proposal(proposal).number == 7
    httpserver.check_assertions()
