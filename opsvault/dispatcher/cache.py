"""The dispatcher's local cache in ``state_dir``: a watermark and timers, never the truth.

Where an action is in its life is read from git and the forge on every tick.
This file only saves requests: the listing watermark (so an idle tick costs one
forge request), the timers of open pull requests (deadline, veto window), what
was already published, notified or approved for a head, and which PR a merge
commit belongs to. Losing it costs one full listing and, at worst, one repeated
notification; it never changes a decision about firing.

It is a SQLite database (stdlib ``sqlite3``) read and written by the row: a
tick reads the entries of the PRs it looks at (and the due ones, by index),
and writes back only what it changed, in one transaction — so an idle tick
costs the same with 10 or 500 open PRs and 10,000 merges (issue 11). The JSON
file earlier versions wrote is read once, then removed.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator, MutableMapping
from dataclasses import astuple, dataclass, field, fields
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CACHE_DB = "dispatcher-cache.sqlite3"
LEGACY_CACHE_FILE = "dispatcher-cache.json"
# Seconds: a `vault dispatcher tick` beside the service waits its turn.
_BUSY_TIMEOUT = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS pulls (
    number TEXT PRIMARY KEY,
    head TEXT NOT NULL,
    head_seen_at TEXT NOT NULL,
    tier TEXT NOT NULL,
    due TEXT NOT NULL,
    published TEXT NOT NULL,
    notified_head TEXT,
    approved_head TEXT,
    merge_retries INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS pulls_due ON pulls (due);
CREATE TABLE IF NOT EXISTS merges (commit_id TEXT PRIMARY KEY, pr INTEGER NOT NULL);
"""


@dataclass(slots=True)
class PullEntry:
    head: str
    head_seen_at: str  # ISO time this head was first classified
    tier: str
    due: str  # ISO time (``fire.iso``) the PR needs attention even if nothing happens
    published: str = ""  # fingerprint of what was last published for this head
    notified_head: str | None = None
    approved_head: str | None = None
    merge_retries: int = 0  # transient merge refusals in a row (pulls.merge_retry_at)


_PULL_COLUMNS = tuple(f.name for f in fields(PullEntry))


class _Rows:
    """Rows of one table read on demand and remembered; what changed is written back."""

    def __init__(self, db: sqlite3.Connection | None) -> None:
        self._db = db
        self._read: dict[str, Any] = {}  # key -> value as loaded (None: absent)
        self._now: dict[str, Any] = {}  # key -> value now (None: deleted)

    def _load(self, key: str) -> Any:
        raise NotImplementedError

    def _value(self, key: str) -> Any:
        if key not in self._now:
            value = self._load(key) if self._db is not None else None
            self._read[key] = _copy(value)
            self._now[key] = value
        return self._now[key]

    def changed(self) -> Iterator[tuple[str, Any]]:
        """Yield (key, value or None for deleted) for every row that differs from the database."""
        for key, value in self._now.items():
            if value != self._read.get(key):
                yield key, value

    def saved(self) -> None:
        self._read = {k: _copy(v) for k, v in self._now.items()}


def _copy(value: Any) -> Any:
    return PullEntry(*astuple(value)) if isinstance(value, PullEntry) else value


class PullEntries(_Rows, MutableMapping[str, PullEntry]):
    """PR number (as text) -> its entry; entries are mutable and saved as they are at write time."""

    def _load(self, key: str) -> PullEntry | None:
        assert self._db is not None
        row = self._db.execute(
            f"SELECT {', '.join(_PULL_COLUMNS)} FROM pulls WHERE number = ?", (key,)
        ).fetchone()
        return None if row is None else PullEntry(*row)

    def __getitem__(self, key: str) -> PullEntry:
        value = self._value(key)
        if value is None:
            raise KeyError(key)
        assert isinstance(value, PullEntry)
        return value

    def __setitem__(self, key: str, value: PullEntry) -> None:
        self._value(key)
        self._now[key] = value

    def __delitem__(self, key: str) -> None:
        if self._value(key) is None:
            raise KeyError(key)
        self._now[key] = None

    def _keys(self) -> list[str]:
        """Return every key, reading all stored rows in one query (the status page lists them)."""
        if self._db is not None:
            rows = self._db.execute(
                f"SELECT number, {', '.join(_PULL_COLUMNS)} FROM pulls"
            ).fetchall()
            for number, *values in rows:
                if number not in self._now:
                    entry = PullEntry(*values)
                    self._read[number] = _copy(entry)
                    self._now[number] = entry
        return [k for k, v in self._now.items() if v is not None]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def due(self, now_iso: str) -> list[str]:
        """Return the numbers of the PRs whose ``due`` is at or before *now_iso* (an index scan)."""
        stored = (
            [
                row[0]
                for row in self._db.execute(
                    "SELECT number FROM pulls WHERE due <= ?", (now_iso,)
                )
            ]
            if self._db is not None
            else []
        )
        keys = dict.fromkeys([*stored, *self._now])
        found = []
        for key in keys:
            entry = self._value(key)
            if entry is not None and entry.due <= now_iso:
                found.append(key)
        return found


