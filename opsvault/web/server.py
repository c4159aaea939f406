"""The read-only HTTP server of the status page and ``/metrics`` (ADR 0016).

Routes, GET and HEAD only (any other method: 405, nothing is ever changed):

- ``/`` the status page (HTML, no JavaScript, refreshes itself);
- ``/metrics`` the Prometheus text exposition;
- ``/records/<path>`` local mode only: a result record the page links to,
  served only when the last read listed it (no other file can be named).

Every answer carries ``Cache-Control: no-store`` and a Content-Security-Policy
that allows no script at all. Bound to 127.0.0.1 unless configured; while bound
to a loopback address it answers only requests whose ``Host`` is a loopback
name, so a web page the operator visits cannot read it through DNS rebinding.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote, urlsplit

from opsvault.dispatcher.httpd import BoundedServer, InThread
from opsvault.errors import ConfigError, OpsvaultError
from opsvault.web.metrics import CONTENT_TYPE as METRICS_TYPE
from opsvault.web.metrics import Metrics
from opsvault.web.page import render_page
from opsvault.web.view import RECORDS_ROUTE, Observed, build_page, record_bytes

log = logging.getLogger(__name__)

READ_TIMEOUT = 10.0  # seconds a client may stay silent while sending its request
MAX_CONNECTIONS = 16  # served at once; more are closed unanswered
ALLOWED = "GET, HEAD"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
SECURITY_HEADERS = (
    ("Cache-Control", "no-store"),
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def is_loopback(bind: str) -> bool:
    if bind == "localhost":
        return True
    try:
        return ipaddress.ip_address(bind).is_loopback
    except ValueError:
        return False


def host_name(header: str | None) -> str:
    """Return the host of a ``Host`` header, without port or brackets, lower-case."""
    if not header:
        return ""
    host = urlsplit(f"//{header.strip()}").hostname
    return (host or "").lower()


class _Server(BoundedServer):
    def __init__(self, address: tuple[str, int], page: StatusServer) -> None:
        super().__init__(address, _Handler, max_connections=MAX_CONNECTIONS)
        self.page = page


class StatusServer(InThread):
    """Serve the page of what *source* reads, and *metrics*; ``start`` serves in a thread."""

    serving = "the status page"

    def __init__(
        self,
        source: Callable[[], Observed],
        metrics: Metrics,
        *,
        bind: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.source = source
        self.metrics = metrics
        self.bind = bind
        self.port = port
        self.clock = clock
        self.loopback_only = is_loopback(bind)
        super().__init__()

    def __repr__(self) -> str:
        return f"StatusServer(bind={self.bind!r}, port={self.port!r})"

    def start(self) -> StatusServer:
        try:
            server = _Server((self.bind, self.port), self)
        except OSError as exc:
            raise ConfigError(
                f"status page {self.bind}:{self.port}",
                f"cannot listen: {exc.strerror}",
                "choose another web.port (0: any free port) or web.bind",
            ) from exc
        self.serve(server, "status-page")
        log.info("status page on %s", self.url)
        return self

    @property
    def url(self) -> str:
        host, port = self.address
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"

    # -- answers (status, content type, body) -------------------------------------

    def answer(self, path: str, host: str | None) -> tuple[int, str, bytes]:
        """Return the answer to a GET of *path*, asked for with the ``Host`` *host*."""
        if self.loopback_only and host_name(host) not in LOOPBACK_NAMES:
            return 421, "text/plain; charset=utf-8", b"unknown host\n"
        route = urlsplit(path).path
        if route == "/metrics":
            return 200, METRICS_TYPE, self.metrics.render()
        if route != "/" and not route.startswith(RECORDS_ROUTE):
            return 404, "text/plain; charset=utf-8", b"not found\n"
        try:
            observed = self.source()
        except OpsvaultError as exc:
            log.warning("status page: %s", exc)
            return 503, "text/plain; charset=utf-8", f"unavailable: {exc}\n".encode()
        if route == "/":
            html = render_page(build_page(observed, self.clock()))
            return 200, "text/html; charset=utf-8", html.encode()
        record = record_bytes(observed, unquote(route.removeprefix(RECORDS_ROUTE)))
        if record is None:
            return 404, "text/plain; charset=utf-8", b"no such record\n"
        return 200, "text/plain; charset=utf-8", record


class _Handler(BaseHTTPRequestHandler):
    server_version = "opsvault-status"
    timeout = READ_TIMEOUT
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("status page %s: " + format, self.address_string(), *args)

    def _send(self, status: int, content_type: str, body: bytes, head: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in SECURITY_HEADERS:
            self.send_header(name, value)
        if status == 405:
            self.send_header("Allow", ALLOWED)
        self.end_headers()
        if not head:
            with contextlib.suppress(OSError):  # the client went away
                self.wfile.write(body)

    def _get(self, head: bool) -> None:
        try:
            status, content_type, body = self.server.page.answer(
                self.path, self.headers.get("Host")
            )
        except Exception:  # a bug must not leave the client hanging
            log.exception("status page: %s failed", self.path)
            status, content_type, body = 500, "text/plain; charset=utf-8", b"error\n"
        self._send(status, content_type, body, head)

    def do_GET(self) -> None:
        self._get(head=False)

    def do_HEAD(self) -> None:
        self._get(head=True)

    def _refuse(self) -> None:
        self.close_connection = True
        self._send(
            405, "text/plain; charset=utf-8", b"read-only: GET and HEAD only\n", False
        )

    def __getattr__(self, name: str) -> Any:
        # Every other method (POST, PUT, DELETE, PATCH, OPTIONS, any token) is
        # refused the same way; http.server would otherwise answer 501.
        if name.startswith("do_"):
            return self._refuse
        raise AttributeError(name)
