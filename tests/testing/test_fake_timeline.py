"""Conformance of the fake's timeline with Forgejo v15.0.3.

Mirrors models/issues/issue_label.go (``newIssueLabel`` writes a comment of type
``label`` with body "1" and the doer as poster; ``deleteIssueLabel`` the same
with an empty body), routers/api/v1/repo/issue_comment.go
(``ListIssueCommentsAndTimeline``: oldest first, unpaginated without ``page``)
and services/convert/issue_comment.go (``ToTimelineComment``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testing.fake_forgejo.pytest_plugin import assert_no_violations
from testing.fake_forgejo.server import FakeForgejo

API = "/repos/ops/vault"


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[tuple[FakeForgejo, httpx.Client, httpx.Client]]:
    with FakeForgejo(tmp_path / "forge") as forge:
        tokens = [forge.add_user("alice"), forge.add_user("bob")]
        forge.add_org("ops")
        forge.create_repo("ops", "vault", {"README.md": "hello\n"})
        forge.add_collaborator("ops/vault", "alice", "write")
        forge.add_collaborator("ops/vault", "bob", "write")
        forge.push("ops/vault", "topic", {"a.md": "a\n"}, author="alice")
        forge.open_pull("ops/vault", head="topic", title="t", author="alice")
        clients = [
            httpx.Client(
                base_url=forge.api_url, headers={"Authorization": f"token {t}"}
            )
            for t in tokens
        ]
        try:
            yield forge, clients[0], clients[1]
        finally:
            for c in clients:
                c.close()
    assert_no_violations(forge)


def test_label_events_name_their_actor_and_direction(
    forge: tuple[FakeForgejo, httpx.Client, httpx.Client],
) -> None:
    _fake, alice, bob = forge
    assert alice.post(
        f"{API}/labels", json={"name": "x", "color": "#00aabb"}
    ).is_success
    assert alice.post(f"{API}/issues/1/comments", json={"body": "hi"}).is_success
    assert alice.post(f"{API}/issues/1/labels", json={"labels": ["x"]}).is_success
    assert bob.delete(f"{API}/issues/1/labels/x").status_code == 204
    entries = bob.get(f"{API}/issues/1/timeline").json()
    seen = [(e["type"], e["user"]["login"], e["body"]) for e in entries]
    assert seen == [
        ("comment", "alice", "hi"),
        ("label", "alice", "1"),
        ("label", "bob", ""),
    ]
    assert [e["label"]["name"] for e in entries[1:]] == ["x", "x"]
    assert entries[0]["label"] is None
    assert [e["id"] for e in entries] == sorted(e["id"] for e in entries)


def test_adding_a_present_label_records_nothing(
    forge: tuple[FakeForgejo, httpx.Client, httpx.Client],
) -> None:
    _fake, alice, _bob = forge
    alice.post(f"{API}/labels", json={"name": "x", "color": "#00aabb"})
    alice.post(f"{API}/issues/1/labels", json={"labels": ["x"]})
    alice.post(f"{API}/issues/1/labels", json={"labels": ["x"]})  # HasIssueLabel: no-op
    entries = alice.get(f"{API}/issues/1/timeline").json()
    assert [e["type"] for e in entries] == ["label"]


def test_timeline_is_paginated_only_when_a_page_is_asked(
    forge: tuple[FakeForgejo, httpx.Client, httpx.Client],
) -> None:
    _fake, alice, _bob = forge
    for n in range(35):
        alice.post(f"{API}/issues/1/comments", json={"body": f"c{n}"})
    assert len(alice.get(f"{API}/issues/1/timeline").json()) == 35
    page = alice.get(f"{API}/issues/1/timeline", params={"page": 2, "limit": 20})
    assert [e["body"] for e in page.json()] == [f"c{n}" for n in range(20, 35)]
