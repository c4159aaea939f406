"""One spelling of a moment (opsvault/timefmt.py), and nothing else parses ISO 8601 text."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opsvault.timefmt import parse_aware, parse_iso, render_iso

PACKAGE = Path(__file__).resolve().parent.parent / "opsvault"
T = datetime(2026, 11, 21, 12, 0, 5, tzinfo=UTC)


def test_render_is_utc_in_whole_seconds_with_z() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert render_iso(T) == "2026-11-21T12:00:05Z"
    assert render_iso(datetime(2026, 11, 21, 14, 0, 5, 999, tzinfo=plus_two)) == (
        "2026-11-21T12:00:05Z"
    )


@given(st.datetimes(timezones=st.just(UTC)))
def test_parse_reads_back_what_render_wrote(when: datetime) -> None:
    assert parse_iso(render_iso(when)) == when.replace(microsecond=0)


def test_parse_takes_z_and_offsets_and_refuses_junk() -> None:
    assert parse_iso("2026-11-21T12:00:05Z") == T
    assert parse_iso("2026-11-21T14:00:05+02:00") == T
    assert parse_iso("2026-11-21T12:00:05").tzinfo is None
    with pytest.raises(ValueError):
        parse_iso("yesterday")


def test_parse_aware_wants_an_offset() -> None:
    assert parse_aware("2026-11-21T12:00:05Z") == T
    assert parse_aware("2026-11-21T12:00:05") is None
    assert parse_aware("") is None
    assert parse_aware("12:00 tomorrow") is None


def test_only_timefmt_parses_iso_text() -> None:
    """``fromisoformat`` appears once in opsvault: the spelling cannot drift apart."""
    found = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute) and node.attr == "fromisoformat"
    )
    assert found == ["timefmt.py"]
