"""A ForgejoClient for tests against the fake: no real sleeping, a seeded jitter, fast retries."""

from __future__ import annotations

import random

from opsvault.forge.client import ForgejoClient
from opsvault.forge.session import Backoff
from opsvault.forge.token import ForgeToken
from testing.fake_forgejo.server import FakeForgejo


def client_for(
    forge: FakeForgejo,
    token: str,
    *,
    attempts: int = 3,
    cap: float = 0.02,
    seed: int = 1,
    repo: str = "acme/ops",
) -> ForgejoClient:
    """Return a client of *repo* on *forge* acting with *token*; close it when done."""
    owner, name = repo.split("/", 1)
    return ForgejoClient(
        forge.url,
        owner,
        name,
        ForgeToken(token),
        sleep=lambda _: None,
        rng=random.Random(seed),
        backoff=Backoff(attempts=attempts, base=0.01, cap=cap),
        timeout=5.0,
    )
