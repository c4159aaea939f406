"""Fixtures for the Forgejo client contract tests."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from opsvault.forge.client import ForgejoClient
from opsvault.forge.session import Backoff
from opsvault.forge.token import ForgeToken

from .support import API, TOKEN, load_http


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make_client(sleeps: Sleeps) -> Iterator[Callable[..., ForgejoClient]]:
    made: list[ForgejoClient] = []

    def make(base_url: str = "http://forge.test", **kwargs: Any) -> ForgejoClient:
        kwargs.setdefault("bot_login", "opsvault-bot")
        kwargs.setdefault("sleep", sleeps)
        kwargs.setdefault("rng", random.Random(7))
        kwargs.setdefault("backoff", Backoff(attempts=4, base=0.5, cap=8.0))
        client = ForgejoClient(base_url, "acme", "ops", ForgeToken(TOKEN), **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(
    httpserver: HTTPServer, make_client: Callable[..., ForgejoClient]
) -> ForgejoClient:
    """A client against pytest-httpserver that already knows the page cap (50)."""
    headers, body = load_http("forgejo-GET-settings-api.http")
    httpserver.expect_request(f"{API}/settings/api", method="GET").respond_with_data(
        body, headers=headers, content_type="application/json"
    )
    return make_client(httpserver.url_for("/").rstrip("/"))
