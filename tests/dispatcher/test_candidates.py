"""Claim order (ADR 0013): a pure rule, tested where it lives."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from opsvault.dispatcher.candidates import claim_order

PATHS = [f"vault/actions/noop-{i:03d}.toml" for i in range(100)]


def test_the_order_is_stable_for_a_replica_and_differs_between_replicas() -> None:
    first = claim_order(PATHS, "vault-bot/aaaaaaaaaaaa")
    assert claim_order(list(reversed(PATHS)), "vault-bot/aaaaaaaaaaaa") == first
    others = [claim_order(PATHS, f"vault-bot/{n:012x}") for n in range(1, 4)]
    # Replicas reach for different actions first: their first batches barely overlap.
    batches = [set(first[:4]), *(set(o[:4]) for o in others)]
    overlap = sum(len(a & b) for i, a in enumerate(batches) for b in batches[i + 1 :])
    assert overlap <= 2
    assert first != sorted(PATHS)


@given(st.lists(st.text(min_size=1, max_size=8), unique=True), st.text(max_size=20))
def test_the_order_is_a_permutation(paths: list[str], seed: str) -> None:
    assert sorted(claim_order(paths, seed)) == sorted(paths)
