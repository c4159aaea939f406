"""A fast yes/no validity check for the JSON Schema subset our schemas use.

Importing jsonschema and building a validator costs more than classifying a
file, so a cold ``vault classify`` of a valid file would spend most of its time
there. ``compile_schema`` turns a schema into closures that answer "valid?".
It must never say "yes" where jsonschema says "no": any keyword it does not
know makes it answer "no", and a "no" only means "ask jsonschema", which
stays the authority for every reported problem. Property tests compare the
two on generated documents, for opsvault's own schemas
(tests/vault/test_fastcheck.py) and for the Forgejo swagger definitions the
test doubles check their messages against (tests/testing/test_fastcheck_swagger.py);
the latter build a ``FastChecker`` over the swagger's ``#/definitions/``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[Any], bool]

# Keywords that constrain nothing; jsonschema also ignores "example" and "x-*".
_ANNOTATIONS = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "$defs",
        "definitions",
        "title",
        "description",
        "default",
        "example",
    }
)
_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
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
_OBJECT = frozenset({"properties", "additionalProperties"})


def _never(value: Any) -> bool:
    return False


def _always(value: Any) -> bool:
    return True


def _annotation(key: str) -> bool:
    return key in _ANNOTATIONS or key.startswith("x-")


def _same(a: Any, b: Any) -> bool:
    """JSON equality as jsonschema sees it: 1 is not true, also inside arrays and objects."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def compile_schema(schema: Mapping[str, Any], anchored: Callable[[str], str]) -> Check:
    """Return a predicate equivalent to (or stricter than) validating against *schema*."""
    return FastChecker(schema.get("$defs", {}), anchored=anchored).compile(schema)


class _Memo(threading.local):
    """What ``run`` has checked so far on this thread (None outside a run)."""

    seen: dict[tuple[str, int], bool] | None = None


