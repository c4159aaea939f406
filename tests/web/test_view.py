"""The page's rows: ages, who may approve, order by tier (pure, no server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from opsvault._resources import data_dir
from opsvault.cli.demo import DEMO_PORT
from opsvault.dispatcher.cache import PullEntry
from opsvault.dispatcher.status import FreezeNotice, Status
from opsvault.policy.parse import parse_policy
from opsvault.web.page import render_page
from opsvault.web.view import Observed, approvers, build_page, render_age

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
POLICY = parse_policy((data_dir("ops-template") / "vault" / "policy.toml").read_bytes())


@pytest.mark.parametrize(
    ("ago", "shown"),
    [
        (timedelta(seconds=40), "40s"),
        (timedelta(minutes=5, seconds=3), "5m"),
        (timedelta(hours=2, minutes=5), "2h 5m"),
        (timedelta(days=3, hours=4, minutes=1), "3d 4h"),
        (timedelta(seconds=-5), "in the future"),
    ],
)
def test_ages(ago: timedelta, shown: str) -> None:
    assert render_age(NOW - ago, NOW) == shown
    assert render_age(None, NOW) == "?"


def test_who_may_approve_follows_the_policy() -> None:
    assert approvers(POLICY, "low") == "nobody needed: the dispatcher merges it"
    assert approvers(POLICY, "high") == "an admin (alice), not the proposer"
    assert approvers(POLICY, "medium").startswith(
        "a reviewer (nobody listed) or an admin (alice)"
    )
    assert approvers(None, "high").startswith("unknown")
    assert approvers(POLICY, "bogus") == "unknown tier"


def test_waiting_rows_go_high_first_then_oldest_and_are_counted_by_tier() -> None:
    def entry(tier: str, seen: str) -> PullEntry:
        return PullEntry("h", seen, tier, "2026-12-09T00:00:00Z")

    observed = Observed(
        Status(source="x", halted=False),
        NOW,
        "test",
        policy=POLICY,
        pulls=(
            ("1", entry("low", "2026-12-02T11:00:00Z")),
            ("2", entry("high", "2026-12-02T10:00:00Z")),
            ("3", entry("high", "2026-12-02T09:00:00Z")),
        ),
    )
    page = build_page(observed, NOW)
    assert [r.pr for r in page.approval] == ["#3", "#2", "#1"]
    assert page.tier_counts == "high 2, low 1"
    assert page.notices == ()  # nothing frozen, no drift: no banner


def test_a_freeze_in_force_is_a_banner_on_the_page() -> None:
    frozen = FreezeNotice(
        ("year-end",),
        "2027-01-04T08:00:00Z",
        text="frozen until 2027-01-04T08:00:00Z (year-end)",
    )
    observed = Observed(
        Status(source="x", halted=False, frozen=frozen), NOW, "test", policy=POLICY
    )
    page = build_page(observed, NOW)
    assert page.notices == ("frozen until 2027-01-04T08:00:00Z (year-end)",)
    assert "frozen until 2027-01-04T08:00:00Z (year-end)" in render_page(page)


def test_the_readme_shows_where_the_page_is() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert f"status page: http://127.0.0.1:{DEMO_PORT}/" in readme
    assert "vault status --serve" in readme
