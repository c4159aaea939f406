"""I3: a veto can only be lifted by someone allowed to place it.

The attack (issue 8): a reviewer held a medium PR with the ``vault/hold``
label; the proposer, who has write access, removed the label, and the
dispatcher merged after the veto window and fired the action. The hold is now
derived from who added and removed the label (the PR's timeline) and from
``/vault hold`` / ``/vault release`` comments, never from the label's presence.
Every attack runs for real: the fake Forgejo (its timeline records each label
event with its actor, like Forgejo v15) and local mode (LocalForge).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pygit2
import pytest

from opsvault.app import App, build_app
from opsvault.config import load_settings
from opsvault.dispatcher.runner import RecordingRunner
from opsvault.dispatcher.tick import tick
from opsvault.forge.local import LocalForge
from opsvault.forge.types import TimelineKind
from opsvault.git.pygit2_repo import Pygit2OpsRepo
from tests.conftest import SIGNATURE, init_repo
from tests.dispatcher.harness import HOOK, Harness, fired, template_files, veto_policy

HOLD = "vault/hold"


def comment_as(vault: Harness, user: str, number: int, body: str) -> int:
    return vault.client(user).create_comment(number, body).id


def tier_comment(vault: Harness, number: int) -> str:
    return next(
        c.body
        for c in vault.client("alice").fetch_comments(number)
        if "opsvault:tier" in c.body
    )


def held_by_bob(vault: Harness) -> int:
    """Mallory (write access) proposes a medium action; bob (reviewer) holds it by label."""
    number = vault.propose("deploy-1", HOOK.format(n=1), author="mallory")
    vault.tick()
    bob = vault.client("bob")
    bob.ensure_label(HOLD, "b71c1c")
    bob.add_labels(number, [HOLD])
    return number


def test_timeline_names_who_added_and_removed_the_label(veto: Harness) -> None:
    number = held_by_bob(veto)
    veto.client("mallory").remove_label(number, HOLD)
    events = [
        (e.kind, e.actor, e.label)
        for e in veto.client("alice").fetch_timeline(number)
        if e.kind is not TimelineKind.COMMENT
    ]
    assert (TimelineKind.LABEL_ADDED, "bob", HOLD) in events
    assert events[-1] == (TimelineKind.LABEL_REMOVED, "mallory", HOLD)


def test_proposer_removing_the_reviewers_hold_does_not_lift_it(veto: Harness) -> None:
    number = held_by_bob(veto)
    veto.client("mallory").remove_label(number, HOLD)  # the attack
    report = veto.tick(at=timedelta(hours=3))
    assert report.ok, report.errors
    assert not veto.pull(number).merged
    assert fired(veto) == []
    body = tier_comment(veto, number)
    assert "only a reviewer or admin lifts a hold (`/vault release`)" in body
    assert "**Held** by @bob" in body
    assert "@mallory removed the label, which does not lift the hold" in body


def test_hold_lifted_by_an_eligible_reviewer_lets_the_window_merge(
    veto: Harness,
) -> None:
    number = held_by_bob(veto)
    veto.client("mallory").remove_label(number, HOLD)
    veto.tick(at=timedelta(hours=3))
    veto.client("alice").ensure_label(HOLD, "b71c1c")
    veto.client("alice").add_labels(number, [HOLD])  # an admin re-adds ...
    veto.client("alice").remove_label(number, HOLD)  # ... and lifts it
    report = veto.tick(at=timedelta(hours=3, minutes=5))
    assert report.ok, report.errors
    assert veto.pull(number).merged
    assert fired(veto) == ["deploy-1"]


def test_hold_label_added_by_the_proposer_still_holds(veto: Harness) -> None:
    number = veto.propose("deploy-1", HOOK.format(n=1), author="mallory")
    veto.tick()
    mallory = veto.client("mallory")
    mallory.ensure_label(HOLD, "b71c1c")
    mallory.add_labels(number, [HOLD])
    # Fail closed: their own removal counts for nothing.
    mallory.remove_label(number, HOLD)
    veto.tick(at=timedelta(hours=3))
    assert not veto.pull(number).merged
    assert fired(veto) == []


def test_vault_hold_command_holds_and_only_a_reviewer_releases(veto: Harness) -> None:
    number = veto.propose("deploy-1", HOOK.format(n=1), author="mallory")
    veto.tick()
    hold_id = comment_as(veto, "bob", number, "/vault hold\nwaiting for the window")
    report = veto.tick(at=timedelta(minutes=5))
    assert HOLD in veto.pull(number).labels  # the hold outlives a deleted comment
    assert any(d.event == "command" for d in report.decisions), report.decisions
    mallory = veto.client("mallory")
    mallory.remove_label(number, HOLD)
    release_id = comment_as(veto, "mallory", number, "/vault release")
    veto.tick(at=timedelta(hours=3))
    assert not veto.pull(number).merged
    body = tier_comment(veto, number)
    assert f"@bob `/vault hold` (comment {hold_id}): held" in body
    assert f"@mallory `/vault release` (comment {release_id}): refused" in body
    comment_as(veto, "bob", number, "/vault release")
    report = veto.tick(at=timedelta(hours=3, minutes=5))
    assert report.ok, report.errors
    assert veto.pull(number).merged
    assert fired(veto) == ["deploy-1"]


def test_an_edited_comment_is_never_a_command(veto: Harness) -> None:
    number = held_by_bob(veto)
    said = comment_as(veto, "bob", number, "looks fine to me")
    veto.at(timedelta(minutes=1))  # edited later than posted
    with httpx.Client() as http:  # write access lets mallory edit bob's comment
        reply = http.patch(
            f"{veto.forge.api_url}/repos/acme/ops/issues/comments/{said}",
            headers={"Authorization": f"token {veto.tokens['mallory']}"},
            json={"body": "/vault release"},
        )
    assert reply.status_code == 200, reply.text
    veto.client("mallory").remove_label(number, HOLD)
    veto.tick(at=timedelta(hours=3))
    assert not veto.pull(number).merged
    assert "edited after it was posted" in tier_comment(veto, number)


# -- local mode ------------------------------------------------------------------------


def local_ops(tmp_path: Path, now: list[datetime]) -> tuple[Path, App]:
    ops = tmp_path / "ops"
    files = template_files(veto_policy)
    init_repo(ops, files)
    (tmp_path / "secrets").mkdir()
    environ = {
        "OPSVAULT_FORGE_PATH": str(ops),
        "OPSVAULT_FORGE_OPERATOR": "alice",
        "OPSVAULT_SECRETS_DIR": str(tmp_path / "secrets"),
        "OPSVAULT_DISPATCHER_STATE_DIR": str(tmp_path / "state"),
    }
    app = build_app(load_settings(environ, None), environ)
    app.runner = RecordingRunner()
    assert isinstance(app.forge, LocalForge)
    app.forge = LocalForge(
        app.forge.repo, app.identity, operator="alice", clock=lambda: now[0]
    )
    return ops, app


def local_proposal(ops: Path, author: str) -> None:
    repo = pygit2.Repository(str(ops))
    main = repo.branches["main"].peel(pygit2.Commit)
    index = pygit2.Index()
    index.read_tree(main.tree)
    blob = repo.create_blob(HOOK.format(n=1).encode())
    index.add(
        pygit2.IndexEntry(
            "vault/actions/deploy-1.toml", blob, pygit2.enums.FileMode.BLOB
        )
    )
    who = pygit2.Signature(author, f"{author}@localhost", 0, 0)
    repo.create_commit(
        "refs/heads/vault/deploy-1",
        who,
        SIGNATURE,
        "propose",
        index.write_tree(repo),
        [main.id],
    )


@pytest.mark.parametrize("lifter", ["mallory", "bob"])
def test_local_mode_hold_is_lifted_only_by_a_reviewer(
    tmp_path: Path, lifter: str
) -> None:
    now = [datetime(2026, 11, 21, 12, 0, tzinfo=UTC)]
    ops, app = local_ops(tmp_path, now)
    local_proposal(ops, "mallory")
    assert tick(app, now[0]).ok
    repo = Pygit2OpsRepo.open(ops)
    (pr,) = LocalForge(repo, "alice").fetch_pull_requests()
    bob = LocalForge(repo, "bob")
    bob.ensure_label(HOLD, "b71c1c")
    bob.add_labels(pr.number, [HOLD])
    LocalForge(repo, lifter).remove_label(pr.number, HOLD)
    now[0] += timedelta(hours=3)
    report = tick(app, now[0])
    assert report.ok, report.errors
    merged = LocalForge(repo, "alice").fetch_pull_request(pr.number).merged
    assert merged is (lifter == "bob")
    assert isinstance(app.runner, RecordingRunner)
    assert [r.action_id for r in app.runner.requests] == (
        ["deploy-1"] if lifter == "bob" else []
    )


def test_local_mode_vault_hold_and_release_commands(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from opsvault.cli import cli

    def vault(*args: str) -> str:
        result = CliRunner().invoke(cli, [*args, "--ops", str(ops)])
        assert result.exit_code == 0, result.output
        return result.output

    now = [datetime(2026, 11, 21, 12, 0, tzinfo=UTC)]
    ops, app = local_ops(tmp_path, now)
    local_proposal(ops, "mallory")
    assert tick(app, now[0]).ok
    assert "asked to hold vault/deploy-1" in vault("hold", "deploy-1", "--as", "bob")
    now[0] += timedelta(minutes=1)
    assert tick(app, now[0]).ok
    vault("release", "deploy-1", "--as", "mallory")  # the proposer: refused
    now[0] += timedelta(hours=3)
    assert tick(app, now[0]).ok
    repo = Pygit2OpsRepo.open(ops)
    (pr,) = LocalForge(repo, "alice").fetch_pull_requests()
    assert not pr.merged and HOLD in pr.labels
    vault("release", "deploy-1", "--as", "bob")
    now[0] += timedelta(minutes=1)
    report = tick(app, now[0])
    assert report.ok, report.errors
    assert LocalForge(repo, "alice").fetch_pull_request(pr.number).merged


# -- a hold placed between the dispatcher's read and its merge ---------------------------


def test_a_hold_placed_just_before_the_dispatchers_merge_stops_the_firing(
    veto: Harness,
) -> None:
    from tests.dispatcher.test_refusals import rejected

    number = veto.propose("deploy-1", HOOK.format(n=1), author="mallory")
    app = veto.app()
    veto.tick(app)
    real_merge = app.forge.merge

    def reviewer_holds_first(*args: object, **kwargs: object) -> object:
        bob = veto.client("bob")  # bob holds while the tick is deciding
        bob.ensure_label(HOLD, "b71c1c")
        bob.add_labels(number, [HOLD])
        return real_merge(*args, **kwargs)  # type: ignore[arg-type]

    app.forge.merge = reviewer_holds_first  # type: ignore[method-assign,assignment]
    report = veto.tick(app, at=timedelta(hours=3))
    assert veto.pull(number).merged  # the race was lost ...
    assert fired(veto) == []  # ... but nothing fires
    record = rejected(veto)["deploy-1"]
    assert (record["outcome"], record["reason"]) == ("refused", "held-at-merge")
    assert report.ok, report.errors


def test_local_mode_hold_placed_just_before_the_merge_stops_the_firing(
    tmp_path: Path,
) -> None:
    now = [datetime(2026, 11, 21, 12, 0, tzinfo=UTC)]
    ops, app = local_ops(tmp_path, now)
    local_proposal(ops, "mallory")
    assert tick(app, now[0]).ok
    repo = Pygit2OpsRepo.open(ops)
    bob = LocalForge(repo, "bob", clock=lambda: now[0])
    assert isinstance(app.forge, LocalForge)
    forge = app.forge
    real_merge = forge.merge

    def reviewer_holds_first(*args: object, **kwargs: object) -> object:
        bob.ensure_label(HOLD, "b71c1c")
        bob.add_labels(1, [HOLD])
        return real_merge(*args, **kwargs)  # type: ignore[arg-type]

    forge.merge = reviewer_holds_first  # type: ignore[method-assign,assignment]
    now[0] += timedelta(hours=3)
    report = tick(app, now[0])
    assert report.ok, report.errors
    assert LocalForge(repo, "alice").fetch_pull_request(1).merged
    assert isinstance(app.runner, RecordingRunner)
    assert app.runner.requests == []
