"""A fast yes/no validity check for the JSON Schema subset opsvault's own schemas use.

Importing jsonschema and building a validator costs more than classifying a
file, so a cold ``vault classify`` of a valid file would spend most of its time
there. ``compile_schema`` turns a schema into closures that answer "valid?".
It must never say "yes" where jsonschema says "no": any keyword it does not
know makes it answer "no", and a "no" only means "ask jsonschema", which
stays the authority for every reported problem. A property test compares the
two on generated documents (tests/vault/test_fastcheck.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[Any], bool]

_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "$defs", "title", "description"}
)
_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}


_KNOWN = frozenset(
    {
        "$ref",
        "type",
        "enum",
        "const",
        "pattern",
        "minLength",
        "maxLength",
        "minItems",
        "minProperties",
        "uniqueItems",
        "items",
        "required",
        "properties",
        "additionalProperties",
        "propertyNames",
        "anyOf",
        "oneOf",
        "not",
    }
)


def _never(value: Any) -> bool:
    return False


def _same(a: Any, b: Any) -> bool:
    # jsonschema tells booleans from numbers: 1 is not true.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def compile_schema(schema: Mapping[str, Any], anchored: Callable[[str], str]) -> Check:
    """Return a predicate equivalent to (or stricter than) validating against *schema*."""
    defs: Mapping[str, Any] = schema.get("$defs", {})
    return _Compiler(defs, anchored).compile(schema)


class _Compiler:
    def __init__(self, defs: Mapping[str, Any], anchored: Callable[[str], str]) -> None:
        self.defs = defs
        self.anchored = anchored
        self.cache: dict[str, Check] = {}

    def compile(self, schema: Mapping[str, Any]) -> Check:
        checks: list[Check] = []
        for key, value in schema.items():
            if key in _ANNOTATIONS:
                continue
            check = self.keyword(key, value, schema)
            if check is None:
                return _never  # unknown keyword: let jsonschema decide
            checks.append(check)
        return lambda v: all(c(v) for c in checks)

    def ref(self, ref: str) -> Check:
        if not ref.startswith("#/$defs/"):
            return _never
        name = ref.removeprefix("#/$defs/")
        if name not in self.cache:
            self.cache[name] = _never  # guards recursion while compiling
            self.cache[name] = self.compile(self.defs[name])
        compiled = self.cache[name]
        return lambda v: compiled(v)

    def keyword(self, key: str, value: Any, schema: Mapping[str, Any]) -> Check | None:
        if key == "$ref":
            return self.ref(value)
        if key == "type":
            names = value if isinstance(value, list) else [value]
            if any(n not in _TYPES for n in names):
                return None
            preds = [_TYPES[n] for n in names]
            return lambda v: any(p(v) for p in preds)
        if key == "enum":
            return lambda v: any(_same(v, option) for option in value)
        if key == "const":
            return lambda v: _same(v, value)
        if key == "pattern":
            regex = re.compile(self.anchored(value))
            return lambda v: not isinstance(v, str) or regex.search(v) is not None
        if key in ("minLength", "maxLength"):
            bound = int(value)
            if key == "minLength":
                return lambda v: not isinstance(v, str) or len(v) >= bound
            return lambda v: not isinstance(v, str) or len(v) <= bound
        if key == "minItems":
            return lambda v: not isinstance(v, list) or len(v) >= value
        if key == "minProperties":
            return lambda v: not isinstance(v, dict) or len(v) >= value
        if key == "uniqueItems":
            if not value:
                return lambda v: True
            return lambda v: not isinstance(v, list) or _unique(v)
        if key == "items":
            item = self.compile(value)
            return lambda v: not isinstance(v, list) or all(item(i) for i in v)
        if key == "required":
            return lambda v: not isinstance(v, dict) or all(k in v for k in value)
        if key == "properties":
            props = {k: self.compile(s) for k, s in value.items()}
            return lambda v: (
                not isinstance(v, dict) or all(props[k](v[k]) for k in props if k in v)
            )
        if key == "additionalProperties":
            known = set(schema.get("properties", {}))
            if value is False:
                return lambda v: not isinstance(v, dict) or all(k in known for k in v)
            if not isinstance(value, dict):
                return None
            extra = self.compile(value)
            return lambda v: (
                not isinstance(v, dict)
                or all(extra(x) for k, x in v.items() if k not in known)
            )
        if key == "propertyNames":
            key_check = self.compile(value)
            return lambda v: not isinstance(v, dict) or all(key_check(k) for k in v)
        if key == "anyOf":
            alternatives = [self.compile(s) for s in value]
            return lambda v: any(a(v) for a in alternatives)
        if key in ("oneOf", "not"):
            # A "no" from a sub-check may mean "unsure" (an unknown keyword below it), and
            # both keywords turn some "no" into "yes": decide here only when every sub-schema
            # is fully understood, else leave the whole document to jsonschema.
            subs = value if key == "oneOf" else [value]
            if not all(self.exact(sub) for sub in subs):
                return None
            checks = [self.compile(sub) for sub in subs]
            if key == "not":
                return lambda v: not checks[0](v)
            return lambda v: sum(1 for c in checks if c(v)) == 1
        return None

    def exact(self, schema: Any) -> bool:
        """Return whether every keyword in *schema* (and below) is one this module decides."""
        if not isinstance(schema, Mapping):
            return False
        for key, value in schema.items():
            if key in _ANNOTATIONS:
                continue
            if key not in _KNOWN:
                return False
            if key == "$ref" and not (
                value.startswith("#/$defs/") and self.exact(self.defs.get(value[8:]))
            ):
                return False
            if key in ("items", "propertyNames", "not") and not self.exact(value):
                return False
            if key in ("anyOf", "oneOf") and not all(self.exact(s) for s in value):
                return False
            if key == "properties" and not all(self.exact(s) for s in value.values()):
                return False
            if (
                key == "additionalProperties"
                and value is not False
                and not self.exact(value)
            ):
                return False
            if key == "type" and any(
                n not in _TYPES for n in (value if isinstance(value, list) else [value])
            ):
                return False
        return True


def _unique(items: list[Any]) -> bool:
    seen: list[Any] = []
    for item in items:
        if any(_same(item, other) for other in seen):
            return False
        seen.append(item)
    return True
