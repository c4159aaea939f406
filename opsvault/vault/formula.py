"""Formula files: reusable, parameterised operations with argv steps."""

from __future__ import annotations

import importlib
import re
import warnings
from dataclasses import dataclass
from datetime import timedelta
from pathlib import PurePosixPath
from typing import Any

from opsvault.errors import InvalidFormulaError, Problem
from opsvault.vault.duration import parse_duration
from opsvault.vault.schema import anchored, parse_toml, schema_problems
from opsvault.vault.tier import Tier

DEFAULT_TIMEOUT = timedelta(minutes=15)
# The schema's pattern for $.name: a formula name is always a safe file stem.
FORMULA_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")

ParamValue = str | int | bool | tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One ``[params.<name>]`` a formula declares: its type and what values fit."""

    name: str
    type: str  # string | integer | boolean | array (of strings)
    required: bool = False
    pattern: str | None = None
    default: ParamValue | None = None
    minimum: int | None = None
    maximum: int | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class Step:
    """One ``[[steps]]`` entry: a name and an argv template."""

    name: str
    run: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Formula:
    """A parsed formula file. Build it with ``parse_formula``."""

    name: str
    description: str
    steps: tuple[Step, ...]
    blast_radius: Tier | None = None
    idempotent: bool = False
    timeout: timedelta = DEFAULT_TIMEOUT
    locks: tuple[str, ...] = ()
    params: tuple[ParamSpec, ...] = ()
    secrets: tuple[str, ...] = ()

    def param(self, name: str) -> ParamSpec | None:
        for spec in self.params:
            if spec.name == name:
                return spec
        return None


def parse_formula(text: str | bytes, where: str) -> Formula:
    """Return the Formula in *text* read from *where*; raise InvalidFormulaError listing every problem.

    The name must equal the file stem, param patterns must compile, defaults must
    fit their param, and every step placeholder must name a declared param or a
    runtime value (``workspace``, ``action.id``, ``python``).
    """
    data = parse_toml(text, where, InvalidFormulaError)
    problems = schema_problems(data, "formula")
    if "timeout" in data and not problems:
        try:
            parse_duration(data["timeout"])
        except ValueError as exc:
            problems.append(Problem("$.timeout", str(exc)))
    if problems:
        raise InvalidFormulaError(where, problems)
    formula = _build(data)
    problems = _semantic_problems(formula, where)
    if problems:
        raise InvalidFormulaError(where, problems)
    return formula


def _build(data: dict[str, Any]) -> Formula:
    params = tuple(
        ParamSpec(
            name=name,
            type=spec["type"],
            required=spec.get("required", False),
            pattern=spec.get("pattern"),
            default=tuple(spec["default"])
            if isinstance(spec.get("default"), list)
            else spec.get("default"),
            minimum=spec.get("minimum"),
            maximum=spec.get("maximum"),
            description=spec.get("description", ""),
        )
        for name, spec in sorted(data.get("params", {}).items())
    )
    return Formula(
        name=data["name"],
        description=data["description"],
        steps=tuple(Step(s["name"], tuple(s["run"])) for s in data["steps"]),
        blast_radius=Tier.parse(data["blast_radius"])
        if "blast_radius" in data
        else None,
        idempotent=data.get("idempotent", False),
        timeout=parse_duration(data["timeout"])
        if "timeout" in data
        else DEFAULT_TIMEOUT,
        locks=tuple(data.get("locks", [])),
        params=params,
        secrets=tuple(data.get("secrets", {}).get("required", [])),
    )


def _semantic_problems(formula: Formula, where: str) -> list[Problem]:
    from opsvault.vault.placeholders import KNOWN_NAMES, PARAM_PREFIX, placeholders_in

    problems: list[Problem] = []
    stem = PurePosixPath(where).stem
    if formula.name != stem:
        problems.append(
            Problem("$.name", f"{formula.name!r} must equal the file stem {stem!r}")
        )
    for spec in formula.params:
        problems.extend(_param_spec_problems(spec))
    declared = {PARAM_PREFIX + spec.name for spec in formula.params}
    array_params = {
        PARAM_PREFIX + spec.name for spec in formula.params if spec.type == "array"
    }
    for i, step in enumerate(formula.steps):
        at = f"$.steps[{i}].run"
        try:
            placeholders_in(step.run, where, at)
        except InvalidFormulaError as exc:
            problems.extend(exc.problems)
            continue
        for j, arg in enumerate(step.run):
            for name in sorted(placeholders_in([arg], where)):
                if name not in declared and name not in KNOWN_NAMES:
                    problems.append(
                        Problem(
                            f"{at}[{j}]",
                            f"placeholder {{{name}}} is not a declared param",
                        )
                    )
                elif name in array_params and arg != f"{{{name}}}":
                    problems.append(
                        Problem(
                            f"{at}[{j}]",
                            f"array placeholder {{{name}}} must stand alone",
                        )
                    )
    try:
        lock_names = placeholders_in(formula.locks, where, "$.locks")
    except InvalidFormulaError as exc:
        problems.extend(exc.problems)
    else:
        for name in sorted(lock_names - (declared - array_params)):
            problems.append(
                Problem(
                    "$.locks", f"placeholder {{{name}}} is not a scalar declared param"
                )
            )
    return problems


def _pattern_problem(pattern: str) -> str:
    """Return why *pattern* cannot be used as a param pattern ("" if it can); never raises (I5)."""
    try:
        with warnings.catch_warnings():
            # A FutureWarning means the pattern may change meaning in a later Python.
            warnings.simplefilter("error")
            re.compile(anchored(pattern))
    except re.error as exc:
        return f"not a valid regular expression: {exc}"
    except (
        RecursionError,
        OverflowError,
        ValueError,  # a repeat count past Python's int-str digit limit
        FutureWarning,
        DeprecationWarning,
    ) as exc:
        return f"not a usable regular expression: {str(exc)[:200]}; simplify it"
    return backtracking_problem(pattern)


# sre opcodes that repeat their body, and what inside such a body makes matching
# exponential on a failing input (review R-6).
_REPEATS = {"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"}


def backtracking_problem(pattern: str) -> str:
    """Return why *pattern* could backtrack exponentially ("" if its shape cannot).

    A structural check on the parsed pattern, not a time budget: a repeat that
    can match more than once must not contain another such repeat, an
    alternation or a backreference (``([a-z]+)+``, ``(a|a)*``, ``(.)\\1*``).
    Callers must have compiled *pattern* already.
    """
    sre = importlib.import_module("re._parser")  # the parser re itself uses (3.11+)

    def walk(items: object, inside: bool) -> str:
        for op, arg in items:  # type: ignore[attr-defined]
            name = str(op)
            if name in _REPEATS:
                low, high, body = arg
                many = high > 1
                if many and inside and low != high:  # a fixed count {n} is one way only
                    return "a repeated group contains another repeat"
                found = walk(body, inside or many)
                if found:
                    return found
            elif name == "BRANCH":
                if inside:
                    return "a repeated group contains an alternation (|)"
                for branch in arg[1]:
                    found = walk(branch, inside)
                    if found:
                        return found
            elif name in ("GROUPREF", "GROUPREF_EXISTS"):
                return "the pattern uses a backreference"
            elif name == "SUBPATTERN" or name in (
                "ASSERT",
                "ASSERT_NOT",
                "ATOMIC_GROUP",
            ):
                found = walk(arg[-1], inside)
                if found:
                    return found
        return ""

    problem = walk(sre.parse(anchored(pattern)), False)
    if problem:
        return (
            f"{problem}: matching could take exponential time on a proposer's value; "
            "rewrite it without nested repeats (e.g. '^[a-z0-9]+$')"
        )
    return ""


def _param_spec_problems(spec: ParamSpec) -> list[Problem]:
    at = f"$.params.{spec.name}"
    problems: list[Problem] = []
    if spec.pattern is not None:
        if spec.type not in ("string", "array"):
            problems.append(
                Problem(
                    f"{at}.pattern", f"a pattern applies to strings, not {spec.type}"
                )
            )
        invalid = _pattern_problem(spec.pattern)
        if invalid:
            return [*problems, Problem(f"{at}.pattern", invalid)]
    if spec.default is not None:
        problems.extend(
            Problem(f"{at}.default", m)
            for m in param_value_problems(spec, spec.default)
        )
        if spec.required:
            problems.append(Problem(at, "a required param cannot have a default"))
    return problems


def param_value_problems(spec: ParamSpec, value: object) -> list[str]:
    """Return what is wrong with *value* for param *spec* (empty when it fits)."""
    if spec.type == "boolean":
        return [] if isinstance(value, bool) else [f"expected a boolean, got {value!r}"]
    if spec.type == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"expected an integer, got {value!r}"]
        if spec.minimum is not None and value < spec.minimum:
            return [f"{value!r} is below the minimum {spec.minimum!r}"]
        if spec.maximum is not None and value > spec.maximum:
            return [f"{value!r} is above the maximum {spec.maximum!r}"]
        return []
    if spec.type == "string":
        if not isinstance(value, str):
            return [f"expected a string, got {value!r}"]
        return _string_problems(spec, value)
    if not isinstance(value, tuple | list) or not all(
        isinstance(v, str) for v in value
    ):
        return [f"expected an array of strings, got {value!r}"]
    return [
        f"item {i}: {m}"
        for i, item in enumerate(value)
        for m in _string_problems(spec, item)
    ]


# No param value needs more; also what bounds a pattern's matching time.
MAX_STRING_PARAM_CHARS = 1024


def _string_problems(spec: ParamSpec, value: str) -> list[str]:
    if len(value) > MAX_STRING_PARAM_CHARS:
        return [
            f"the value is {len(value)} characters, over the limit of {MAX_STRING_PARAM_CHARS}"
        ]
    if "\x00" in value:
        return [f"{value!r} contains a NUL character"]
    if spec.pattern is not None and not re.fullmatch(anchored(spec.pattern), value):
        return [f"{value!r} does not match {spec.pattern!r}"]
    return []
