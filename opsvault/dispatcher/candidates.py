"""Which waiting actions a replica reaches for, and how many (ADR 0013).

Pure helpers for the fire phase. A replica claims only what it can start now
(its free execution slots), and each replica walks the waiting actions in an
order of its own, so replicas on one main mostly claim different actions and
their compare-and-swap pushes rarely lose. Correctness never depends on
either: the claim commit's push decides who runs an action (ADR 0002, 0003).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def claim_order(paths: Sequence[str], seed: str) -> list[str]:
    """Return *paths* in an order particular to *seed* (a replica's claim token).

    The order is a hash of (seed, path): stable for one seed, unrelated
    between seeds, and no path is favoured across seeds, so no action waits
    behind the others for long.
    """

    def rank(path: str) -> bytes:
        return hashlib.sha256(f"{seed}\0{path}".encode()).digest()

    return sorted(paths, key=rank)


def claim_budget(queue_limit: int, claimed: int, free_slots: int) -> int:
    """Return how many actions to claim next: no more than the free slots, nor the tick's limit.

    *claimed* is how many this tick already claimed (and ran); ``queue_limit``
    bounds a whole tick, ``free_slots`` one batch.
    """
    return max(0, min(queue_limit - claimed, free_slots))
