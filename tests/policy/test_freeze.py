"""Freeze windows: parsing with clear errors, and the pure rule "frozen at T, until when".

Instants are injected; the weekly cases cross Europe/Berlin's daylight-saving
changes of 2026 (clocks forward on Sunday 29 March, back on Sunday 25 October).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opsvault._resources import data_dir
from opsvault.errors import PolicyError
from opsvault.policy.freeze import Freeze, frozen_at, frozen_time
from opsvault.policy.parse import parse_policy

TEMPLATE = (data_dir("ops-template") / "vault" / "policy.toml").read_text()

YEAR_END = """
[[freeze]]
name = "year-end"
start = 2026-12-24T00:00:00Z
end = 2027-01-04T09:00:00+01:00
exempt = ["noop"]
reason = "nobody is on call"
"""
WEEKEND = """
[[freeze]]
name = "weekend"
every = "week"
start = "fri 18:00"
end = "mon 08:00"
time_zone = "Europe/Berlin"
"""


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def freezes(text: str) -> tuple[Freeze, ...]:
    return parse_policy(TEMPLATE + text).freezes


def problems(text: str) -> list[tuple[str, str]]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(TEMPLATE + text)
    assert caught.value.where == "vault/policy.toml"
    return [(p.path, p.message) for p in caught.value.problems]


US = timedelta(microseconds=1)


# ---------------------------------------------------------------------------
# Parsing


def test_one_off_and_weekly_windows_parse() -> None:
    year_end, weekend = freezes(YEAR_END + WEEKEND)
    assert year_end.name == "year-end"
    assert year_end.start == utc(2026, 12, 24)
    assert year_end.end == utc(2027, 1, 4, 8)  # the offset is kept as an instant
    assert year_end.exempt == {"noop"}
    assert year_end.reason == "nobody is on call"
    assert weekend.weekly is not None
    assert [w.render() for w in weekend.weekly] == ["fri 18:00", "mon 08:00"]
    assert weekend.time_zone == "Europe/Berlin"


def test_a_policy_without_freezes_has_none() -> None:
    assert parse_policy(TEMPLATE).freezes == ()


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        (
            WEEKEND.replace('time_zone = "Europe/Berlin"', ""),
            "$.freeze[0].time_zone",
            "a weekly window needs a time zone",
        ),
        (
            WEEKEND.replace("Europe/Berlin", "Europe/Atlantis"),
            "$.freeze[0].time_zone",
            "unknown time zone 'Europe/Atlantis'; use an IANA name",
        ),
        (
            WEEKEND.replace("fri 18:00", "friday 6pm"),
            "$.freeze[0].start",
            "expected a weekday and a 24-hour time like 'fri 18:00'",
        ),
        (
            WEEKEND.replace("mon 08:00", "fri 18:00"),
            "$.freeze[0].end",
            "equals start: the window would never end",
        ),
        (
            WEEKEND.replace('every = "week"\n', ""),
            "$.freeze[0].start",
            "got 'fri 18:00'; for a weekly window add every = 'week'",
        ),
        (
            YEAR_END.replace("2026-12-24T00:00:00Z", "2026-12-24T00:00:00"),
            "$.freeze[0].start",
            "expected a date-time with an offset like 2026-12-24T00:00:00Z",
        ),
        (
            YEAR_END.replace("2027-01-04T09:00:00+01:00", "2026-12-23T00:00:00Z"),
            "$.freeze[0].end",
            "is not after start 2026-12-24T00:00:00+00:00",
        ),
        (
            YEAR_END + 'time_zone = "UTC"\n',
            "$.freeze[0].time_zone",
            "only for a weekly window",
        ),
        (YEAR_END + YEAR_END, "$.freeze[1].name", "duplicate freeze name 'year-end'"),
        (
            YEAR_END.replace('exempt = ["noop"]', 'exempt = "noop"'),
            "$.freeze[0].exempt",
            "expected array",
        ),
        (
            YEAR_END + "until = 2027-01-05T00:00:00Z\n",
            "$.freeze[0].until",
            "unknown key",
        ),
    ],
    ids=[
        "weekly-without-zone",
        "unknown-zone",
        "bad-weekly-time",
        "weekly-never-ends",
        "weekly-without-every",
        "local-date-time",
        "end-before-start",
        "zone-on-one-off",
        "duplicate-name",
        "exempt-not-a-list",
        "unknown-key",
    ],
)
def test_a_bad_window_is_a_clear_error_naming_the_field(
    text: str, path: str, message: str
) -> None:
    found = problems(text)
    assert any(p == path and message in m for p, m in found), found


# ---------------------------------------------------------------------------
# One-off windows: start inclusive, end exclusive


def test_one_off_window_edges() -> None:
    windows = freezes(YEAR_END)
    start, end = utc(2026, 12, 24), utc(2027, 1, 4, 8)
    assert frozen_at(windows, start - US) is None
    at_start = frozen_at(windows, start)
    assert at_start is not None
    assert at_start.until == end
    assert at_start.names == ("year-end",)
    assert at_start.render() == "frozen until 2027-01-04T08:00:00Z (year-end)"
    assert frozen_at(windows, end - US) is not None
    assert frozen_at(windows, end) is None


def test_exempt_formulas_are_not_frozen_but_anything_else_is() -> None:
    windows = freezes(YEAR_END)
    inside = utc(2026, 12, 25)
    assert frozen_at(windows, inside, {"noop"}) is None
    assert frozen_at(windows, inside, {"noop", "http-hook"}) is not None
    assert frozen_at(windows, inside, {"http-hook"}) is not None
    assert frozen_at(windows, inside, None) is not None  # not an action: no exemption
    assert frozen_at(windows, inside, ()) is not None


# ---------------------------------------------------------------------------
# Weekly windows across daylight-saving changes (Europe/Berlin)


def test_weekly_window_the_weekend_clocks_go_forward() -> None:
    # Fri 27 March 18:00 CET (UTC+1) to Mon 30 March 08:00 CEST (UTC+2): 61 hours.
    windows = freezes(WEEKEND)
    start, end = utc(2026, 3, 27, 17), utc(2026, 3, 30, 6)
    assert frozen_at(windows, start - US) is None
    frozen = frozen_at(windows, start)
    assert frozen is not None and frozen.until == end
    assert frozen_at(windows, end - US) is not None
    assert frozen_at(windows, end) is None
    assert frozen_time(windows, start - timedelta(days=1), end + timedelta(days=1)) == (
        timedelta(hours=61)
    )


def test_weekly_window_the_weekend_clocks_go_back() -> None:
    # Fri 23 October 18:00 CEST (UTC+2) to Mon 26 October 08:00 CET (UTC+1): 63 hours.
    windows = freezes(WEEKEND)
    start, end = utc(2026, 10, 23, 16), utc(2026, 10, 26, 7)
    assert frozen_at(windows, start - US) is None
    frozen = frozen_at(windows, utc(2026, 10, 25, 1, 30))  # inside the repeated hour
    assert frozen is not None and frozen.until == end
    assert frozen_at(windows, end - US) is not None
    assert frozen_at(windows, end) is None
    assert frozen_time(windows, start, end) == timedelta(hours=63)


def test_weekly_window_in_winter_and_in_summer_follows_the_wall_clock() -> None:
    windows = freezes(WEEKEND)
    winter = frozen_at(windows, utc(2026, 1, 10, 12))  # a Saturday
    summer = frozen_at(windows, utc(2026, 7, 11, 12))
    assert winter is not None and winter.until == utc(2026, 1, 12, 7)  # 08:00 CET
    assert summer is not None and summer.until == utc(2026, 7, 13, 6)  # 08:00 CEST
    assert frozen_at(windows, utc(2026, 7, 15, 12)) is None  # a Wednesday


def test_a_wall_time_that_does_not_exist_or_happens_twice() -> None:
    nightly = """
