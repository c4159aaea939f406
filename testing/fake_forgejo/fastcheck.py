"""A fast yes/no pre-check for the JSON Schema subset swagger.v1.json uses.

Validating a page of 50 pull requests with jsonschema takes over a second
(each carries two ``Repository`` objects with nested users), too slow for
a benchmark that drives thousands of requests. ``compile_check`` turns a
schema into closures that answer "valid?" quickly. It is at least as strict
as jsonschema for the keywords it knows, and any other keyword makes it
answer "no", so a "no" only means "ask jsonschema", which stays the
authority for every reported problem.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

Check = Callable[[object], bool]
_ANNOTATIONS = frozenset(
    {
        "description",
        "title",
        "example",
        "default",
        "x-go-name",
        "x-go-package",
        "uniqueItems",
    }
)
_TYPES: dict[str, Callable[[object], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}


def _never(value: object) -> bool:
    return False


def _datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _any_type(preds: list[Check]) -> Check:
    return lambda v: any(p(v) for p in preds)


def _enum(options: list[object]) -> Check:
    return lambda v: any(v == o and type(v) is type(o) for o in options)


def _required(names: list[str]) -> Check:
    return lambda v: not isinstance(v, dict) or all(n in v for n in names)


def _items(item: Check) -> Check:
    return lambda v: not isinstance(v, list) or all(item(i) for i in v)


def _any_of(branches: list[Check]) -> Check:
    return lambda v: any(b(v) for b in branches)


class FastChecker:
    """Compile schemas that refer into *definitions* (``#/definitions/X``)."""

    def __init__(self, definitions: Mapping[str, Any]) -> None:
        self._definitions = definitions
        self._compiled: dict[str, Check] = {}
        self._memo = threading.local()

    def compile(self, schema: Mapping[str, Any]) -> Check:
        ref = schema.get("$ref")
        if isinstance(ref, str):
            return self._ref(ref)
        checks: list[Check] = []
        for key, value in schema.items():
            if key in _ANNOTATIONS or key in {
                "properties",
                "additionalProperties",
                "definitions",
            }:
                continue
            if key == "type":
                kinds = [value] if isinstance(value, str) else list(value)
                if any(k not in _TYPES for k in kinds):
                    return _never
                checks.append(_any_type([_TYPES[k] for k in kinds]))
            elif key == "enum":
                checks.append(_enum(list(value)))
            elif key == "format":
                if value == "date-time":
                    checks.append(_datetime)
            elif key == "required":
                checks.append(_required(list(value)))
            elif key == "items" and isinstance(value, Mapping):
                checks.append(_items(self.compile(value)))
            elif key == "anyOf":
                checks.append(_any_of([self.compile(b) for b in value]))
            else:
                return _never
        if "properties" in schema or "additionalProperties" in schema:
            checks.append(self._object(schema))
        return lambda v: all(c(v) for c in checks)

    def _ref(self, ref: str) -> Check:
        name = ref.removeprefix("#/definitions/")
        found = self._compiled.get(name)
        if found is None:
            holder: list[Check] = []
            memo = self._memo

            def check(value: object) -> bool:
                # Responses share sub-objects (one Repository per page); check each once.
                seen: dict[tuple[str, int], bool] | None = getattr(memo, "seen", None)
                if seen is None or not isinstance(value, dict | list):
                    return holder[0](value)
                key = (name, id(value))
                result = seen.get(key)
                if result is None:
                    result = seen[key] = holder[0](value)
                return result

            self._compiled[name] = check  # registered first: definitions may recurse
            holder.append(self.compile(self._definitions[name]))
            found = check
        return found

    def run(self, check: Check, value: object) -> bool:
        """Run *check* on *value*, checking shared sub-objects once."""
        self._memo.seen = {}
        try:
            return check(value)
        finally:
            self._memo.seen = None

    def _object(self, schema: Mapping[str, Any]) -> Check:
        props = {k: self.compile(v) for k, v in schema.get("properties", {}).items()}
        extra = schema.get("additionalProperties", True)
        if isinstance(extra, Mapping):
            extra_check = self.compile(extra)
        elif extra is False:
            extra_check = _never
        else:
            extra_check = None

        def check(value: object) -> bool:
            if not isinstance(value, dict):
                return True
            for key, item in value.items():
                prop = props.get(key)
                if prop is not None:
                    if not prop(item):
                        return False
                elif extra_check is not None and not extra_check(item):
                    return False
            return True

        return check
