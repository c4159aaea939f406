"""Which waiting actions a replica reaches for first (ADR 0013).

A pure helper for the fire phase: each replica walks the waiting actions in an
order of its own, so replicas below the queue limit mostly claim different
actions. Correctness never depends on it: the claim commit's
compare-and-swap push decides who runs an action (ADR 0002, 0003).
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
