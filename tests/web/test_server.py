"""The page's HTTP server: read-only, loopback by default, no-store, escaped (ADR 0016)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from opsvault._resources import data_dir
from opsvault.dispatcher.cache import PullEntry
from opsvault.dispatcher.status import (
    FinishedAction,
    PendingProposal,
    RunningAction,
    Status,
    WaitingAction,
)
from opsvault.errors import ConfigError, GitError
from opsvault.policy.parse import parse_policy
from opsvault.web.metrics import Metrics
from opsvault.web.server import StatusServer, host_name
from opsvault.web.view import Links, Observed, TickLine
from tests.web.support import request

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
MARKUP = '<script>alert("x")</script>'
RECORD = "vault/fired/2026/12/restart-1.result.json"


def observed(**changes: object) -> Observed:
    status = Status(
        source="0123456789ab",
        halted=False,
        waiting=(
            WaitingAction("ctx-1", "vault/actions/ctx-1.toml", "low", "noop", MARKUP),
        ),
        running=(
            RunningAction(
                "run-1",
                "vault/running/run-1.toml",
                dispatcher="vault-bot/abc",
                claimed_at="2026-12-02T11:00:00Z",
                deadline="2026-12-02T11:30:00Z",
                stale=True,
            ),
        ),
        recent=(
            FinishedAction(
                "restart-1", RECORD, "failed", reason="exit-1", tier="medium", pr=7
            ),
        ),
        proposals=(
            PendingProposal(f"vault/{MARKUP}", "abc", "high", action_ids=("x-1",)),
        ),
    )
    base: dict[str, object] = {
        "status": status,
        "read_at": NOW,
        "served_by": "test",
        "policy": parse_policy(
            (data_dir("ops-template") / "vault" / "policy.toml").read_bytes()
        ),
        "pulls": (
            (
                "7",
                PullEntry(
                    "abc", "2026-12-02T09:00:00Z", "medium", "2026-12-02T11:59:00Z"
                ),
            ),
        ),
        "ticks": (TickLine("2026-12-02T11:59:50Z", "errors", errors=(MARKUP,)),),
        "records": ((RECORD, b'{"outcome": "failed"}'),),
    }
    base.update(changes)
    return Observed(**base)  # type: ignore[arg-type]


@pytest.fixture
def server() -> Iterator[StatusServer]:
    with StatusServer(lambda: observed(), Metrics(), port=0, clock=lambda: NOW) as s:
        yield s


def test_binds_to_loopback_by_default() -> None:
    with StatusServer(lambda: observed(), Metrics()) as s:
        assert s.address[0] == "127.0.0.1"


def test_the_page_is_html_no_store_and_allows_no_script(server: StatusServer) -> None:
    status, headers, body = request(server.url)
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["cache-control"] == "no-store"
    assert "default-src 'none'" in headers["content-security-policy"]
    assert "script-src" not in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    html = body.decode()
    assert '<meta http-equiv="refresh" content="10">' in html
    assert "<script" not in html  # works without JavaScript, and none was injected


def test_everything_a_proposer_wrote_is_escaped(server: StatusServer) -> None:
    html = request(server.url)[2].decode()
    escaped = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"
    assert MARKUP not in html
    assert html.count(escaped) == 3  # the context, the branch name, the tick error


def test_the_page_shows_tier_age_deadline_approvers_replica_and_links(
    server: StatusServer,
) -> None:
    html = request(server.url)[2].decode()
    assert "3h 0m" in html  # PR #7's head was seen three hours ago
    assert "2026-12-02T11:59:00Z (past)" in html
    assert "a reviewer (nobody listed) or an admin (alice), not the proposer" in html
    assert "vault-bot/abc" in html and "STALE" in html
    assert f'href="/records/{RECORD}"' in html


def test_forge_links_go_to_the_forge() -> None:
    links = Links("https://forge.example/acme/ops", "main")
    source = observed(links=links)
    with StatusServer(lambda: source, Metrics(), clock=lambda: NOW) as s:
        html = request(s.url)[2].decode()
    assert 'href="https://forge.example/acme/ops/pulls/7"' in html
    assert f'href="https://forge.example/acme/ops/src/branch/main/{RECORD}"' in html


@pytest.mark.parametrize(
    "method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND"]
)
def test_every_method_but_get_and_head_is_refused(
    server: StatusServer, method: str
) -> None:
    for path in ("/", "/metrics", f"/records/{RECORD}", "/anything"):
        status, headers, _ = request(server.url.rstrip("/") + path, method)
        assert status == 405, (method, path)
        assert headers["allow"] == "GET, HEAD"
        assert headers["cache-control"] == "no-store"


def test_head_answers_like_get_without_a_body(server: StatusServer) -> None:
    status, headers, body = request(server.url, "HEAD")
    assert status == 200 and body == b""
    assert int(headers["content-length"]) > 1000


def test_unknown_paths_and_unlisted_records_are_not_found(server: StatusServer) -> None:
    base = server.url.rstrip("/")
    assert request(base + "/admin")[0] == 404
    assert request(base + "/records/vault/policy.toml")[0] == 404
    assert request(base + "/records/../../etc/passwd")[0] == 404
    status, headers, body = request(base + f"/records/{RECORD}")
    assert (status, body) == (200, b'{"outcome": "failed"}')
    assert headers["content-type"] == "text/plain; charset=utf-8"


def test_a_foreign_host_name_is_refused_on_loopback(server: StatusServer) -> None:
    """DNS rebinding: a page on evil.example pointed at 127.0.0.1 gets nothing."""
    port = server.address[1]
    assert request(server.url, headers={"Host": "evil.example"})[0] == 421
    assert (
        request(server.url + "metrics", headers={"Host": f"evil.example:{port}"})[0]
        == 421
    )
    assert request(server.url, headers={"Host": f"localhost:{port}"})[0] == 200
    assert host_name("[::1]:8470") == "::1"


def test_a_source_that_cannot_read_answers_503() -> None:
    def broken() -> Observed:
        raise GitError("main", "cannot read")

    with StatusServer(broken, Metrics()) as s:
        status, _, body = request(s.url)
    assert status == 503 and b"cannot read" in body


def test_a_busy_port_is_a_config_error(server: StatusServer) -> None:
    with pytest.raises(ConfigError, match="cannot listen"):
        StatusServer(lambda: observed(), Metrics(), port=server.address[1]).start()


def test_halted_banner_and_notes(server: StatusServer) -> None:
    halted = observed(
        status=Status(source="x", halted=True, halt_note="merge mismatch on #4")
    )
    with StatusServer(lambda: halted, Metrics(), clock=lambda: NOW + timedelta(0)) as s:
        html = request(s.url)[2].decode()
    assert "HALTED: vault/HALT exists on main" in html
    assert "merge mismatch on #4" in html
    assert "<title>opsvault: HALTED</title>" in html
