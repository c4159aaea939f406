"""Review of the gate (I1, I2, I3, I7 and the Forgejo merge rules): strict xfails.

Each test builds an attack for real and asserts the *safe* outcome; it is
marked ``xfail(strict=True)`` so it passes while the finding is open and turns
into a failure (to be unmarked) once the finding is fixed.
"""

from __future__ import annotations

import json
import socket
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pygit2
import pytest

from opsvault.changes import change_manifest, merged_result
from opsvault.dispatcher import webhooks
from opsvault.dispatcher.integrity import check_merge, merge_message
from opsvault.dispatcher.nudges import Nudges
from opsvault.git.pygit2_repo import Pygit2OpsRepo
from tests.conftest import SIGNATURE, init_repo
from tests.dispatcher.harness import GIT_MAKE, HOOK, REPO, Harness, fired, make_harness


def edit_comment_as(vault: Harness, user: str, comment_id: int, body: str) -> None:
    with httpx.Client() as http:  # write access lets a proposer edit any comment
        reply = http.patch(
            f"{vault.forge.api_url}/repos/acme/ops/issues/comments/{comment_id}",
            headers={"Authorization": f"token {vault.tokens[user]}"},
            json={"body": body},
        )
    assert reply.status_code == 200, reply.text


# -- G-1: a /vault hold erased by the proposer before a tick sees it -------------------


def test_g1_proposer_editing_the_reviewers_hold_comment_erases_the_hold(
    veto: Harness,
) -> None:
    number = veto.propose("deploy-1", HOOK.format(n=1), author="mallory")
    veto.tick()
    hold = veto.client("bob").create_comment(number, "/vault hold\nnot this one").id
    veto.at(timedelta(minutes=1))
    # Before the next tick reads the timeline, mallory rewrites bob's command.
    edit_comment_as(veto, "mallory", hold, "looks good to me")
    report = veto.tick(at=timedelta(hours=3))
    assert report.ok, report.errors
    assert not veto.pull(number).merged  # bob's veto must stand
    assert fired(veto) == []


# -- G-2: the rejecter is the newest commenter, not the closer --------------------------


def rejected_records(vault: Harness, suffix: str) -> dict[str, dict[str, object]]:
    return {
        p: json.loads(vault.main_file(p) or b"")
        for p in vault.main_files("vault/rejected")
        if p.endswith(suffix)
    }


def test_g2_a_proposer_closing_after_an_admins_comment_is_no_admin_rejection(
    vault: Harness,
) -> None:
    number = vault.propose("release-1", GIT_MAKE.format(n=1))  # by dev-bot
    vault.tick()
    vault.client("alice").create_comment(number, "looks fine, merging after lunch")
    vault.client("dev-bot").close_pull_request(number)  # the proposer withdraws it
    vault.tick(at=timedelta(minutes=1))
    [record] = rejected_records(vault, ".result.json").values()
    # alice rejected nothing: the record must not name her, nor reserve the id.
    assert record["approver"] != "alice", record
    assert "rejected by alice" not in str(record["detail"]), record


# -- G-3: the change digest ignores file modes -------------------------------------------


def _commit_with(
    repo: pygit2.Repository,
    parents: list[pygit2.Oid],
    path: str,
    blob: pygit2.Oid,
    mode: int,
    message: str,
) -> pygit2.Oid:
    builder = repo.TreeBuilder(repo[parents[0]].peel(pygit2.Commit).tree)
    sub = repo.TreeBuilder()
    sub.insert(path.rsplit("/", 1)[1], blob, mode)
    builder.insert(path.split("/", 1)[0], sub.write(), pygit2.GIT_FILEMODE_TREE)
    tree = builder.write()
    return repo.create_commit(None, SIGNATURE, SIGNATURE, message, tree, parents)


def test_g3_a_merge_landing_a_symlink_where_a_file_was_classified_is_a_mismatch(
    tmp_path: Path,
) -> None:
    raw = init_repo(tmp_path / "ops", {"README.md": "ops\n"})
    main = raw.branches["main"].peel(pygit2.Commit).id
    target = raw.create_blob(b"../.git/hooks")
    # The proposal: knowledge/d, a regular file whose content is a path.
    head = _commit_with(
        raw, [main], "knowledge/d", target, pygit2.GIT_FILEMODE_BLOB, "d"
    )
    repo = Pygit2OpsRepo(raw)
    classified = change_manifest(
        repo, str(main), merged_result(repo, str(main), str(head))
    )
    # What landed (a replica race, a forge merging onto another main): the same
    # blob at the same path, but as a symlink (mode 120000), under the mark of
    # the classified change.
    landed = _commit_with(
        raw,
        [main, head],
        "knowledge/d",
        target,
        pygit2.GIT_FILEMODE_LINK,
        merge_message(1, "low", str(main), classified),
    )
    assert check_merge(repo, str(landed), str(head), 1) is not None


# -- G-4: the rejection reason is whatever the comment says when the tick reads it -------


