"""Failure handling: retries for reads, read-back instead of blind retries for writes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from opsvault.errors import ForgeUnavailable
from opsvault.forge.client import ForgejoClient
from opsvault.forge.errors import ForgeBudgetExceeded, ForgeOutcomeUnknown
from opsvault.forge.session import Backoff
from opsvault.forge.types import CommitStatus, StatusState

from .support import HEAD, load_json

Handler = Callable[[httpx.Request], httpx.Response]
SETTINGS = {"max_response_items": 50, "default_paging_num": 30}


class FakeForge:
    """Routes requests to scripted answers and records them."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []
        self.routes: dict[tuple[str, str], list[Any]] = {}

    def on(self, method: str, path: str, *answers: Any) -> None:
        self.routes.setdefault((method, "/api/v1" + path), []).extend(answers)

    def count(self, method: str, path: str) -> int:
        return self.log.count((method, "/api/v1" + path))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        key = (request.method, request.url.path)
        self.log.append(key)
        answers = self.routes.get(key)
        if not answers:
            return httpx.Response(404, json={"message": "not scripted"})
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if callable(answer):
            answer = answer(request)
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, httpx.Response)
        return answer


@pytest.fixture
def forge() -> FakeForge:
    return FakeForge()


@pytest.fixture
def mocked(
    forge: FakeForge, make_client: Callable[..., ForgejoClient]
) -> ForgejoClient:
    return make_client(transport=httpx.MockTransport(forge))


