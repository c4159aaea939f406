"""Pagination against a server that silently clamps page sizes (API-NOTES §0.4)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from opsvault.forge.client import ForgejoClient

from .support import API, AUTH, REPO, load_json

TOTAL = 1000
SERVER_CAP = 50


def _pulls_handler(hints: str, cap: int, total: int) -> Callable[[Request], Response]:
    template = load_json("pull-7-open.json")

    def handle(request: Request) -> Response:
        assert request.headers.get("Authorization") == AUTH["Authorization"]
        assert (
            request.args["state"] == "open" and request.args["sort"] == "recentupdate"
        )
        page = max(int(request.args.get("page", "1")), 1)
        limit = int(request.args.get("limit", "0"))
        size = cap if limit <= 0 or limit > cap else limit  # clamped without an error
        start = (page - 1) * size
        items = [
            dict(template, number=n + 1) for n in range(start, min(start + size, total))
        ]
        headers: dict[str, str] = {}
        last = max((total + size - 1) // size, 1)
        if hints in ("total", "all"):
            headers["X-Total-Count"] = str(total)
        if hints in ("link", "all"):
            # Link URLs use ROOT_URL, another host than the one the client uses.
            links = [f'<https://forge.example/api/v1/x?page={last}>; rel="last"']
            if page < last:
                links.insert(
                    0, f'<https://forge.example/api/v1/x?page={page + 1}>; rel="next"'
                )
            headers["Link"] = ",".join(links)
        return Response(
            json.dumps(items), headers=headers, content_type="application/json"
        )

    return handle


@pytest.mark.parametrize(
    ("hints", "reported_cap", "expected_requests"),
    [
        ("all", 50, 1 + 20),
        ("total", 50, 1 + 20),
        ("link", 50, 1 + 20),
        ("none", 50, 1 + 21),  # no hints: one empty page ends the listing
        ("total", 100, 1 + 20),  # the instance reports more than it serves
        ("none", 100, 1 + 21),
        ("total", None, 1 + 20),  # /settings/api unavailable
        ("none", None, 1 + 21),
    ],
)
def test_lists_all_1000_pulls_with_a_server_cap_of_50(
    httpserver: HTTPServer,
    make_client: Callable[..., ForgejoClient],
    hints: str,
    reported_cap: int | None,
    expected_requests: int,
) -> None:
    if reported_cap is None:
        httpserver.expect_request(f"{API}/settings/api").respond_with_json(
            {"message": "not found"}, status=404
        )
    else:
        httpserver.expect_request(f"{API}/settings/api").respond_with_json(
            {"max_response_items": reported_cap, "default_paging_num": 30}
        )
    httpserver.expect_request(f"{REPO}/pulls").respond_with_handler(
        _pulls_handler(hints, SERVER_CAP, TOTAL)
    )
    client = make_client(httpserver.url_for("/").rstrip("/"))

    prs = client.fetch_pull_requests()

    assert [pr.number for pr in prs] == list(range(1, TOTAL + 1))
    assert client.requests_made == expected_requests


@pytest.mark.parametrize("total", [0, 1, 49, 50, 51, 149])
def test_page_boundaries(
    httpserver: HTTPServer, client: ForgejoClient, total: int
) -> None:
    httpserver.expect_request(f"{REPO}/pulls").respond_with_handler(
        _pulls_handler("none", SERVER_CAP, total)
    )
    prs = client.fetch_pull_requests()
    assert [pr.number for pr in prs] == list(range(1, total + 1))


def test_the_page_cap_is_learned_once(
    httpserver: HTTPServer, client: ForgejoClient
) -> None:
    httpserver.expect_request(f"{REPO}/pulls").respond_with_handler(
        _pulls_handler("total", SERVER_CAP, 10)
    )
    client.fetch_pull_requests()
    client.fetch_pull_requests()
    settings_calls = [r for r, _ in httpserver.log if r.path == f"{API}/settings/api"]
    assert len(settings_calls) == 1
