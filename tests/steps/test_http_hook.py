from __future__ import annotations

import io
import re
from pathlib import Path

import httpx
import pytest
from pytest_httpserver import HTTPServer

from opsvault.dispatcher.runner import SubprocessRunner
from opsvault.dispatcher.secrets import EnvSecrets
from opsvault.steps.http_hook import main
from tests.steps.support import FormulaRequest, load_formula

TOKEN = "hook-token-0123456789abcdef"


def _runner(tmp_path: Path, **secrets: str) -> SubprocessRunner:
    env = {f"OPSVAULT_SECRET_{name}": value for name, value in secrets.items()}
    return SubprocessRunner(EnvSecrets(env), workspace_root=tmp_path, kill_grace=0.5)


def test_formula_calls_hook_with_secret_header_and_redacts_an_echo(
    httpserver: HTTPServer, formula_request: FormulaRequest, tmp_path: Path
) -> None:
    httpserver.expect_oneshot_request(
        "/hooks/deploy", method="POST", headers={"Authorization": f"Bearer {TOKEN}"}
    ).respond_with_data(f"deploy queued; you sent Bearer {TOKEN}", status=202)
    url = httpserver.url_for("/hooks/deploy")
    assert re.fullmatch(load_formula("http-hook")["params"]["url"]["pattern"], url)
    request = formula_request("http-hook", {"url": url})
    assert all(TOKEN not in arg for step in request.steps for arg in step.run)

    result = _runner(tmp_path, HOOK_TOKEN=TOKEN).execute(request)

    httpserver.check_assertions()
    assert (result.outcome, result.reason, result.exit_code) == ("succeeded", "ok", 0)
    assert "HTTP 202" in result.output_tail
    assert "you sent Bearer [REDACTED:HOOK_TOKEN]" in result.output_tail
    assert TOKEN not in result.output_tail


def test_formula_fails_on_a_non_2xx_answer(
    httpserver: HTTPServer, formula_request: FormulaRequest, tmp_path: Path
) -> None:
    httpserver.expect_oneshot_request("/hook", method="PUT").respond_with_data(
        "nope", status=500
    )
    request = formula_request(
        "http-hook", {"url": httpserver.url_for("/hook"), "method": "PUT"}
    )
    result = _runner(tmp_path, HOOK_TOKEN=TOKEN).execute(request)
    httpserver.check_assertions()
    assert (result.outcome, result.reason, result.exit_code) == (
        "failed",
        "exit-nonzero",
        1,
    )
    assert result.failed_step == "call"
    assert "HTTP 500" in result.output_tail


def test_formula_without_its_secret_sends_nothing(
    httpserver: HTTPServer, formula_request: FormulaRequest, tmp_path: Path
) -> None:
    request = formula_request("http-hook", {"url": httpserver.url_for("/hook")})
    result = _runner(tmp_path).execute(request)
    assert (result.outcome, result.reason) == ("failed", "secret-missing")
    assert len(httpserver.log) == 0


def _call(
    argv: list[str], environ: dict[str, str], transport: httpx.BaseTransport
) -> tuple[int, str]:
    out = io.StringIO()
    return main(argv, environ, out, transport), out.getvalue()


def test_header_prefix_and_plain_headers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="  ok\n  done ")

    status, out = _call(
        ["--url", "https://hooks.example/x", "--method", "POST",
         "--header-from-env", "X-Token=TOKEN_VAR", "--header", "X-Plain=1",
         "--data", '{"a": 1}', "--content-type", "application/json"],
        {"TOKEN_VAR": "tv"},
        httpx.MockTransport(handler),
    )  # fmt: skip
    assert (status, out) == (0, "http_hook: POST -> HTTP 200\nbody: ok done\n")
    assert seen[0].headers["X-Token"] == "tv"
    assert seen[0].headers["X-Plain"] == "1"
    assert seen[0].content == b'{"a": 1}'


def test_redirects_are_not_followed() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(302, headers={"Location": "https://elsewhere.example/"})

    status, out = _call(
        ["--url", "https://hooks.example/x"], {}, httpx.MockTransport(handler)
    )
    assert status == 1
    assert calls == ["https://hooks.example/x"]
    assert "HTTP 302" in out


def test_transport_error_exits_1() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    status, out = _call(
        ["--url", "https://hooks.example/x"], {}, httpx.MockTransport(handler)
    )
    assert status == 1
    assert "ConnectError" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--header-from-env", "Authorization=Bearer MISSING"], "'MISSING' is empty"),
        (["--header-from-env", "no-equals-sign"], "expected NAME=VALUE"),
        (["--header-from-env", "Authorization=Bearer bad-var"], "not a variable name"),
        (["--header", "Bad Name=x"], "valid header name"),
    ],
)
def test_usage_errors_exit_2_without_a_request(argv: list[str], message: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request expected")

    status, out = _call(
        ["--url", "https://h.example/", *argv], {}, httpx.MockTransport(handler)
    )
    assert status == 2
    assert message in out


def test_non_http_url_is_refused() -> None:
    status, out = _call(
        ["--url", "file:///etc/passwd"],
        {},
        httpx.MockTransport(lambda r: httpx.Response(200)),
    )
    assert status == 2
    assert "only http:// and https://" in out


def test_long_body_is_cut_to_an_excerpt() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200, text="x" * 10_000))
    status, out = _call(
        ["--url", "https://h.example/", "--excerpt", "20"], {}, transport
    )
    assert status == 0
    assert out.splitlines()[1] == "body: " + "x" * 20 + "…"


def test_an_empty_environment_is_not_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROCESS_TOKEN", "from-process")
    status, out = _call(
        ["--url", "https://h.example/", "--header-from-env", "X=PROCESS_TOKEN"],
        {},
        httpx.MockTransport(lambda r: httpx.Response(200)),
    )
    assert (status, "'PROCESS_TOKEN' is empty" in out) == (2, True)
