"""HTTP mechanics for the Forgejo client: auth, budget, retries, errors, paging.

Only this module and ``client.py`` touch httpx. Status codes are translated to
the ``ForgeError`` family here, so nothing above the forge sees HTTP.
"""

from __future__ import annotations

import functools
import logging
import random
import ssl
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from opsvault import __version__
from opsvault.errors import (
    ForgeAuthError,
    ForgeConflict,
    ForgeError,
    ForgeNotFound,
    ForgeUnavailable,
)
from opsvault.forge.errors import ForgeBudgetExceeded, ForgeOutcomeUnknown
from opsvault.forge.token import ForgeToken

log = logging.getLogger(__name__)

USER_AGENT = f"opsvault/{__version__}"

Json = Any
Params = Mapping[str, str | int]


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Return the TLS context every session of this process shares (httpx's default CAs).

    Loading the CA bundle is most of what building an ``httpx.Client`` costs
    (about 25 ms); a context is safe to share between clients and threads.
    """
    return httpx.create_ssl_context()


class RequestBudget:
    """Counts forge requests in one tick and refuses those beyond *limit*."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self.used = 0

    def charge(self) -> None:
        if self.limit is not None and self.used >= self.limit:
            raise ForgeBudgetExceeded(self.limit, self.used)
        self.used += 1

    def __repr__(self) -> str:
        return f"RequestBudget(limit={self.limit!r}, used={self.used!r})"


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff, full jitter: attempt n waits U(0, min(cap, base*2**n))."""

    attempts: int = 4
    base: float = 0.5
    cap: float = 8.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0.0, min(self.cap, self.base * (2**attempt)))


def _message_of(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])
    return response.text[:200]


def error_for(method: str, path: str, response: httpx.Response) -> ForgeError:
    """Return the ForgeError that describes the non-2xx *response*."""
    status = response.status_code
    where = f"{method} {path}"
    problem = f"HTTP {status}: {_message_of(response)!r}"
    if status in (401, 403):
        return ForgeAuthError(f"{where}: {problem}; check the token and its scopes")
    if status == 404:
        return ForgeNotFound(f"{where}: {problem}")
    if status >= 500:
        return ForgeUnavailable(f"{where}: {problem}")
    if 400 <= status < 500:
        return ForgeConflict(f"{where}: {problem}")
    return ForgeError(f"{where}: unexpected {problem}")


class Session:
    """One authenticated connection to a Forgejo instance's ``/api/v1``."""

    def __init__(
        self,
        base_url: str,
        token: ForgeToken,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 15.0,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None],
        rng: random.Random | None = None,
    ) -> None:
        self._token = token
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/api/v1",
            transport=transport,
            verify=_tls_context(),
            timeout=timeout,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        )
        self.backoff = backoff or Backoff()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.budget = RequestBudget()
        # Told of every request sent: (method, path, HTTP status or None when no
        # answer came); the dispatcher's metrics count them (ADR 0016).
        self.observer: Callable[[str, str, int | None], None] | None = None
        self._page_cap: int | None = None
        self._page_cap_known = False

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"Session(base_url={str(self._http.base_url)!r}, token={self._token!r})"

    def wait(self, attempt: int) -> None:
        self._sleep(self.backoff.delay(attempt, self._rng))

    def _send_once(
        self, method: str, path: str, params: Params | None, body: Json
    ) -> httpx.Response:
        self.budget.charge()
        headers = {"Authorization": f"token {self._token.reveal()}"}
        kwargs: dict[str, Any] = {"params": params, "headers": headers}
        if body is not None:
            kwargs["json"] = body
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError:
            if self.observer is not None:
                self.observer(method, path, None)
            raise
        if self.observer is not None:
            self.observer(method, path, response.status_code)
        return response

    def send(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Json = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send a request; return any response below 500.

        Idempotent requests (GET/PUT/DELETE unless told otherwise) are retried
        on 5xx, timeouts and connection errors with backoff, then raise
        ``ForgeUnavailable``. Other requests are retried only when they surely
        never reached the server (connect errors); when the answer is lost they
        raise ``ForgeOutcomeUnknown`` so that the caller reads the state back.
        """
        if idempotent is None:
            idempotent = method in ("GET", "HEAD", "PUT", "DELETE")
        where = f"{method} {path}"
        attempts = self.backoff.attempts
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self._send_once(method, path, params, body)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # Nothing reached the server: safe to repeat even a POST.
                log.warning(
                    "%s: cannot connect (%s), attempt %d",
                    where,
                    type(exc).__name__,
                    attempt + 1,
                )
                if last:
                    raise ForgeUnavailable(
                        f"{where}: cannot connect: {type(exc).__name__}"
                    ) from exc
            except httpx.TransportError as exc:
                log.warning(
                    "%s: %s, attempt %d", where, type(exc).__name__, attempt + 1
                )
                if not idempotent:
                    raise ForgeOutcomeUnknown(
                        where, f"answer lost: {type(exc).__name__}"
                    ) from exc
                if last:
                    raise ForgeUnavailable(
                        f"{where}: {type(exc).__name__} after {attempts} attempts"
                    ) from exc
            else:
                if response.status_code < 500:
                    return response
                log.warning(
                    "%s: HTTP %d, attempt %d", where, response.status_code, attempt + 1
                )
                if not idempotent:
                    raise ForgeOutcomeUnknown(where, f"HTTP {response.status_code}")
                if last:
                    raise error_for(method, path, response)
            self.wait(attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Json = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Like :meth:`send`, but raise the matching ForgeError on non-2xx answers."""
        response = self.send(
            method, path, params=params, body=body, idempotent=idempotent
        )
        if not response.is_success:
            raise error_for(method, path, response)
        return response

    def json(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Json = None,
        idempotent: bool | None = None,
    ) -> Json:
        response = self.call(
            method, path, params=params, body=body, idempotent=idempotent
        )
        try:
            return response.json()
        except ValueError as exc:
            raise ForgeError(f"{method} {path}: answer is not JSON") from exc

    def page_cap(self) -> int | None:
        """Return the page-size cap (``max_response_items``), read once per session."""
        if not self._page_cap_known:
            self._page_cap_known = True
            try:
                data = self.json("GET", "/settings/api")
            except (ForgeNotFound, ForgeAuthError):
                data = {}
            cap = data.get("max_response_items") if isinstance(data, dict) else None
            self._page_cap = cap if isinstance(cap, int) and cap > 0 else None
        return self._page_cap

    def paginate(
        self,
        path: str,
        params: Params | None = None,
        *,
        stop: Callable[[Json], bool] | None = None,
    ) -> Iterator[Json]:
        """Yield every item of a paginated list, page by page.

        The page size is never assumed: the client asks for the instance cap
        and decides whether more pages exist from ``X-HasMore``,
        ``X-Total-Count`` or the ``Link`` header, in that order; without any of
        them it reads on until a page is shorter than the longest seen. Link URLs are
        not followed (they are built from ROOT_URL); the next page number is.
        Null entries are skipped. *stop* ends the listing at the first item it
        accepts (that item is not yielded).
        """
        cap = self.page_cap()
        # Without a known cap, ask for Forgejo's default maximum; the answer's
        # length, not this number, decides what happens next.
        limit = cap if cap is not None else 50
        seen = 0
        largest = 0
        page = 1
        while True:
            query: dict[str, str | int] = dict(params or {})
            query.update(page=page, limit=limit)
            response = self.call("GET", path, params=query)
            try:
                items = response.json()
            except ValueError as exc:
                raise ForgeError(f"GET {path}: answer is not JSON") from exc
            if not isinstance(items, list):
                raise ForgeError(
                    f"GET {path}: expected a list, got {type(items).__name__}"
                )
            for item in items:
                if item is None:
                    continue
                if stop is not None and stop(item):
                    return
                yield item
            seen += len(items)
            largest = max(largest, len(items))
            if not items or not _has_more(response, seen, len(items), largest):
                return
            page += 1


def _has_more(response: httpx.Response, seen: int, got: int, largest: int) -> bool:
    has_more = response.headers.get("X-HasMore")
    if has_more is not None:
        return bool(has_more.strip().lower() == "true")
    total = response.headers.get("X-Total-Count")
    if total is not None and total.strip().isdigit():
        return seen < int(total)
    link = response.headers.get("Link")
    if link is not None:
        return 'rel="next"' in link
    # No hint at all: a page as long as the longest so far may be a silently
    # clamped full page, so read on until a shorter (or empty) page.
    return got >= largest