class FastChecker:
    """Compile schemas whose ``$ref`` points into *definitions* (``ref_prefix`` + name).

    *anchored* rewrites a ``pattern`` the way the authoritative validator reads
    it (identity: ``re.search``). *formats* maps the formats that validator
    checks to a predicate; ``None`` means it checks formats this module does
    not know, so any ``format`` sends the document to it; with a mapping, a
    format outside it is not checked, as jsonschema ignores formats its
    FormatChecker lacks. ``run`` checks a sub-object shared by reference
    (one user object on every pull request of a page) once per definition.
    """

    def __init__(
        self,
        definitions: Mapping[str, Any],
        *,
        ref_prefix: str = "#/$defs/",
        anchored: Callable[[str], str] = lambda pattern: pattern,
        formats: Mapping[str, Check] | None = None,
    ) -> None:
        self._definitions = definitions
        self._prefix = ref_prefix
        self._anchored = anchored
        self._formats = formats
        self._compiled: dict[str, Check] = {}
        self._lock = threading.RLock()
        self._memo = _Memo()

    def compile(self, schema: Mapping[str, Any]) -> Check:
        with self._lock:
            return self._compile(schema)

    def run(self, check: Check, value: Any) -> bool:
        """Run *check* on *value*, checking an object shared by reference once."""
        self._memo.seen = {}
        try:
            return check(value)
        finally:
            self._memo.seen = None

    def _compile(self, schema: Any) -> Check:
        if schema is True:
            return _always
        if not isinstance(schema, Mapping):
            return _never  # false, or not a schema at all
        checks: list[Check] = []
        for key, value in schema.items():
            if _annotation(key) or key in _OBJECT:
                continue
            check = self._keyword(key, value)
            if check is None:
                return _never  # unknown keyword: let jsonschema decide
            checks.append(check)
        if not _OBJECT.isdisjoint(schema):
            check = self._object(schema)
            if check is None:
                return _never
            checks.append(check)
        if len(checks) == 1:
            return checks[0]
        return lambda v: all(c(v) for c in checks)

    def _ref(self, ref: str) -> Check:
        if not ref.startswith(self._prefix):
            return _never
        name = ref.removeprefix(self._prefix)
        found = self._compiled.get(name)
        if found is not None:
            return found
        if name not in self._definitions:
            return _never
        holder: list[Check] = []
        memo = self._memo

        def check(value: Any) -> bool:
            seen = memo.seen
            if seen is None or not isinstance(value, dict | list):
                return holder[0](value)
            key = (name, id(value))
            result = seen.get(key)
            if result is None:
                result = seen[key] = holder[0](value)
            return result

        self._compiled[name] = check  # registered first: definitions may recurse
        holder.append(self._compile(self._definitions[name]))
        return check

    def _object(self, schema: Mapping[str, Any]) -> Check | None:
        """``properties`` and ``additionalProperties`` in one pass over the object's keys."""
        props = {k: self._compile(s) for k, s in schema.get("properties", {}).items()}
        extra_schema = schema.get("additionalProperties", True)
        if extra_schema is True:
            extra: Check | None = None
        elif extra_schema is False:
            extra = _never
        elif isinstance(extra_schema, Mapping):
            extra = self._compile(extra_schema)
        else:
            return None

        def check(v: Any) -> bool:
            if not isinstance(v, dict):
                return True
            for key, item in v.items():
                prop = props.get(key)
                if prop is not None:
                    if not prop(item):
                        return False
                elif extra is not None and not extra(item):
                    return False
            return True

        return check

    def _keyword(self, key: str, value: Any) -> Check | None:
        if key == "$ref":
            return self._ref(value) if isinstance(value, str) else None
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
        if key == "format":
            if self._formats is None:
                return None
            fmt = self._formats.get(value, _always)
            return lambda v: not isinstance(v, str) or fmt(v)
        if key == "pattern":
            regex = re.compile(self._anchored(value))
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
                return _always
            return lambda v: not isinstance(v, list) or _unique(v)
        if key == "items":
            if not isinstance(value, Mapping):
                return None  # an array of schemas (tuple validation)
            item = self._compile(value)
            return lambda v: not isinstance(v, list) or all(item(i) for i in v)
        if key == "required":
            return lambda v: not isinstance(v, dict) or all(k in v for k in value)
        if key == "propertyNames":
            key_check = self._compile(value)
            return lambda v: not isinstance(v, dict) or all(key_check(k) for k in v)
        if key == "anyOf":
            alternatives = [self._compile(s) for s in value]
            return lambda v: any(a(v) for a in alternatives)
        if key in ("oneOf", "not"):
            # A "no" from a sub-check may mean "unsure" (an unknown keyword below it), and
            # both keywords turn some "no" into "yes": decide here only when every sub-schema
            # is fully understood, else leave the whole document to jsonschema.
            subs = value if key == "oneOf" else [value]
            if not all(self._exact(sub, set()) for sub in subs):
                return None
            checks = [self._compile(sub) for sub in subs]
            if key == "not":
                return lambda v: not checks[0](v)
            return lambda v: sum(1 for c in checks if c(v)) == 1
        return None

    def _exact(self, schema: Any, visiting: set[str]) -> bool:
        """Return whether every keyword in *schema* (and below) is one this module decides.

        A ``format`` never is: its check may be lenient where the validator is not.
        """
        if not isinstance(schema, Mapping):
            return False
        for key, value in schema.items():
            if _annotation(key):
                continue
            if key not in _KNOWN:
                return False
            if key == "$ref":
                if not isinstance(value, str) or not value.startswith(self._prefix):
                    return False
                name = value.removeprefix(self._prefix)
                if name in visiting:
                    continue  # a cycle adds no keyword that was not already looked at
                if not self._exact(self._definitions.get(name), visiting | {name}):
                    return False
            if key in ("items", "propertyNames", "not") and not self._exact(
                value, visiting
            ):
                return False
            if key in ("anyOf", "oneOf") and not all(
                self._exact(s, visiting) for s in value
            ):
                return False
            if key == "properties" and not all(
                self._exact(s, visiting) for s in value.values()
            ):
                return False
            if (
                key == "additionalProperties"
                and not isinstance(value, bool)
                and not self._exact(value, visiting)
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
