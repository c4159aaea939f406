"""The one spelling of a moment in records, caches and state: ISO 8601, UTC, seconds, ``Z``.

``render_iso`` writes it; ``parse_iso`` reads it back (and any ISO 8601 text
with an offset, e.g. ``+00:00`` or Forgejo's RFC 3339); ``parse_aware`` is the
lenient reader for input that may be absent, junk or without an offset.
"""

from __future__ import annotations

from datetime import UTC, datetime


def render_iso(when: datetime) -> str:
    """Return *when* as ``2026-11-21T12:00:00Z`` (converted to UTC, whole seconds)."""
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """Return the moment ISO 8601 *text* names; raise ValueError if it names none.

    A trailing ``Z`` means UTC. Text without an offset gives a naive datetime:
    callers that compare with an aware ``now`` use ``parse_aware``.
    """
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def parse_aware(text: str) -> datetime | None:
    """Return the moment *text* names if it is ISO 8601 with an offset, else None."""
    try:
        when = parse_iso(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None
