"""The token is never shown: not in reprs, messages or logs."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from opsvault.errors import ConfigError, ForgeError
from opsvault.forge.client import ForgejoClient
from opsvault.forge.token import ForgeToken

from .support import HEAD, TOKEN, load_json


def test_repr_and_str_mask_the_token(make_client: Callable[..., ForgejoClient]) -> None:
    token = ForgeToken(TOKEN)
    client = make_client()
    for text in (
        repr(token),
        str(token),
        f"{token}",
        repr(client),
        repr(client._session),
    ):
        assert TOKEN not in text
    assert "***" in repr(client)
    assert token.reveal() == TOKEN


def test_token_cannot_be_pickled() -> None:
    with pytest.raises(TypeError):
        pickle.dumps(ForgeToken(TOKEN))


def test_token_from_file_strips_newline(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    assert ForgeToken.from_file(path) == ForgeToken(TOKEN)


def test_missing_token_file_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        ForgeToken.from_file(tmp_path / "absent")
    assert info.value.where == str(tmp_path / "absent")


def test_token_from_environ_mapping() -> None:
    assert ForgeToken.from_environ({"OPSVAULT_FORGE_TOKEN": TOKEN}).reveal() == TOKEN
    with pytest.raises(ConfigError, match="OPSVAULT_FORGE_TOKEN"):
        ForgeToken.from_environ({})
    with pytest.raises(ConfigError):
        ForgeToken("two words")


def test_token_never_appears_in_logs_or_errors(
    make_client: Callable[..., ForgejoClient], caplog: pytest.LogCaptureFixture
) -> None:
    seen_auth: list[str] = []
    answers = iter(
        [
            httpx.Response(502, json={"message": ""}),
            httpx.Response(200, json=load_json("pull-7-open.json")),
            httpx.Response(401, json={"message": "invalid token"}),
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        seen_auth.append(request.headers["Authorization"])
        if request.method == "POST":
            raise httpx.ReadTimeout("lost")
        return next(answers, httpx.Response(401, json={"message": "invalid token"}))

    client = make_client(transport=httpx.MockTransport(handler))
    caplog.set_level(logging.DEBUG)

    client.fetch_pull_request(7)
    messages: list[str] = []
    with pytest.raises(ForgeError) as info:
        client.fetch_pull_request(7)
    messages.append(str(info.value))
    with pytest.raises(ForgeError) as info2:
        client.merge(7, HEAD)
    messages.append(str(info2.value))
    messages.append(repr(info2.value))

    assert seen_auth[0] == f"token {TOKEN}"  # it is sent, in the header only
    assert caplog.records  # retries and httpx did log something
    assert TOKEN not in caplog.text
    for message in messages:
        assert TOKEN not in message
