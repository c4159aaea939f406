"""Claim order and budget (ADR 0013): pure rules, tested where they live."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from opsvault.dispatcher.candidates import claim_budget, claim_order

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


@given(st.integers(0, 200), st.integers(0, 200), st.integers(0, 64))
def test_the_budget_never_passes_the_slots_nor_the_tick_limit(
    queue_limit: int, claimed: int, slots: int
) -> None:
    budget = claim_budget(queue_limit, claimed, slots)
    assert 0 <= budget <= slots
    assert claimed + budget <= max(queue_limit, claimed)
    if claimed < queue_limit and slots:
        assert budget >= 1  # work is taken while slots and the limit allow