[[freeze]]
name = "sunday-night"
every = "week"
start = "sun 02:30"
end = "sun 04:00"
time_zone = "Europe/Berlin"
"""
    windows = freezes(nightly)
    # 29 March: 02:30 never happens (02:00 CET jumps to 03:00 CEST); read with the
    # offset before the change, it is 01:30Z (03:30 CEST), and the window is 30 minutes.
    assert frozen_at(windows, utc(2026, 3, 29, 1, 29)) is None
    spring = frozen_at(windows, utc(2026, 3, 29, 1, 30))
    assert spring is not None and spring.until == utc(2026, 3, 29, 2)
    # 25 October: 02:30 happens twice; the first (CEST, 00:30Z) opens the window,
    # which ends at 04:00 CET (03:00Z): two and a half hours.
    autumn = frozen_at(windows, utc(2026, 10, 25, 0, 30))
    assert autumn is not None and autumn.until == utc(2026, 10, 25, 3)
    assert frozen_at(windows, utc(2026, 10, 25, 0, 29)) is None


def test_overlapping_windows_chain_and_until_is_when_the_last_ends() -> None:
    windows = freezes(
        WEEKEND
        + """
[[freeze]]
name = "release"
start = 2026-07-13T05:00:00Z
end = 2026-07-14T12:00:00Z
"""
    )
    frozen = frozen_at(windows, utc(2026, 7, 11, 12))
    assert frozen is not None
    assert frozen.names == ("weekend", "release")
    assert frozen.until == utc(2026, 7, 14, 12)
    assert frozen_time(windows, utc(2026, 7, 13), utc(2026, 7, 15)) == timedelta(
        hours=36
    )


def test_frozen_time_counts_only_windows_that_apply() -> None:
    windows = freezes(YEAR_END)
    since, until = utc(2026, 12, 23), utc(2026, 12, 26)
    assert frozen_time(windows, since, until) == timedelta(days=2)
    assert frozen_time(windows, since, until, {"noop"}) == timedelta(0)
    assert frozen_time(windows, until, since) == timedelta(0)


@given(
    st.datetimes(
        min_value=datetime(2026, 1, 1),
        max_value=datetime(2027, 12, 31),
        timezones=st.just(UTC),
    )
)
def test_frozen_until_is_the_first_instant_not_frozen(moment: datetime) -> None:
    windows = WEEKLY_AND_ONE_OFF
    frozen = frozen_at(windows, moment)
    if frozen is None:
        assert frozen_time(windows, moment, moment + US) == timedelta(0)
        return
    assert frozen.until > moment
    assert frozen_at(windows, frozen.until - US) is not None
    assert frozen_at(windows, frozen.until) is None
    assert frozen_time(windows, moment, frozen.until) == frozen.until - moment


WEEKLY_AND_ONE_OFF = freezes(WEEKEND + YEAR_END)
