"""Fault injection and request counting for the fake Forgejo.

A rule matches a request when the method matches (``"*"`` for any) and the
glob *pattern* matches either the request path below ``/api/v1`` (for example
``/repos/ops/vault/pulls/7/merge``) or the swagger template
(``/repos/{owner}/{repo}/pulls/{index}/merge``). Each rule fires ``times``
times and is then spent.
"""

from __future__ import annotations

import fnmatch
import threading
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum


class FaultKind(StrEnum):
    STATUS = "status"  # answer `status` without running the handler
    DELAY = "delay"  # sleep `seconds`, then answer normally
    DROP_AFTER_WRITE = (
        "drop-after-write"  # run the handler, then close without answering
    )
    DROP = "drop"  # close without answering and without running the handler


@dataclass(slots=True)
class FaultRule:
    kind: FaultKind
    method: str
    pattern: str
    remaining: int
    status: int = 503
    seconds: float = 0.0

    def matches(self, method: str, path: str, template: str) -> bool:
        return (self.method in {"*", method}) and (
            fnmatch.fnmatchcase(path, self.pattern)
            or fnmatch.fnmatchcase(template, self.pattern)
        )


@dataclass(frozen=True, slots=True)
class Faults:
    """What to do to one request; several kinds can apply at once."""

    status: int | None = None
    delay: float = 0.0
    drop_after_write: bool = False
    drop: bool = False


class FaultPlan:
    """Rules that tests arm; the server asks ``take`` once per request."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def _add(self, rule: FaultRule) -> FaultRule:
        if rule.remaining < 1:
            raise ValueError(f"times: {rule.remaining!r} must be at least 1")
        with self._lock:
            self._rules.append(rule)
        return rule

    def fail(
        self, method: str, pattern: str, *, status: int = 503, times: int = 1
    ) -> FaultRule:
        """Answer the next *times* matching requests with *status* (an ``APIError`` body)."""
        if status not in {500, 502, 503, 504}:
            raise ValueError(f"status: {status!r} is not a 5xx answer the fake injects")
        return self._add(
            FaultRule(FaultKind.STATUS, method, pattern, times, status=status)
        )

    def delay(
        self, method: str, pattern: str, seconds: float, *, times: int = 1
    ) -> FaultRule:
        """Sleep *seconds* before answering the next *times* matching requests."""
        return self._add(
            FaultRule(FaultKind.DELAY, method, pattern, times, seconds=seconds)
        )

    def drop_after_write(
        self, method: str, pattern: str, *, times: int = 1
    ) -> FaultRule:
        """Apply the next *times* matching requests, then close the socket without a response."""
        return self._add(FaultRule(FaultKind.DROP_AFTER_WRITE, method, pattern, times))

    def drop(self, method: str, pattern: str, *, times: int = 1) -> FaultRule:
        """Close the socket of the next *times* matching requests without applying them."""
        return self._add(FaultRule(FaultKind.DROP, method, pattern, times))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    @property
    def pending(self) -> tuple[FaultRule, ...]:
        with self._lock:
            return tuple(self._rules)

    def take(self, method: str, path: str, template: str) -> Faults:
        """Consume one use of the first matching rule of each kind."""
        status: int | None = None
        delay = 0.0
        seen: set[FaultKind] = set()
        with self._lock:
            for rule in list(self._rules):
                if rule.kind in seen or not rule.matches(method, path, template):
                    continue
                seen.add(rule.kind)
                rule.remaining -= 1
                if rule.remaining == 0:
                    self._rules.remove(rule)
                if rule.kind is FaultKind.STATUS:
                    status = rule.status
                elif rule.kind is FaultKind.DELAY:
                    delay = rule.seconds
        return Faults(
            status=status,
            delay=delay,
            drop_after_write=FaultKind.DROP_AFTER_WRITE in seen,
            drop=FaultKind.DROP in seen,
        )


class RequestCounter:
    """Count requests per operation key (``"GET /repos/{owner}/{repo}/pulls"``)."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def reset(self) -> dict[str, int]:
        """Return the counts so far and start again from zero (e.g. once per tick)."""
        with self._lock:
            out = dict(self._counts)
            self._counts.clear()
            return out
