"""Forge logins compare without regard to case.

Forgejo looks users up by ``lower_name``: ``Deploy-Bot`` and ``deploy-bot`` are
one account. Every check that asks "is this user that one?" (policy principals,
proposer and co-author, approvals, timeline actors, hold eligibility, the
dispatcher identity) goes through these helpers, so a spelling in another case
can never slip past a check (security review finding G-5, G-7).
"""

from __future__ import annotations

from collections.abc import Iterable


def login_key(login: str) -> str:
    """Return the form of *login* that compares equal for every spelling of it."""
    return login.casefold()


def same_login(a: str | None, b: str | None) -> bool:
    """Return whether *a* and *b* name the same forge account (None and "" name none)."""
    return bool(a) and bool(b) and login_key(a or "") == login_key(b or "")


def login_in(login: str | None, logins: Iterable[str]) -> bool:
    """Return whether *login* is one of *logins*, ignoring case."""
    if not login:
        return False
    key = login_key(login)
    return any(login_key(other) == key for other in logins)