def test_g4_a_proposer_editing_the_closing_comment_cannot_rewrite_the_rejection(
    vault: Harness,
) -> None:
    number = vault.propose("release-1", GIT_MAKE.format(n=1))  # by dev-bot
    vault.tick()
    alice = vault.client("alice")
    closing = alice.create_comment(number, "no: this leaks the deploy key").id
    alice.close_pull_request(number)
    # 30 s later (the first tick left the clock at T0 + POLL = 30 s; an edit in
    # the very second of posting leaves updated_at == created_at, which no
    # Forgejo API tells apart from no edit: a documented residual) ...
    vault.at(timedelta(seconds=60))
    # ... before the dispatcher's tick, the proposer (write access) rewrites it.
    edit_comment_as(vault, "dev-bot", closing, "fine by me, re-propose it as is")
    vault.tick(at=timedelta(minutes=1))
    [record] = rejected_records(vault, ".result.json").values()
    assert "re-propose it as is" not in str(record["detail"]), record


# -- G-5: [bots] is matched case-sensitively, forge logins are not -----------------------

ADMIN_TEAM = "acme/ops-admins"


def admins_team_and_deploy_bot(policy: str) -> str:
    """Admins are a forge team; the operator lists the deploy bot in [bots], lower-case."""
    policy = policy.replace(
        '[admins]                  # may merge high (and everything below); never the proposer\nusers = ["alice"]\nteams = []',
        f'[admins]\nusers = []\nteams = ["{ADMIN_TEAM}"]',
        1,
    )
    return policy.replace(
        'users = ["planner-bot", "dev-bot"]',
        'users = ["planner-bot", "dev-bot", "deploy-bot"]',
        1,
    )


def test_g5_a_bot_whose_login_differs_in_case_from_bots_is_still_a_bot(
    tmp_path: Path,
) -> None:
    harness = make_harness(tmp_path, admins_team_and_deploy_bot)
    try:
        # The bot's Forgejo account is "Deploy-Bot"; Forgejo logins ignore case,
        # so "deploy-bot" in [bots] names this account. It sits in the admin team
        # (to push release tags, say): [bots] is what keeps it from approving.
        harness.tokens["Deploy-Bot"] = harness.forge.add_user("Deploy-Bot", is_bot=True)
        harness.forge.add_collaborator(REPO, "Deploy-Bot", "write")
        harness.forge.add_team(
            "acme", "ops-admins", "write", members=["alice", "Deploy-Bot"], repos=[REPO]
        )
        # The dispatcher reads team membership as an org owner (no team policy names).
        harness.forge.add_team("acme", "Owners", "owner", members=["vault-bot"])
        number = harness.propose("release-1", GIT_MAKE.format(n=1))  # high, by dev-bot
        harness.tick()
        harness.merge_as("Deploy-Bot", number)
        assert harness.pull(number).merged_by == "Deploy-Bot"
        report = harness.tick(at=timedelta(minutes=1))
        assert report.ok, report.errors
        assert all(d.event != "error" for d in report.decisions), report.decisions
        assert fired(harness) == []  # a bot never approves
    finally:
        harness.close()


# -- G-6: the webhook receiver has a per-read timeout, no deadline per request ----------


def test_g6_a_trickled_webhook_body_is_cut_off_by_a_request_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # READ_TIMEOUT scaled down from 10 s to 0.4 s; the client trickles one byte
    # every 0.2 s, never idle long enough for the per-read timeout to fire.
    monkeypatch.setattr(webhooks._Handler, "timeout", 0.4)
    with (
        webhooks.WebhookReceiver(
            secret=b"s" * 32, repo="acme/ops", nudges=Nudges()
        ) as receiver,
        socket.create_connection(receiver.address, timeout=5) as conn,
    ):
        conn.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        start = time.monotonic()
        still_open = True
        while time.monotonic() - start < 3.0:  # 7.5 per-read timeouts
            try:
                conn.sendall(b" ")
            except OSError:
                still_open = False
                break
            time.sleep(0.2)
    # One unauthenticated client holds a server thread as long as it likes (and
    # ThreadingHTTPServer starts one per connection, unbounded).
    assert not still_open, "the request was never cut off"


# -- G-7: fire-time checks of dispatcher merges compare the identity case-sensitively ---


def test_g7_identity_spelled_in_another_case_skips_the_held_at_merge_check(
    veto: Harness,
) -> None:
    number = veto.propose("deploy-1", HOOK.format(n=1), author="mallory")
    app = veto.app()
    # dispatcher.identity as the operator typed it; the account is "vault-bot"
    # (Forgejo logins ignore case, and roles_of / vetoed compare lower-cased).
    app.identity = "Vault-Bot"
    veto.tick(app)
    real_merge = app.forge.merge

    def reviewer_holds_first(*args: object, **kwargs: object) -> object:
        bob = veto.client("bob")  # bob holds while the tick is deciding
        bob.ensure_label("vault/hold", "b71c1c")
        bob.add_labels(number, ["vault/hold"])
        return real_merge(*args, **kwargs)  # type: ignore[arg-type]

    app.forge.merge = reviewer_holds_first  # type: ignore[method-assign,assignment]
    report = veto.tick(app, at=timedelta(hours=3))
    assert report.ok, report.errors
    assert veto.pull(number).merged  # the race was lost ...
    assert veto.pull(number).merged_by == "vault-bot"
    assert fired(veto) == []  # ... and nothing may fire (held-at-merge)
