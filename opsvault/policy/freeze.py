"""Freeze windows (``[[freeze]]`` in policy.toml): when the dispatcher merges and fires nothing by itself.

A window is one-off (``start``/``end`` are TOML offset date-times) or weekly
(``every = "week"``, ``start``/``end`` are a weekday and a wall time like
``"fri 18:00"`` in the IANA ``time_zone``). While a window holds, the dispatcher
merges nothing by itself and fires nothing, except actions whose formula the
window lists in ``exempt``. What it would have done waits: it is deferred, never
refused, and freeze time does not count toward a PR's deadline.

Pure: the rules take the instant to judge (``now``) and never read the clock.
The time zone database is read through :mod:`zoneinfo` (data, not state),
imported where a zone is needed: its import reads ``sysconfig`` for the
database path, which a policy without weekly windows never pays (issue 11).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from opsvault.errors import Problem

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKLY_AT = re.compile(
    r"(?P<day>mon|tue|wed|thu|fri|sat|sun) (?P<hour>[01][0-9]|2[0-3]):(?P<minute>[0-5][0-9])",
    re.IGNORECASE,
)
# Overlapping windows chain ("frozen until" is when the last of them ends); a chain
# this long means the windows cover all time, and the answer stops there.
MAX_CHAIN = 64
# How far back freeze time is summed for a deadline (older time counts as unfrozen).
MAX_LOOKBACK = timedelta(days=400)


@dataclass(frozen=True, slots=True)
class WeeklyAt:
    """A weekday (0 = Monday) and a wall time, in the window's time zone."""

    weekday: int
    at: time

    def render(self) -> str:
        return f"{WEEKDAYS[self.weekday]} {self.at:%H:%M}"


@dataclass(frozen=True, slots=True)
class Freeze:
    """One ``[[freeze]]`` window: one-off (``start``/``end``) or weekly (``weekly``)."""

    name: str
    exempt: frozenset[str] = frozenset()
    start: datetime | None = None
    end: datetime | None = None
    weekly: tuple[WeeklyAt, WeeklyAt] | None = None
    time_zone: str = ""
    reason: str = ""

    def occurrences(self, since: datetime, until: datetime) -> Iterator[Interval]:
        """Yield this window's intervals that overlap [*since*, *until*), oldest first."""
        if self.weekly is None:
            assert self.start is not None and self.end is not None
            if self.start < until and since < self.end:
                yield Interval(self.start, self.end, self)
            return
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(self.time_zone)
        begin, finish = self.weekly
        length = (finish.weekday - begin.weekday) % 7
        if length == 0 and finish.at <= begin.at:
            length = 7
        day = since.astimezone(zone).date() - timedelta(days=8)
        last = until.astimezone(zone).date()
        while day <= last:
            if day.weekday() == begin.weekday:
                interval = Interval(
                    _instant(day, begin.at, zone),
                    _instant(day + timedelta(days=length), finish.at, zone),
                    self,
                )
                if interval.start < until and since < interval.end:
                    yield interval
                day += timedelta(days=7)
            else:
                day += timedelta(days=1)

    def applies_to(self, formulas: Collection[str] | None) -> bool:
        """Whether this window stops something touching *formulas*.

        ``None`` (or empty) is something no window exempts: a change with other
        files than actions, a human request, a merge in general.
        """
        return not formulas or not set(formulas) <= self.exempt


@dataclass(frozen=True, slots=True)
class Interval:
    start: datetime
    end: datetime
    freeze: Freeze


@dataclass(frozen=True, slots=True)
class Frozen:
    """A freeze in force: which windows hold, and the instant (UTC) the last of them ends."""

    names: tuple[str, ...]
    until: datetime
    exempt: frozenset[str] = frozenset()

    def render(self) -> str:
        """``frozen until 2026-12-24T08:00:00Z (year-end)``: what operators read."""
        return f"frozen until {render_instant(self.until)} ({', '.join(self.names)})"


def render_instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    # A wall time that happens twice (clocks go back) is its first occurrence
    # (fold=0); one that never happens (clocks go forward) is read with the
    # offset before the change, i.e. as that much later.
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def _holding(
    freezes: Sequence[Freeze], moment: datetime, formulas: Collection[str] | None
) -> list[Interval]:
    return [
        interval
        for freeze in freezes
        if freeze.applies_to(formulas)
        for interval in freeze.occurrences(moment, moment + timedelta(microseconds=1))
        if interval.start <= moment < interval.end
    ]


def frozen_at(
    freezes: Sequence[Freeze],
    now: datetime,
    formulas: Collection[str] | None = None,
) -> Frozen | None:
    """Return the freeze in force at *now* for something touching *formulas*, or None.

    A window holds from its start (inclusive) to its end (exclusive). Windows
    that overlap or touch chain: ``until`` is when none of them holds any more
    (at most ``MAX_CHAIN`` links; windows covering all time stop there).
    ``exempt`` is what every window in force exempts (the formulas still free).
    """
    holding = _holding(freezes, now, formulas)
    if not holding:
        return None
    names: list[str] = []
    exempt: frozenset[str] | None = None
    until = now
    for _ in range(MAX_CHAIN):
        if not holding:
            break
        for interval in holding:
            if interval.freeze.name not in names:
                names.append(interval.freeze.name)
                exempt = (
                    interval.freeze.exempt
                    if exempt is None
                    else exempt & interval.freeze.exempt
                )
        until = max(interval.end for interval in holding)
        holding = _holding(freezes, until, formulas)
    return Frozen(tuple(names), until, exempt or frozenset())


