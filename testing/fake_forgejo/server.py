"""HTTP front of the fake Forgejo: auth, swagger checks, faults, dispatch.

Start it from a test::

    with FakeForgejo(tmp_path / "forge") as forge:
        token = forge.add_user("alice")
        ...  # talk to forge.api_url with "Authorization: token <token>"
    assert not forge.violations
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from testing.fake_forgejo import (
    routes_contents,
    routes_hooks,
    routes_issues,
    routes_org,
    routes_pulls,
    routes_repo,
    routes_timeline,
)
from testing.fake_forgejo.core import ApiError, ForgeCore, Reply, Request
from testing.fake_forgejo.faults import FaultPlan, RequestCounter
from testing.fake_forgejo.validation import Match, load_spec

HANDLERS = {
    **routes_repo.HANDLERS,
    **routes_contents.HANDLERS,
    **routes_pulls.HANDLERS,
    **routes_issues.HANDLERS,
    **routes_org.HANDLERS,
    **routes_timeline.HANDLERS,
    **routes_hooks.HANDLERS,
}
HANDLERS.update(routes_timeline.wrap(HANDLERS))  # label routes record timeline events
HANDLERS.update(routes_hooks.wrap(HANDLERS))  # PR events are delivered to webhooks
ResponseHook = Callable[[str, int, object], object]
_SWAGGER_UI = "/api/swagger"
_COMMON_HEADERS = (
    ("Cache-Control", "max-age=0, private, must-revalidate, no-transform"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "SAMEORIGIN"),
)


@dataclass(frozen=True, slots=True)
class Violation:
    """A request or response that breaks swagger.v1.json, or a fake that cannot answer."""

    method: str
    path: str
    operation: str
    direction: str  # "request", "response" or "fake"
    problems: tuple[str, ...]

    def __str__(self) -> str:
        return (
            f"{self.method} {self.path} ({self.operation}) {self.direction}: "
            + "; ".join(self.problems)
        )


def _scope_category(template: str) -> tuple[str, ...]:
    parts = template.strip("/").split("/")
    if parts[0] in {"version", "settings"}:
        return ()
    if (
        parts[0] == "repos"
        and len(parts) > 3
        and parts[3] in {"issues", "labels", "milestones"}
    ):
        return ("issue",)
    if parts[0] == "users" and "orgs" in parts:
        return ("user", "organization")
    if parts[0] in {"orgs", "teams"}:
        return ("organization",)
    return {
        "repos": ("repository",),
        "user": ("user",),
        "users": ("user",),
        "admin": ("admin",),
    }.get(parts[0], ("misc",))


def _scope_ok(scopes: frozenset[str], category: str, write: bool) -> bool:
    if "all" in scopes or f"write:{category}" in scopes:
        return True
    return not write and f"read:{category}" in scopes


class FakeForgejo(ForgeCore):
    """A stateful Forgejo 15 API on 127.0.0.1, backed by bare git repositories."""

    def __init__(
        self,
        git_root: Path,
        *,
        max_response_items: int = 50,
        default_paging_num: int = 30,
        clock: Callable[[], datetime] | None = None,
        root_url: str | None = None,
        checking_seconds: float = 3.0,
    ) -> None:
        super().__init__(
            git_root,
            max_response_items=max_response_items,
            default_paging_num=default_paging_num,
            clock=clock,
            checking_seconds=checking_seconds,
        )
        self.spec = load_spec()
        self.faults = FaultPlan()
        self.requests = RequestCounter()
        self.violations: list[Violation] = []
        self.response_hooks: list[ResponseHook] = []
        self._root_override = root_url
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> FakeForgejo:
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self
        self.root_url = self._root_override or self.url
        self.render.root = self.root_url
        # serve_forever checks for shutdown every poll interval (0.5 s by
        # default): a short one makes stop(), run after every test, quick.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="fake-forgejo",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        self._httpd = None

    def __enter__(self) -> FakeForgejo:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("fake forgejo is not running; call start()")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v1"

    # -- request pipeline ----------------------------------------------------

    def record(
        self,
        method: str,
        path: str,
        operation: str,
        direction: str,
        problems: list[str],
    ) -> Reply:
        violation = Violation(method, path, operation, direction, tuple(problems))
        with self.state.lock:
            self.violations.append(violation)
        return Reply(
            500,
            {
                "message": f"fake-forgejo: {violation}",
                "url": self.root_url + _SWAGGER_UI,
            },
        )

    def dispatch(
        self, match: Match, method: str, path: str, request: Request, auth: str
    ) -> Reply:
        op = match.operation
        categories = _scope_category(op.template)
        if categories:
            token = self.state.tokens.get(auth)
            if token is None:
                return _error(
                    self,
                    401,
                    "invalid username, password or token"
                    if auth
                    else "token is required",
                )
            for category in categories:
                if not _scope_ok(token.scopes, category, method != "GET"):
                    need = f"{'write' if method != 'GET' else 'read'}:{category}"
                    return _error(
                        self,
                        403,
                        f"token does not have at least one of required scope(s): [{need}]",
                    )
            request = Request(
                method,
                request.path,
                request.params,
                request.query,
                request.body,
                token.login,
                request.headers,
            )
        handler = HANDLERS.get(op.operation_id)
        if handler is None:
            return self.record(
                method,
                path,
                op.operation_id,
                "fake",
                ["operation is not implemented by the fake"],
            )
        try:
            with self.state.lock:
                self.notice_git_pushes()
                return handler(self, request)
        except ApiError as exc:
            return _error(self, exc.status, exc.message, exc.payload)
        except Exception:  # a fake bug must fail the test that hit it
            return self.record(
                method, path, op.operation_id, "fake", [traceback.format_exc()]
            )

    def check_reply(self, match: Match, method: str, path: str, reply: Reply) -> Reply:
        payload = reply.payload
        for hook in self.response_hooks:
            payload = hook(match.operation.key, reply.status, payload)
        reply = Reply(reply.status, payload, reply.raw, reply.headers)
        raw = reply.raw if reply.raw is not None else (b"" if payload is None else b"x")
        problems = self.spec.check_response(match.operation, reply.status, payload, raw)
        if problems:
            return self.record(
                method, path, match.operation.operation_id, "response", problems
            )
        return reply


def _error(
    fake: FakeForgejo, status: int, message: str, payload: object | None = None
) -> Reply:
    if payload is not None:
        return Reply(status, payload)
    body: dict[str, Any] = {"message": message, "url": fake.root_url + _SWAGGER_UI}
    if status == 404:
        body["errors"] = []
    return Reply(status, body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeForgejo

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]
    ) -> None:
        super().__init__(address, handler)
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()

    def close_connections(self) -> None:
        with self.sockets_lock:
            for sock in list(self.open_sockets):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes; with Nagle on, the body waits for the
    # client's delayed ACK (~40 ms on Linux loopback) on every keep-alive request.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.sockets_lock:
            self.server.open_sockets.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.sockets_lock:
                self.server.open_sockets.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        fake = self.server.fake
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        query = parse_qs(url.query, keep_blank_values=True)
        match = fake.spec.match(method, url.path)
        if match is None:
            fake.requests.add(f"{method} {url.path}")
            self._send(
                fake.record(
                    method,
                    url.path,
                    "-",
                    "request",
                    ["no swagger operation for this method and path"],
                )
            )
            return
        op = match.operation
        fake.requests.add(op.key)
        problems = fake.spec.check_request(
            match, query, body, self.headers.get("Content-Type", "")
        )
        if problems:
            self._send(
                fake.record(method, url.path, op.operation_id, "request", problems)
            )
            return
        sub_path = url.path[len(fake.spec.base_path) :]
        faults = fake.faults.take(method, sub_path, op.template)
        if faults.delay:
            time.sleep(faults.delay)
        if faults.drop:
            self.close_connection = True
            return
        if faults.status is not None:
            reply = _error(
                fake, faults.status, f"fake-forgejo: injected {faults.status}"
            )
        else:
            request = Request(
                method,
                sub_path,
                match.path_params,
                query,
                json.loads(body) if body.strip() else None,
                None,
                {k.lower(): v for k, v in self.headers.items()},
            )
            reply = fake.dispatch(
                match, method, url.path, request, _token(self.headers)
            )
        if faults.drop_after_write:
            self.close_connection = True
            return
        self._send(fake.check_reply(match, method, url.path, reply))

    def _send(self, reply: Reply) -> None:
        if reply.raw is not None:
            data = reply.raw
        elif reply.payload is None:
            data = b""
        else:
            data = json.dumps(reply.payload, separators=(",", ":")).encode()
        self.send_response(reply.status)
        names = {k.lower() for k, _ in reply.headers}
        if data and "content-type" not in names:
            self.send_header("Content-Type", "application/json;charset=utf-8")
        for key, value in (*_COMMON_HEADERS, *reply.headers):
            self.send_header(key, value)
        exposed = [h for h in ("Link", "X-Total-Count") if h.lower() in names]
        if exposed:
            self.send_header("Access-Control-Expose-Headers", ", ".join(exposed))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _token(headers: Message) -> str:
    scheme, _, value = headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() in {"token", "bearer"} else ""
