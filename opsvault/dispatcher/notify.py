"""Notification sinks named in ``vault/policy.toml`` (``[notify.<name>]``).

Two kinds: ``webhook`` receives a JSON POST (schema in
docs/operating-notifications.md), ``ntfy`` receives a plain-text POST with the
``Title``/``Priority``/``Tags``/``Click`` headers ntfy reads. A sink's
``token_secret`` names a secret sent as ``Authorization: Bearer <value>``; the
value never reaches a log line or an exception message.

Notifying is best effort: a sink that cannot be reached is reported back by
name and logged, never raised, so one dead webhook never stops a tick.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from email.header import Header

import httpx

from opsvault.errors import OpsvaultError
from opsvault.messages import Notification
from opsvault.policy.model import Policy, Sink
from opsvault.ports import SecretSource

log = logging.getLogger(__name__)

EVENTS = frozenset(  # what Notification.event may say (docs/operating-notifications.md)
    {"approval-needed", "refused", "interrupted", "unprovenanced", "failed", "expired"}
)
SOURCE = "opsvault"

# ntfy priorities 1..5 by name; an admin should be woken for what needs a human now.
_NTFY_PRIORITY = {
    "approval-needed": "default",
    "expired": "low",
    "failed": "high",
    "refused": "high",
    "interrupted": "high",
    "unprovenanced": "urgent",
}
# ntfy turns known tag names into emoji in front of the title.
_NTFY_EMOJI = {
    "approval-needed": "hourglass",
    "expired": "wastebasket",
    "failed": "x",
    "refused": "no_entry",
    "interrupted": "warning",
    "unprovenanced": "rotating_light",
}


def sinks_named(policy: Policy, names: Iterable[str]) -> tuple[Sink, ...]:
    """Return the policy's sinks called *names*, in that order; unknown names are skipped.

    ``parse_policy`` already refuses a tier naming a sink that does not exist.
    """
    by_name = {sink.name: sink for sink in policy.sinks}
    return tuple(by_name[name] for name in dict.fromkeys(names) if name in by_name)


def render_webhook_payload(notification: Notification) -> dict[str, object]:
    """Return the JSON object a ``webhook`` sink receives (documented, stable)."""
    return {
        "event": notification.event,
        "title": notification.title,
        "body": notification.body,
        "tier": notification.tier,
        "url": notification.url,
        "action_ids": list(notification.action_ids),
        "mentions": list(notification.mentions),
        "source": SOURCE,
    }


def render_ntfy_message(notification: Notification) -> tuple[dict[str, str], str]:
    """Return (headers, plain-text body) for an ``ntfy`` sink."""
    tags = [_NTFY_EMOJI.get(notification.event, "bell"), SOURCE, notification.event]
    if notification.tier:
        tags.append(f"tier-{notification.tier}")
    headers = {
        "Title": _header_value(notification.title),
        "Priority": _NTFY_PRIORITY.get(notification.event, "default"),
        "Tags": _header_value(",".join(tags)),
    }
    if notification.url:
        headers["Click"] = _header_value(notification.url)
    lines = [notification.body] if notification.body else []
    if notification.action_ids:
        lines.append("actions: " + ", ".join(notification.action_ids))
    if notification.mentions:
        lines.append("approvers: " + ", ".join(notification.mentions))
    if notification.url:
        lines.append(notification.url)
    return headers, "\n\n".join(lines)


def _header_value(text: str) -> str:
    """Return *text* on one line, RFC 2047-encoded when it is not ASCII (ntfy decodes it)."""
    flat = " ".join(text.split())
    if flat.isascii():
        return flat
    return Header(flat, "utf-8").encode(maxlinelen=10_000)


class _DeliveryFailed(Exception):
    """Delivery to one sink failed (never escapes notify). The message holds no token or URL."""

    def __init__(self, sink: str, problem: str, *, retryable: bool = False) -> None:
        self.sink = sink
        self.problem = problem
        self.retryable = retryable
        super().__init__(f"notify sink {sink!r}: {problem}")


class WebhookNotifier:
    """Deliver over HTTP(S) with httpx: ``webhook`` as JSON, ``ntfy`` as plain text.

    Retries up to *retries* times with exponential backoff on 5xx and transport
    errors; any other non-2xx status fails at once. Redirects are not followed,
    so a bearer token is never replayed to another host. The sink URL is not
    logged either: for ntfy the topic is the password, and webhook URLs often
    embed one. *redact* is applied to each notification's title and body
    before delivery (every known secret value, security invariant I6).
    """

    def __init__(
        self,
        secrets: SecretSource,
        *,
        redact: Callable[[str], str] | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._secrets = secrets
        self._redact = redact
        self._retries = max(0, retries)
        self._backoff = backoff
        self._sleep = sleep
        self._client = httpx.Client(
            transport=transport,
            timeout=timeout,
            follow_redirects=False,
            headers={"User-Agent": "opsvault-notify"},
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> WebhookNotifier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def notify(self, sinks: Sequence[Sink], notification: Notification) -> list[str]:
        if self._redact is not None:
            notification = replace(
                notification,
                title=self._redact(notification.title),
                body=self._redact(notification.body),
            )
        failed: list[str] = []
        for sink in sinks:
            try:
                self._deliver(sink, notification)
            except _DeliveryFailed as exc:
                log.warning("%s; event %r not delivered", exc, notification.event)
                failed.append(sink.name)
            else:
                log.info(
                    "notify sink %r: delivered event %r", sink.name, notification.event
                )
        return failed

    def _deliver(self, sink: Sink, notification: Notification) -> None:
        headers: dict[str, str]
        if sink.kind == "webhook":
            headers = {"Content-Type": "application/json"}
            content = json.dumps(
                render_webhook_payload(notification), ensure_ascii=False
            ).encode()
        elif sink.kind == "ntfy":
            headers, text = render_ntfy_message(notification)
            headers["Content-Type"] = "text/plain; charset=utf-8"
            content = text.encode()
        else:
            raise _DeliveryFailed(sink.name, f"unknown sink kind {sink.kind!r}")
        if sink.token_secret:
            headers["Authorization"] = f"Bearer {self._token(sink)}"
        attempt = 0
        while True:
            try:
                self._post(sink, headers, content)
                return
            except _DeliveryFailed as exc:
                if not exc.retryable or attempt >= self._retries:
                    raise
                delay = self._backoff * 2**attempt
                log.info("%s; retrying in %.1fs", exc, delay)
                self._sleep(delay)
                attempt += 1

    def _token(self, sink: Sink) -> str:
        assert sink.token_secret is not None
        try:
            token = self._secrets.get(sink.token_secret)
        except OpsvaultError as exc:
            raise _DeliveryFailed(sink.name, str(exc)) from None
        if not token:
            raise _DeliveryFailed(
                sink.name, f"token secret {sink.token_secret!r} is not set"
            )
        return token

    def _post(self, sink: Sink, headers: dict[str, str], content: bytes) -> None:
        # The one place outside forge/client.py that catches httpx errors: a sink
        # is not the forge, and its failures are reported, not translated.
        try:
            response = self._client.post(sink.url, headers=headers, content=content)
        except httpx.TransportError as exc:
            # str(exc) may quote the URL; the exception type says enough.
            raise _DeliveryFailed(
                sink.name, f"{type(exc).__name__} while posting", retryable=True
            ) from None
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
            raise _DeliveryFailed(
                sink.name, f"cannot post: {type(exc).__name__}"
            ) from None
        status = response.status_code
        if 200 <= status < 300:
            return
        raise _DeliveryFailed(
            sink.name, f"HTTP status {status}", retryable=500 <= status < 600
        )


@dataclass(slots=True)
class RecordingNotifier:
    """Record every delivery in ``sent`` as (sink name, notification); for tests.

    Sinks whose names are in ``failing`` are reported as failed and not recorded.
    """

    sent: list[tuple[str, Notification]] = field(default_factory=list)
    failing: frozenset[str] = frozenset()

    def notify(self, sinks: Sequence[Sink], notification: Notification) -> list[str]:
        failed: list[str] = []
        for sink in sinks:
            if sink.name in self.failing:
                failed.append(sink.name)
            else:
                self.sent.append((sink.name, notification))
        return failed

    def close(self) -> None:
        return None  # holds nothing
