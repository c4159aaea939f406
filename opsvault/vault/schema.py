"""Parse TOML text and validate it against the JSON Schemas shipped in ``schemas/``.

This is the edge where ``dict[str, Any]`` exists: callers get the plain data
back only after every schema problem has been collected, and build dataclasses
from it. TOML is read with the standard library's ``tomllib`` (fast and strict);
``tomlkit`` is used only where a human-written file is edited in place.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

from opsvault.errors import InvalidFileError, Problem
from opsvault.vault.bounded import TOO_DEEP, TOO_LONG_NUMBER, shape_problems

MAX_FILE_BYTES = 64 * 1024

_TOML_POSITION = re.compile(
    r"^(?P<what>.*?) \(at (?:line (?P<line>\d+), column (?P<col>\d+)|end of document)\)$"
)


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Return the JSON Schema ``schemas/<name>.schema.json`` as data."""
    text = (
        resources.files("opsvault.vault")
        .joinpath(f"schemas/{name}.schema.json")
        .read_text()
    )
    schema: dict[str, Any] = json.loads(text)
    return schema


def anchored(pattern: str) -> str:
    """Return *pattern* with a final ``$`` turned into ``\\Z``.

    Python's ``$`` also matches before a trailing newline, so ``'web\\n'`` would
    pass ``^[a-z]+$``. Every pattern opsvault applies ends at the true end.
    """
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        return pattern[:-1] + r"\Z"
    return pattern


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(anchored(pattern))


@cache
def _validator(name: str) -> Any:
    from jsonschema import (  # lazy: cold start
        Draft202012Validator,
        ValidationError,
        validators,
    )

    def pattern(validator: Any, value: str, instance: Any, schema: Any) -> Any:
        if isinstance(instance, str) and not _compiled(value).search(instance):
            shown = instance if len(instance) <= 80 else instance[:80] + "..."
            yield ValidationError(f"{shown!r} does not match {value!r}")

    strict = validators.extend(Draft202012Validator, {"pattern": pattern})  # type: ignore[no-untyped-call]
    return strict(load_schema(name))


def parse_toml(
    text: str | bytes,
    where: str,
    error: Callable[[str, list[Problem]], InvalidFileError],
) -> dict[str, Any]:
    """Return the TOML document *text* as plain data, or raise *error* naming line and column.

    Total: any bytes give a document or *error* (security invariant I5). The
    data returned nests at most ``MAX_DEPTH`` levels and its integers fit in
    64 bits (see ``opsvault.vault.bounded``), so later walks are bounded too.
    """
    if isinstance(text, bytes):
        if len(text) > MAX_FILE_BYTES:
            raise error(where, [_too_large(len(text))])
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(
                where, [Problem("$", f"not valid UTF-8 at byte {exc.start}")]
            ) from exc
    elif len(text.encode("utf-8")) > MAX_FILE_BYTES:
        raise error(where, [_too_large(len(text.encode("utf-8")))])
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(where, [Problem("$", _toml_message(str(exc)))]) from exc
    except RecursionError as exc:
        # tomllib recurses once per nested array or inline table.
        raise error(where, [Problem("$", TOO_DEEP)]) from exc
    except ValueError as exc:  # int() past Python's 4300-digit limit
        raise error(where, [Problem("$", TOO_LONG_NUMBER)]) from exc
    problems = shape_problems(data)
    if problems:
        raise error(where, problems)
    return data


def _too_large(size: int) -> Problem:
    return Problem(
        "$",
        f"file is {size} bytes, over the limit of {MAX_FILE_BYTES}; split or shorten it",
    )


def _toml_message(raw: str) -> str:
    match = _TOML_POSITION.match(raw)
    if not match:
        return f"TOML syntax error: {raw}"
    what = match["what"][:1].lower() + match["what"][1:]
    if match["line"]:
        return (
            f"TOML syntax error at line {match['line']}, column {match['col']}: {what}"
        )
    return f"TOML syntax error at end of file: {what}"


@cache
def _fast(name: str) -> Callable[[Any], bool]:
    from opsvault.vault.fastcheck import compile_schema

    return compile_schema(load_schema(name), anchored)


def schema_problems(data: Any, name: str) -> list[Problem]:
    """Return every problem of *data* against schema *name*, sorted by JSON path.

    A fast check answers for valid documents; jsonschema (slow to import) is
    consulted only to explain a document the fast check does not accept.
    """
    if _fast(name)(data):
        return []
    problems = [_problem(err) for err in _validator(name).iter_errors(data)]
    return sorted(set(problems), key=lambda p: (p.path, p.message))


_TYPE_NAMES = {
    str: "string",
    int: "integer",
    bool: "boolean",
    float: "float",
    list: "array",
    dict: "table",
}


def _type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _problem(err: Any) -> Problem:
    path: str = err.json_path
    validator = err.validator
    if validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        # One problem per unknown key, located at the key itself.
        if len(extra) == 1:
            return Problem(
                _join(path, extra[0]), "unknown key; remove it or check its spelling"
            )
        return Problem(path, f"unknown keys {', '.join(repr(k) for k in extra)}")
    if validator == "oneOf" and path == "$" and isinstance(err.instance, dict):
        if "formula" in err.instance and "action_required" in err.instance:
            return Problem(path, "give either 'formula' or [action_required], not both")
        return Problem(path, "one of 'formula' or [action_required] is required")
    if validator == "anyOf":
        return Problem(
            path,
            f"expected a string, integer, boolean or array of strings, got {_type_name(err.instance)}",
        )
    if validator == "type":
        return Problem(
            path,
            f"expected {err.validator_value}, got {_type_name(err.instance)} {err.instance!r}",
        )
    if validator == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        return Problem(_join(path, missing), "required key is missing")
    if validator == "propertyNames":
        return Problem(path, f"invalid key {err.instance!r}: {err.message}")
    return Problem(path, err.message)


def _join(path: str, key: str) -> str:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        return f"{path}.{key}"
    return f"{path}[{key!r}]"


def schema_errors(
    data: Any, name: str
) -> list[tuple[tuple[str | int, ...], str, tuple[str, ...]]]:
    """Return each schema error of *data* as (absolute path, keyword, keys).

    *keys* are the unknown keys of an ``additionalProperties`` error and the
    missing key of a ``required`` one (empty otherwise). For pruning invalid
    parts away (``opsvault.policy.salvage``); people read ``schema_problems``.
    """
    if _fast(name)(data):
        return []
    found: list[tuple[tuple[str | int, ...], str, tuple[str, ...]]] = []
    for err in _validator(name).iter_errors(data):
        keys: tuple[str, ...] = ()
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            known = set(err.schema.get("properties", {}))
            keys = tuple(sorted(k for k in err.instance if k not in known))
        elif err.validator == "required" and "'" in err.message:
            keys = (err.message.split("'")[1],)
        found.append((tuple(err.absolute_path), str(err.validator), keys))
    return found
