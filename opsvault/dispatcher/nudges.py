"""Pull requests a webhook said changed, waiting for the next tick (thread-safe).

The webhook receiver adds PR numbers and wakes the scheduler; the tick drains
them at its start and looks at those PRs even if the listing would not show
them. Losing nudges (a failed tick, a restart) costs nothing but latency:
polling remains the drain for every change.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


def _nothing() -> None:
    return None


class Nudges:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._numbers: set[int] = set()
        self.wake: Callable[[], None] = _nothing  # set by the service

    def add(self, number: int | None) -> None:
        """Remember PR *number* (None: something changed, no PR in particular) and wake."""
        if number is not None:
            with self._lock:
                self._numbers.add(number)
        self.wake()

    def drain(self) -> frozenset[int]:
        """Return and forget every PR number added since the last drain."""
        with self._lock:
            numbers, self._numbers = frozenset(self._numbers), set()
        return numbers
