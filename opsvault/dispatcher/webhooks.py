"""The webhook receiver of the dispatcher service (docs/forgejo.md "Webhook").

An HTTP endpoint (stdlib ``ThreadingHTTPServer``, one thread per delivery)
that turns a verified Forgejo delivery into a nudge: the PR it names is looked
at in the next tick, and the scheduler is woken for that tick now. Nothing in
a payload is trusted beyond "PR #n (of this repository) changed"; the tick
reads everything again through the API. Forgejo delivers once and never
retries, so polling stays the drain for lost deliveries.

Each POST, in this order (fail closed):

1. no ``Content-Length`` → 411; a body larger than ``max_body`` → 413, unread;
2. ``X-Forgejo-Signature`` / ``X-Gitea-Signature`` must be the hex
   HMAC-SHA256 of the raw body under the secret (constant-time compare) → 401;
3. the body must be a JSON object (nesting too deep for the parser included) → 400; its ``repository.full_name`` must be
   the ops repository → 404;
4. a delivery id (``X-Forgejo-Delivery`` / ``X-Gitea-Delivery``) seen before
   → 200 "duplicate", nothing else; an event the dispatcher itself caused
   (``sender`` is ``dispatcher.identity``: its labels, statuses, comments and
   merges, all dealt with in the tick that made them) → 200 "own event";
5. otherwise 202: the PR is nudged (pull request, review and PR comment
   events) and the tick is woken (any other event only wakes it).

Slow clients: each read may wait ``READ_TIMEOUT``; a whole connection is cut
off after ``DEADLINE_READS`` of those, and at most ``MAX_CONNECTIONS`` are
served at once (more are closed unanswered; Forgejo does not retry, polling
drains what was lost).
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from opsvault.config import Settings
from opsvault.config_sources import read_private_file
from opsvault.dispatcher.httpd import BoundedServer, InThread
from opsvault.dispatcher.nudges import Nudges
from opsvault.errors import ConfigError
from opsvault.forge.errors import WebhookRejected
from opsvault.forge.logins import same_login
from opsvault.forge.webhook import (
    DELIVERY_HEADERS,
    EVENT_HEADERS,
    EVENT_TYPE_HEADERS,
    DeliverySeen,
    parse_event,
    payload_bytes,
    verify_signature,
)

log = logging.getLogger(__name__)

READ_TIMEOUT = 10.0  # seconds a client may stay silent while sending its request
DEADLINE_READS = 3  # a whole request gets this many read timeouts (30 s), then is cut
MAX_CONNECTIONS = 32  # connections served at once; more are closed unanswered (G-6)


class _ReceiverServer(BoundedServer):
    refused_note = "webhook connection refused: %d already open"
    receiver: WebhookReceiver


def load_webhook_secret(path: Path) -> bytes:
    """Return the secret held in *path* (surrounding whitespace stripped); ConfigError if unusable."""
    secret = read_private_file(path, "webhook secret", "webhook.secret_file").strip()
    if len(secret) < 16:
        raise ConfigError(
            str(path),
            "the webhook secret is shorter than 16 bytes",
            "generate one with `openssl rand -hex 32`",
        )
    return secret


def _header(headers: Mapping[str, str], names: tuple[str, ...]) -> str:
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in names:
        if value := lowered.get(name.lower(), "").strip():
            return value
    return ""


class WebhookReceiver(InThread):
    """Verify deliveries for *repo* and nudge the PRs they name. ``start`` serves in a thread."""

    serving = "the webhook receiver"

    def __init__(
        self,
        *,
        secret: bytes,
        repo: str,
        nudges: Nudges,
        bind: str = "127.0.0.1",
        port: int = 0,
        max_body: int = 1024 * 1024,
        identity: str = "",
    ) -> None:
        if not secret:
            raise ConfigError(
                "webhook", "no secret; refusing to serve unsigned deliveries"
            )
        self._secret = secret
        self.repo = repo.lower()
        self.nudges = nudges
        self.bind = bind
        self.port = port
        self.max_body = max_body
        self.identity = identity
        self._seen = DeliverySeen()
        self._seen_lock = threading.Lock()
        super().__init__()
        self.accepted = 0  # counters, for logs and tests
        self.refused = 0

    def __repr__(self) -> str:  # never show the secret
        return f"WebhookReceiver(repo={self.repo!r}, bind={self.bind!r}, port={self.port!r})"

    @classmethod
    def from_settings(
        cls, settings: Settings, nudges: Nudges
    ) -> WebhookReceiver | None:
        """Return the receiver *settings* ask for (None without ``webhook.port``)."""
        webhook = settings.webhook
        if webhook.port is None or webhook.secret_file is None:
            return None
        return cls(
            secret=load_webhook_secret(webhook.secret_file),
            repo=settings.forge.repo,
            nudges=nudges,
            bind=webhook.bind,
            port=webhook.port,
            max_body=webhook.max_body,
            identity=settings.dispatcher.identity,
        )

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> WebhookReceiver:
        try:
            server = _ReceiverServer(
                (self.bind, self.port), _Handler, max_connections=MAX_CONNECTIONS
            )
        except OSError as exc:
            raise ConfigError(
                f"webhook {self.bind}:{self.port}",
                f"cannot listen: {exc.strerror}",
                "choose another webhook.port or webhook.bind",
            ) from exc
        server.receiver = self
        self.serve(server, "webhook-receiver")
        log.info("webhook receiver listening on %s:%d", *self.address)
        return self

    # -- one delivery --------------------------------------------------------------

    def answer(
        self, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        """Return the status and JSON answer for one delivery whose size was checked."""
        try:
            verify_signature(body, headers, self._secret)
        except WebhookRejected as exc:
            return self._refuse(401, exc.problem)
        try:
            payload = json.loads(payload_bytes(body, headers))
        except (UnicodeDecodeError, ValueError, RecursionError, WebhookRejected):
            # RecursionError: a deeply nested body exhausts json's recursion (G-6).
            return self._refuse(400, "the body is not JSON")
        if not isinstance(payload, dict):
            return self._refuse(400, "the body is not a JSON object")
        repository = payload.get("repository")
        name = repository.get("full_name") if isinstance(repository, dict) else None
        if not isinstance(name, str) or name.lower() != self.repo:
            return self._refuse(404, f"not the ops repository: {name!r}")
        delivery = _header(headers, DELIVERY_HEADERS)
        if delivery:
            with self._seen_lock:
                if self._seen.check_and_add(delivery):
                    return 200, {"status": "duplicate", "delivery": delivery}
        event = _header(headers, EVENT_TYPE_HEADERS) or _header(headers, EVENT_HEADERS)
        sender = payload.get("sender")
        login = sender.get("login") if isinstance(sender, dict) else None
        if isinstance(login, str) and same_login(login, self.identity):
            return 200, {"status": "own event"}  # only ever skips a nudge
        number = _pull_number(event, payload, body, headers)
        self.accepted += 1
        log.info(
            "webhook %s delivery %s%s",
            event or "?",
            delivery or "(no id)",
            f" for PR #{number}" if number is not None else "",
        )
        self.nudges.add(number)
        return 202, {"status": "accepted", "pull": number}

    def _refuse(self, status: int, why: str) -> tuple[int, dict[str, Any]]:
        self.refused += 1
        log.warning("webhook delivery refused (%d): %s", status, why)
        return status, {"error": why}


def _pull_number(
    event: str, payload: dict[str, Any], body: bytes, headers: Mapping[str, str]
) -> int | None:
    """Return the PR a delivery is about, or None (not about a PR, or unreadable)."""
    if event.startswith("pull_request") and isinstance(payload.get("issue"), dict):
        issue = payload["issue"]  # a comment on the PR conversation (issue_comment)
        number = issue.get("number")
        return (
            number if isinstance(number, int) and not isinstance(number, bool) else None
        )
    if event.startswith("pull_request"):
        try:
            parsed = parse_event(body, {**headers, "X-Forgejo-Event-Type": event})
        except WebhookRejected:
            return None
        return parsed.number if parsed is not None else None
    return None


class _Handler(BaseHTTPRequestHandler):
    server_version = "opsvault-webhook"
    timeout = READ_TIMEOUT

    def setup(self) -> None:
        super().setup()
        # A total deadline per connection: the per-read timeout alone lets a
        # client trickle one byte at a time for ever (G-6). At the deadline the
        # socket is shut down, which ends any read the handler is blocked in.
        self._watchdog = threading.Timer(
            self.timeout * DEADLINE_READS if self.timeout else READ_TIMEOUT,
            self._expire,
        )
        self._watchdog.daemon = True
        self._watchdog.start()

    def _expire(self) -> None:
        log.warning(
            "webhook request from %s cut off at its deadline", self.client_address[0]
        )
        with contextlib.suppress(OSError):  # already closed
            self.connection.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        self._watchdog.cancel()
        with contextlib.suppress(OSError):  # the deadline shut the socket down
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("webhook %s: " + format, self.address_string(), *args)

    def _reply(self, status: int, data: dict[str, Any]) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        if status >= 400:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        self._reply(405, {"error": "deliveries are POSTed"})

    def do_POST(self) -> None:
        receiver: WebhookReceiver = self.server.receiver  # type: ignore[attr-defined]
        length_text = self.headers.get("Content-Length")
        if length_text is None or not length_text.isdigit():
            self._reply(411, {"error": "Content-Length is required"})
            return
        length = int(length_text)
        if length > receiver.max_body:
            receiver.refused += 1
            log.warning("webhook delivery refused (413): %d bytes", length)
            self._reply(413, {"error": f"body over {receiver.max_body} bytes"})
            return
        body = self.rfile.read(length)
        status, data = receiver.answer(dict(self.headers.items()), body)
        self._reply(status, data)
