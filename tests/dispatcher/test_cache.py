"""The dispatcher cache (SQLite in state_dir): read by the row, written by what changed."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from opsvault.dispatcher.cache import (
    CACHE_DB,
    LEGACY_CACHE_FILE,
    PullEntry,
    load_cache,
    write_cache,
)


def entry(due: str, head: str = "a" * 40) -> PullEntry:
    return PullEntry(
        head=head, head_seen_at="2026-11-21T12:00:00Z", tier="medium", due=due
    )


def stored_rows(state: Path, table: str) -> int:
    with sqlite3.connect(state / CACHE_DB) as db:
        count: int = db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    return count


def test_entries_round_trip_and_mutations_in_place_are_saved(tmp_path: Path) -> None:
    cache = load_cache(tmp_path)
    assert cache.watermark is None and len(cache.pulls) == 0
    cache.watermark = "2026-11-21T12:00:00Z"
    cache.pulls["7"] = entry("2026-11-21T13:00:00Z")
    cache.merges["c" * 40] = 7
    write_cache(tmp_path, cache)
    cache.close()

    again = load_cache(tmp_path)
    assert again.watermark == "2026-11-21T12:00:00Z"
    assert again.pulls["7"] == entry("2026-11-21T13:00:00Z")
    assert again.merges == {"c" * 40: 7}
    again.pulls["7"].due = "2026-11-21T14:00:00Z"  # mutated in place, as pulls.py does
    again.pulls.pop("8", None)
    write_cache(tmp_path, again)
    again.close()

    third = load_cache(tmp_path)
    assert third.pulls["7"].due == "2026-11-21T14:00:00Z"
    del third.pulls["7"]
    write_cache(tmp_path, third)
    third.close()
    assert stored_rows(tmp_path, "pulls") == 0


def test_an_idle_tick_writes_the_watermark_only(tmp_path: Path) -> None:
    cache = load_cache(tmp_path)
    for n in range(500):
        cache.pulls[str(n)] = entry("2026-11-22T12:00:00Z")
        cache.merges[f"{n:040x}"] = n
    write_cache(tmp_path, cache)
    cache.close()

    idle = load_cache(tmp_path)
    assert idle.pulls.due("2026-11-21T12:01:00Z") == []  # nothing due: no row read
    idle.watermark = "2026-11-21T12:01:00Z"
    assert idle.db is not None
    before = idle.db.total_changes
    write_cache(tmp_path, idle)
    assert idle.db.total_changes - before == 2  # the two meta rows
    idle.close()


def test_due_finds_stored_and_new_entries_by_time(tmp_path: Path) -> None:
    cache = load_cache(tmp_path)
    cache.pulls["1"] = entry("2026-11-21T12:00:00Z")
    cache.pulls["2"] = entry("2026-11-21T12:30:00Z")
    write_cache(tmp_path, cache)
    cache.pulls["3"] = entry("2026-11-21T11:00:00Z")  # not written yet
    cache.pulls["1"].due = "2026-11-21T13:00:00Z"  # moved later, not written yet
    assert sorted(cache.pulls.due("2026-11-21T12:30:00Z")) == ["2", "3"]
    cache.close()


def test_an_unreadable_cache_is_an_empty_one(tmp_path: Path) -> None:
    (tmp_path / CACHE_DB).write_bytes(b"this is not a database" * 100)
    cache = load_cache(tmp_path)
    assert cache.watermark is None and len(cache.pulls) == 0
    cache.watermark = "2026-11-21T12:00:00Z"
    write_cache(tmp_path, cache)
    cache.close()
    assert load_cache(tmp_path).watermark == "2026-11-21T12:00:00Z"


def test_the_json_cache_of_earlier_versions_is_taken_over_once(tmp_path: Path) -> None:
    legacy = tmp_path / LEGACY_CACHE_FILE
    legacy.write_text(
        json.dumps(
            {
                "watermark": "2026-11-21T12:00:00Z",
                "pulls": {"4": vars_of(entry("2026-11-21T12:05:00Z"))},
                "merges": {"d" * 40: 4},
                "checked": "e" * 40,
            }
        )
    )
    cache = load_cache(tmp_path)
    assert (cache.watermark, cache.checked) == ("2026-11-21T12:00:00Z", "e" * 40)
    assert cache.pulls["4"].due == "2026-11-21T12:05:00Z"
    assert cache.merges["d" * 40] == 4
    write_cache(tmp_path, cache)
    cache.close()
    assert not legacy.exists()
    assert load_cache(tmp_path).pulls["4"].tier == "medium"


def vars_of(value: PullEntry) -> dict[str, object]:
    return {name: getattr(value, name) for name in PullEntry.__slots__}