def ok(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(status, json=data, headers=headers)


def status(code: int) -> httpx.Response:
    return httpx.Response(code, json={"message": "", "url": "x"})


def test_reads_survive_a_burst_of_5xx(
    forge: FakeForge, mocked: ForgejoClient, sleeps: list[float]
) -> None:
    forge.on(
        "GET",
        "/repos/acme/ops/pulls/7",
        status(502),
        status(503),
        status(500),
        ok(load_json("pull-7-open.json")),
    )

    pr = mocked.fetch_pull_request(7)

    assert pr.number == 7
    assert forge.count("GET", "/repos/acme/ops/pulls/7") == 4
    assert len(sleeps) == 3
    assert all(0 <= s <= min(8.0, 0.5 * 2**n) for n, s in enumerate(sleeps))


def test_reads_survive_timeouts_and_refused_connections(
    forge: FakeForge, mocked: ForgejoClient
) -> None:
    forge.on(
        "GET",
        "/repos/acme/ops/pulls/7",
        httpx.ReadTimeout("slow"),
        httpx.ConnectError("refused"),
        ok(load_json("pull-7-open.json")),
    )
    assert mocked.fetch_pull_request(7).number == 7


def test_reads_give_up_as_unavailable(forge: FakeForge, mocked: ForgejoClient) -> None:
    forge.on("GET", "/repos/acme/ops/pulls/7", status(503))

    with pytest.raises(ForgeUnavailable):
        mocked.fetch_pull_request(7)
    assert forge.count("GET", "/repos/acme/ops/pulls/7") == 4


def test_pagination_retries_a_page_without_repeating_items(
    forge: FakeForge, mocked: ForgejoClient
) -> None:
    pr = load_json("pull-7-open.json")
    page = [dict(pr, number=n) for n in range(50)]
    pages = iter(
        [
            ok(page[:50], headers={"X-Total-Count": "60"}),
            status(502),
            ok(
                [dict(pr, number=n) for n in range(50, 60)],
                headers={"X-Total-Count": "60"},
            ),
        ]
    )
    forge.on("GET", "/settings/api", ok(SETTINGS))
    forge.on("GET", "/repos/acme/ops/pulls", lambda request: next(pages))

    prs = mocked.fetch_pull_requests()

    assert [p.number for p in prs] == list(range(60))


def test_lost_merge_answer_is_not_repeated_when_the_pr_reads_merged(
    forge: FakeForge, mocked: ForgejoClient
) -> None:
    state = {"merged": False}

    def merge(request: httpx.Request) -> Exception:
        assert json.loads(request.content)["head_commit_id"] == HEAD
        state["merged"] = True  # the server merged, then the connection dropped
        return httpx.RemoteProtocolError(
            "Server disconnected without sending a response."
        )

    def read(request: httpx.Request) -> httpx.Response:
        return ok(
            load_json("pull-7-merged.json" if state["merged"] else "pull-7-open.json")
        )

    forge.on("POST", "/repos/acme/ops/pulls/7/merge", merge)
    forge.on("GET", "/repos/acme/ops/pulls/7", read)

    result = mocked.merge(7, HEAD)

    assert result.already_merged is True
    assert result.merge_commit_sha == "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00"
    assert forge.count("POST", "/repos/acme/ops/pulls/7/merge") == 1
    assert forge.log[-1] == ("GET", "/api/v1/repos/acme/ops/pulls/7")


def test_merge_after_5xx_is_retried_only_after_reading_it_unmerged(
    forge: FakeForge, mocked: ForgejoClient
) -> None:
    forge.on("POST", "/repos/acme/ops/pulls/7/merge", status(502), httpx.Response(200))
    forge.on(
        "GET",
        "/repos/acme/ops/pulls/7",
        ok(load_json("pull-7-open.json")),
        ok(load_json("pull-7-merged.json")),
    )

    result = mocked.merge(7, HEAD)

    assert result.already_merged is False
    assert [m for m, _ in forge.log] == ["POST", "GET", "POST", "GET"]


def test_merge_of_a_pr_merged_at_another_head_is_conflict(
    forge: FakeForge, mocked: ForgejoClient
) -> None:
    merged = load_json("pull-7-merged.json")
    merged["head"] = dict(merged["head"], sha="e" * 40)
    forge.on("POST", "/repos/acme/ops/pulls/7/merge", httpx.ReadTimeout("lost"))
    forge.on("GET", "/repos/acme/ops/pulls/7", ok(merged))

    with pytest.raises(Exception, match="merged at 'eeee"):
        mocked.merge(7, HEAD)
    assert forge.count("POST", "/repos/acme/ops/pulls/7/merge") == 1


def test_posts_are_not_retried_blindly(forge: FakeForge, mocked: ForgejoClient) -> None:
    # The comment was stored although the answer was a 502: no second POST.
    stored = [*load_json("comments-7.json"), load_json("comment-created.json")]
    forge.on("POST", "/repos/acme/ops/issues/7/comments", status(502))
    forge.on("GET", "/repos/acme/ops/issues/7/comments", ok(stored))

    comment = mocked.create_comment(7, "Fired: succeeded")

    assert comment.id == 104
    assert forge.count("POST", "/repos/acme/ops/issues/7/comments") == 1


def test_post_is_repeated_only_after_reading_it_absent(
    forge: FakeForge, mocked: ForgejoClient
) -> None:
    forge.on(
        "POST",
        "/repos/acme/ops/issues/7/comments",
        httpx.ReadTimeout("lost"),
        ok(load_json("comment-created.json"), 201),
    )
    forge.on(
        "GET", "/repos/acme/ops/issues/7/comments", ok(load_json("comments-7.json"))
    )

    comment = mocked.create_comment(7, "Fired: succeeded")

    assert comment.id == 104
    assert [m for m, _ in forge.log] == ["POST", "GET", "POST"]


def test_post_that_never_reached_the_server_is_repeated(
    forge: FakeForge, mocked: ForgejoClient
) -> None:
    forge.on(
        "POST",
        "/repos/acme/ops/statuses/" + HEAD,
        httpx.ConnectError("refused"),
        ok(load_json("commit-status.json"), 201),
    )

    mocked.set_commit_status(HEAD, CommitStatus(StatusState.SUCCESS, "vault/tier"))

    assert [m for m, _ in forge.log] == ["POST", "POST"]


def test_lost_status_is_found_in_the_combined_status(
    forge: FakeForge, mocked: ForgejoClient
) -> None:
    forge.on("POST", "/repos/acme/ops/statuses/" + HEAD, status(504))
    forge.on(
        "GET",
        f"/repos/acme/ops/commits/{HEAD}/status",
        ok(load_json("combined-status.json")),
    )

    mocked.set_commit_status(
        HEAD,
        CommitStatus(StatusState.SUCCESS, "vault/tier", "low: formula restart-web"),
    )

    assert forge.count("POST", "/repos/acme/ops/statuses/" + HEAD) == 1


def test_lost_post_gives_up_as_outcome_unknown(
    forge: FakeForge, make_client: Callable[..., ForgejoClient]
) -> None:
    client = make_client(
        transport=httpx.MockTransport(forge),
        backoff=Backoff(attempts=2, base=0.1, cap=1.0),
    )
    forge.on("POST", "/repos/acme/ops/pulls/7/reviews", status(500))
    forge.on(
        "GET", "/repos/acme/ops/pulls/7/reviews", ok([], headers={"X-Total-Count": "0"})
    )
    forge.on("GET", "/settings/api", ok(SETTINGS))

    with pytest.raises(ForgeOutcomeUnknown):
        client.approve(7, HEAD)
    assert forge.count("POST", "/repos/acme/ops/pulls/7/reviews") == 2


def test_request_budget_counts_and_stops_a_tick(
    forge: FakeForge, mocked: ForgejoClient
) -> None:
    forge.on("GET", "/repos/acme/ops/pulls/7", ok(load_json("pull-7-open.json")))
    budget = mocked.begin_tick(limit=2)

    mocked.fetch_pull_request(7)
    mocked.fetch_pull_request(7)
    with pytest.raises(ForgeBudgetExceeded) as info:
        mocked.fetch_pull_request(7)

    assert (info.value.limit, info.value.used) == (2, 2)
    assert budget.used == mocked.requests_made == 2
    mocked.begin_tick()
    assert mocked.requests_made == 0


def test_retries_count_against_the_budget(
    forge: FakeForge, mocked: ForgejoClient
) -> None:
    forge.on(
        "GET", "/repos/acme/ops/pulls/7", status(502), ok(load_json("pull-7-open.json"))
    )
    mocked.begin_tick(limit=10)
    mocked.fetch_pull_request(7)
    assert mocked.requests_made == 2


def test_backoff_grows_exponentially_with_jitter_and_cap() -> None:
    import random

    backoff = Backoff(attempts=8, base=0.5, cap=4.0)
    rng = random.Random(1)
    delays = [[backoff.delay(n, rng) for n in range(8)] for _ in range(200)]
    for n in range(8):
        column = [row[n] for row in delays]
        assert max(column) <= min(4.0, 0.5 * 2**n)
        assert len(set(column)) > 100  # jittered, not a fixed schedule
