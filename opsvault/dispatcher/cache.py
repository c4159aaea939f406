"""The dispatcher's local cache in ``state_dir``: a watermark and timers, never the truth.

Where an action is in its life is read from git and the forge on every tick.
This file only saves requests: the listing watermark (so an idle tick costs one
forge request), the timers of open pull requests (deadline, veto window), what
was already published, notified or approved for a head, and which PR a merge
commit belongs to. Losing it costs one full listing and, at worst, one repeated
notification; it never changes a decision about firing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsvault.atomic_write import write_atomic

CACHE_FILE = "dispatcher-cache.json"


@dataclass(slots=True)
class PullEntry:
    head: str
    head_seen_at: str  # ISO time this head was first classified
    tier: str
    due: str  # ISO time the PR needs attention even if nothing happens
    published: str = ""  # fingerprint of what was last published for this head
    notified_head: str | None = None
    approved_head: str | None = None
    merge_retries: int = 0  # transient merge refusals in a row (pulls.merge_retry_at)


@dataclass(slots=True)
class Cache:
    watermark: str | None = None
    pulls: dict[str, PullEntry] = field(default_factory=dict)
    merges: dict[str, int] = field(default_factory=dict)  # merge commit id -> PR number
    checked: str | None = None  # main up to which dispatcher merges were checked (I1)

    loaded: str = ""  # the text read from disk: an unchanged cache is not rewritten

    def to_json(self) -> str:
        pulls = {
            n: {f: getattr(p, f) for f in PullEntry.__slots__}
            for n, p in self.pulls.items()
        }
        return json.dumps(
            {
                "watermark": self.watermark,
                "pulls": pulls,
                "merges": self.merges,
                "checked": self.checked,
            }
        )


def load_cache(state_dir: Path) -> Cache:
    """Return the cache in *state_dir*; an absent or unreadable one is an empty cache."""
    try:
        text = (state_dir / CACHE_FILE).read_text()
        data: dict[str, Any] = json.loads(text)
        return Cache(
            watermark=data.get("watermark"),
            pulls={n: PullEntry(**p) for n, p in data.get("pulls", {}).items()},
            merges={str(k): int(v) for k, v in data.get("merges", {}).items()},
            checked=data.get("checked"),
            loaded=text,
        )
    except (OSError, ValueError, TypeError):
        return Cache()


def write_cache(state_dir: Path, cache: Cache) -> None:
    """Replace the cache file atomically (not at all when nothing changed)."""
    text = cache.to_json()
    if text == cache.loaded:
        return
    write_atomic(state_dir / CACHE_FILE, text.encode("utf-8"))
    cache.loaded = text
