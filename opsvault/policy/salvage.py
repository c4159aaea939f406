"""Keep what is valid of a policy that is not, so every problem can be found at once.

``vault policy check`` promises every problem in one run (docs/formats.md):
schema problems, the checks beyond the schema, and lint. The last two need
schema-valid data, so a schema error in one place (a ``default_tier`` of
``"low"``, say) used to hide every problem elsewhere. ``prune`` removes each
invalid part (or puts a neutral default where the part is required) until the
rest passes the schema; the problems of the removed parts were already
reported by the schema. The pruned data is for finding problems only: a policy
with problems is never used to classify anything.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from opsvault.errors import Problem

# Required parts replaced instead of removed: neutral values that add no problem.
_DEFAULTS: dict[tuple[str, ...], Any] = {
    ("schema",): 1,
    ("default_tier",): "high",
    ("tiers",): {
        "low": {"merge": "auto", "deadline": "1d"},
        "medium": {"merge": "reviewer", "deadline": "1d"},
        "high": {"merge": "admin", "deadline": "1d"},
    },
    ("tiers", "low"): {"merge": "auto", "deadline": "1d"},
    ("tiers", "medium"): {"merge": "reviewer", "deadline": "1d"},
    ("tiers", "high"): {"merge": "admin", "deadline": "1d"},
}
_MAX_ROUNDS = 16

# What a jsonschema validation error is reduced to: where, which keyword, extra keys.
SchemaError = tuple[tuple[str | int, ...], str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Pruned:
    """Schema-valid data left from a policy, and where each of its rules came from."""

    data: dict[str, Any]
    rule_index: tuple[int, ...]  # rule_index[i]: the original index of pruned rule i

    def original_path(self, path: str) -> str:
        """Return *path* (``$.rules[1].name``) as it reads in the original file."""
        match = re.match(r"^\$\.rules\[(\d+)\]", path)
        if match is None or int(match[1]) >= len(self.rule_index):
            return path
        return f"$.rules[{self.rule_index[int(match[1])]}]{path[match.end() :]}"

    def original_problems(self, problems: Iterable[Problem]) -> list[Problem]:
        return [Problem(self.original_path(p.path), p.message) for p in problems]


def prune(
    data: dict[str, Any], errors: Callable[[dict[str, Any]], list[SchemaError]]
) -> Pruned | None:
    """Return *data* without its invalid parts, or None when nothing valid is left.

    *errors* lists the schema errors of a document as (absolute path, keyword,
    keys: the unknown ones of ``additionalProperties``, the missing one of
    ``required``). Each round removes the part an error is at (the unknown
    keys for ``additionalProperties``, the table missing a key for
    ``required``), or resets a required part to a neutral default; arrays lose
    items from the back so indices stay right within a round.
    """
    data = copy.deepcopy(data)
    rules = data.get("rules")
    rule_index = list(range(len(rules))) if isinstance(rules, list) else []
    for _ in range(_MAX_ROUNDS):
        found = errors(data)
        if not found:
            return Pruned(data, tuple(rule_index))
        targets: set[tuple[str | int, ...]] = set()
        for path, keyword, keys in found:
            if keyword == "additionalProperties":
                targets.update((*path, key) for key in keys)
            elif keyword == "required":
                # A required part with a default gets it; else the table goes.
                targets.update(
                    (*path, key) if _default(*path, key) is not None else path
                    for key in keys
                )
            else:
                targets.add(path)
        # Deepest first, and later array items before earlier ones.
        for target in sorted(targets, key=_order, reverse=True):
            if not _drop(data, target, rule_index):
                return None
    return None


def _order(path: tuple[str | int, ...]) -> tuple[int, tuple[tuple[int, str], ...]]:
    return len(path), tuple(
        (p, "") if isinstance(p, int) else (-1, str(p)) for p in path
    )


def _default(*path: str | int) -> Any:
    return _DEFAULTS.get(tuple(str(p) for p in path))


def _drop(
    data: dict[str, Any], path: tuple[str | int, ...], rule_index: list[int]
) -> bool:
    if not path:
        return False
    default = _default(*path)
    parent: Any = data
    for part in path[:-1]:
        try:
            parent = parent[part]
        except (KeyError, IndexError, TypeError):
            return True  # already gone with an enclosing part
    last = path[-1]
    if default is not None and isinstance(parent, dict):
        parent[last] = copy.deepcopy(default)
        return True
    try:
        del parent[last]
    except (KeyError, IndexError, TypeError):
        return True
    if path[0] == "rules" and len(path) == 2 and isinstance(last, int):
        del rule_index[last]
    return True
