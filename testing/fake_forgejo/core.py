"""The fake forge without HTTP: its state and lookups (``forge_state.py``) and its seeding API (``seeding.py``)."""

from __future__ import annotations

from testing.fake_forgejo.forge_state import ApiError, Reply, Request
from testing.fake_forgejo.seeding import Seeding

__all__ = ["ApiError", "ForgeCore", "Reply", "Request"]


class ForgeCore(Seeding):
    """The fake forge the routes work on: its state, lookups and seeding API."""