class MergeIndex(_Rows, MutableMapping[str, int]):
    """Merge commit id -> the PR it merged (what the dispatcher learnt; grows with history)."""

    def _load(self, key: str) -> int | None:
        assert self._db is not None
        row = self._db.execute(
            "SELECT pr FROM merges WHERE commit_id = ?", (key,)
        ).fetchone()
        return None if row is None else int(row[0])

    def __getitem__(self, key: str) -> int:
        value = self._value(key)
        if value is None:
            raise KeyError(key)
        return int(value)

    def __setitem__(self, key: str, value: int) -> None:
        self._value(key)
        self._now[key] = int(value)

    def __delitem__(self, key: str) -> None:
        if self._value(key) is None:
            raise KeyError(key)
        self._now[key] = None

    def __iter__(self) -> Iterator[str]:  # only for debugging: ticks look keys up
        stored = (
            [row[0] for row in self._db.execute("SELECT commit_id FROM merges")]
            if self._db is not None
            else []
        )
        keys = dict.fromkeys([*stored, *self._now])
        return iter([k for k in keys if self._value(k) is not None])

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass(slots=True)
class Cache:
    watermark: str | None = None
    checked: str | None = None  # main up to which dispatcher merges were checked (I1)
    db: sqlite3.Connection | None = None  # None until a cache file exists
    pulls: PullEntries = field(default_factory=lambda: PullEntries(None))
    merges: MergeIndex = field(default_factory=lambda: MergeIndex(None))
    loaded: tuple[str | None, str | None] = (None, None)  # (watermark, checked) as read

    def attach(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.pulls._db = db
        self.merges._db = db

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=_BUSY_TIMEOUT, isolation_level=None)
    db.executescript(_SCHEMA)
    return db


def _open(state_dir: Path, *, create: bool) -> sqlite3.Connection | None:
    """Open the cache database (creating it if *create*); an unreadable one is replaced.

    Return None when there is none (and *create* is false) or it cannot be opened.
    """
    path = state_dir / CACHE_DB
    if not create and not path.exists():
        return None
    try:
        if create:
            state_dir.mkdir(parents=True, exist_ok=True)
        return _connect(path)
    except sqlite3.DatabaseError as exc:  # not a database, or a broken one
        log.warning("%s: unreadable (%s); starting an empty cache", path, exc)
        try:
            path.unlink(missing_ok=True)
            return _connect(path) if create else None
        except (OSError, sqlite3.Error) as again:
            log.warning("%s: cannot be replaced (%s); no cache this tick", path, again)
            return None
    except (OSError, sqlite3.Error) as exc:
        log.warning("%s: cannot be opened (%s); no cache this tick", path, exc)
        return None


def load_cache(state_dir: Path) -> Cache:
    """Return the cache in *state_dir*; an absent or unreadable one is an empty cache.

    Only the watermark and the checked main are read now; entries are read
    when a tick asks for them. Reading creates nothing: the file is made by
    the first ``write_cache``.
    """
    db = _open(state_dir, create=False)
    cache = Cache(db=db, pulls=PullEntries(db), merges=MergeIndex(db))
    meta: dict[str, str] = {}
    if db is not None:
        try:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.Error as exc:
            log.warning("%s: unreadable (%s); starting an empty cache", state_dir, exc)
            cache.close()
            cache = Cache()
    cache.watermark, cache.checked = meta.get("watermark"), meta.get("checked")
    cache.loaded = (cache.watermark, cache.checked)
    if not meta:
        _import_legacy(state_dir, cache)
    return cache


def _import_legacy(state_dir: Path, cache: Cache) -> None:
    """Take over the JSON cache of an earlier version, once (it is removed when written)."""
    legacy = state_dir / LEGACY_CACHE_FILE
    try:
        data: dict[str, Any] = json.loads(legacy.read_text())
        pulls = {str(n): PullEntry(**p) for n, p in data.get("pulls", {}).items()}
        merges = {str(k): int(v) for k, v in data.get("merges", {}).items()}
    except FileNotFoundError:
        return
    except (OSError, ValueError, TypeError) as exc:
        log.warning("%s: unreadable (%s); ignored", legacy, exc)
        return
    cache.watermark, cache.checked = data.get("watermark"), data.get("checked")
    for number, entry in pulls.items():
        cache.pulls[number] = entry
    for commit, pr in merges.items():
        cache.merges[commit] = pr


def write_cache(state_dir: Path, cache: Cache) -> None:
    """Write back what the tick changed, in one transaction (nothing when nothing changed)."""
    pulls = list(cache.pulls.changed())
    merges = list(cache.merges.changed())
    meta = (cache.watermark, cache.checked)
    try:
        if pulls or merges or meta != cache.loaded:
            if cache.db is None:
                db = _open(state_dir, create=True)
                if db is None:
                    return
                cache.attach(db)
            db = cache.db
            assert db is not None
            with _transaction(db):
                for key, value in (("watermark", meta[0]), ("checked", meta[1])):
                    db.execute(
                        "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                        (key, value),
                    )
                for number, entry in pulls:
                    if entry is None:
                        db.execute("DELETE FROM pulls WHERE number = ?", (number,))
                    else:
                        db.execute(
                            f"INSERT OR REPLACE INTO pulls (number, {', '.join(_PULL_COLUMNS)}) "
                            f"VALUES (?{', ?' * len(_PULL_COLUMNS)})",
                            (number, *astuple(entry)),
                        )
                for commit, pr in merges:
                    if pr is None:
                        db.execute("DELETE FROM merges WHERE commit_id = ?", (commit,))
                    else:
                        db.execute(
                            "INSERT OR REPLACE INTO merges (commit_id, pr) VALUES (?, ?)",
                            (commit, pr),
                        )
            cache.pulls.saved()
            cache.merges.saved()
            cache.loaded = meta
        (state_dir / LEGACY_CACHE_FILE).unlink(missing_ok=True)
    except (OSError, sqlite3.Error) as exc:
        # A cache that could not be written costs requests next tick, never a decision.
        log.warning("%s: cache not written: %s", state_dir, exc)


class _transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