def frozen_time(
    freezes: Sequence[Freeze],
    since: datetime,
    until: datetime,
    formulas: Collection[str] | None = None,
) -> timedelta:
    """Return how much of [*since*, *until*) a window held for *formulas* (overlaps counted once).

    Only the last ``MAX_LOOKBACK`` before *until* is looked at.
    """
    since = max(since, until - MAX_LOOKBACK)
    if since >= until:
        return timedelta(0)
    spans = sorted(
        (max(i.start, since), min(i.end, until))
        for freeze in freezes
        if freeze.applies_to(formulas)
        for i in freeze.occurrences(since, until)
    )
    total = timedelta(0)
    current: tuple[datetime, datetime] | None = None
    for start, end in spans:
        if current is not None and start <= current[1]:
            current = (current[0], max(current[1], end))
            continue
        if current is not None:
            total += current[1] - current[0]
        current = (start, end)
    if current is not None:
        total += current[1] - current[0]
    return total


# ---------------------------------------------------------------------------
# Parsing: the schema has checked the shape; these are the checks beyond it.


def _weekly_at(value: Any) -> WeeklyAt | None:
    if not isinstance(value, str):
        return None
    match = _WEEKLY_AT.fullmatch(value)
    if match is None:
        return None
    return WeeklyAt(
        WEEKDAYS.index(match["day"].lower()),
        time(int(match["hour"]), int(match["minute"])),
    )


def _zone_problem(name: str) -> str | None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return (
            f"unknown time zone {name!r}; use an IANA name like 'Europe/Berlin' "
            "(the time zone database: Debian package tzdata, or pip install tzdata)"
        )
    return None


def freeze_problems(entries: Sequence[dict[str, Any]]) -> list[Problem]:
    """Return every problem of the ``[[freeze]]`` *entries* beyond the schema."""
    problems: list[Problem] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        where = f"$.freeze[{i}]"
        if entry["name"] in seen:
            problems.append(
                Problem(f"{where}.name", f"duplicate freeze name {entry['name']!r}")
            )
        seen.add(entry["name"])
        problems.extend(_entry_problems(entry, where))
    return problems


def _entry_problems(entry: dict[str, Any], where: str) -> list[Problem]:
    if entry.get("every") == "week":
        return _weekly_problems(entry, where)
    return _one_off_problems(entry, where)


def _weekly_problems(entry: dict[str, Any], where: str) -> list[Problem]:
    problems: list[Problem] = []
    for key in ("start", "end"):
        if _weekly_at(entry[key]) is None:
            problems.append(
                Problem(
                    f"{where}.{key}",
                    f"expected a weekday and a 24-hour time like 'fri 18:00' for a weekly window, got {entry[key]!r}",
                )
            )
    if "time_zone" not in entry:
        problems.append(
            Problem(
                f"{where}.time_zone",
                "a weekly window needs a time zone; add time_zone = 'Europe/Berlin' (or 'UTC')",
            )
        )
    elif (message := _zone_problem(entry["time_zone"])) is not None:
        problems.append(Problem(f"{where}.time_zone", message))
    if not problems and _weekly_at(entry["start"]) == _weekly_at(entry["end"]):
        problems.append(
            Problem(
                f"{where}.end",
                "equals start: the window would never end; give a different end",
            )
        )
    return problems


def _one_off_problems(entry: dict[str, Any], where: str) -> list[Problem]:
    problems: list[Problem] = []
    for key in ("start", "end"):
        value = entry[key]
        if not (isinstance(value, datetime) and value.tzinfo is not None):
            hint = (
                "; for a weekly window add every = 'week'"
                if _weekly_at(value) is not None
                else ""
            )
            problems.append(
                Problem(
                    f"{where}.{key}",
                    f"expected a date-time with an offset like 2026-12-24T00:00:00Z, got {value!r}{hint}",
                )
            )
    if "time_zone" in entry:
        problems.append(
            Problem(
                f"{where}.time_zone",
                "only for a weekly window (every = 'week'): a one-off window's start and end carry their own offsets; remove it",
            )
        )
    if not problems and entry["end"] <= entry["start"]:
        problems.append(
            Problem(f"{where}.end", f"is not after start {entry['start'].isoformat()}")
        )
    return problems


def build_freezes(entries: Sequence[dict[str, Any]]) -> tuple[Freeze, ...]:
    """Return the Freeze windows of *entries*, leaving out any with a problem.

    A policy with a problem is never used to decide (``parse_policy`` raises);
    ``read_policy`` builds one anyway to lint the rest, from the valid parts.
    """
    freezes: list[Freeze] = []
    for entry in entries:
        if _entry_problems(entry, "$"):
            continue
        name, reason = entry["name"], entry.get("reason", "")
        exempt = frozenset(entry.get("exempt", []))
        if entry.get("every") == "week":
            start, end = _weekly_at(entry["start"]), _weekly_at(entry["end"])
            assert start is not None and end is not None
            freezes.append(
                Freeze(
                    name,
                    exempt,
                    weekly=(start, end),
                    time_zone=entry["time_zone"],
                    reason=reason,
                )
            )
        else:
            freezes.append(
                Freeze(
                    name,
                    exempt,
                    start=entry["start"].astimezone(UTC),
                    end=entry["end"].astimezone(UTC),
                    reason=reason,
                )
            )
    return tuple(freezes)
