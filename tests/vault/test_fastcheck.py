"""The fast check never accepts what jsonschema rejects (and accepts the valid examples)."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from opsvault._resources import data_dir
from opsvault.vault.fastcheck import FastChecker, compile_schema
from opsvault.vault.schema import _validator, anchored, load_schema
from tests.mutate import mutate

ROOT = Path(__file__).resolve().parents[2]


def examples() -> dict[str, list[Any]]:
    def load(paths: list[Path]) -> list[Any]:
        return [tomllib.loads(p.read_text()) for p in paths]

    return {
        "action": load(sorted((data_dir("examples") / "proposals").glob("*.toml"))),
        "formula": load(sorted(data_dir("formulas").glob("*.toml"))),
        "policy": load(
            [
                data_dir("ops-template") / "vault" / "policy.toml",
                ROOT / "tests" / "policy" / "policies" / "strict.toml",
            ]
        ),
        "case": load(
            sorted((data_dir("ops-template") / "vault" / "policy-tests").glob("*.toml"))
        ),
    }


EXAMPLES = examples()
SCHEMAS = ("action", "formula", "policy", "case")


def strict(name: str) -> Any:
    """The project's jsonschema validator (patterns anchored at the true end)."""
    return _validator(name)


@pytest.mark.parametrize("name", SCHEMAS)
def test_valid_examples_pass_both(name: str) -> None:
    fast = compile_schema(load_schema(name), anchored)
    for doc in EXAMPLES[name]:
        assert not list(strict(name).iter_errors(doc))
        assert fast(doc), doc


LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 2),
    st.sampled_from(
        [
            "",
            " ",
            "x",
            "low",
            "high",
            "noop",
            "A",
            "abc-1",
            "HOOK_TOKEN",
            "a\n",
            "#1",
            "1s",
            "auto",
            "admin",
        ]
    ),
)
NEW_KEYS = ["extra", "id", "tier", "name", "zz"]


@pytest.mark.parametrize("name", SCHEMAS)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_fast_check_never_accepts_what_jsonschema_rejects(
    name: str, data: st.DataObject
) -> None:
    fast = compile_schema(load_schema(name), anchored)
    base = data.draw(st.sampled_from(EXAMPLES[name]))
    doc = mutate(copy.deepcopy(base), data, LEAVES, NEW_KEYS)
    if fast(doc):
        assert not list(strict(name).iter_errors(doc)), doc


def test_unknown_keyword_means_ask_jsonschema() -> None:
    fast = compile_schema({"type": "string", "format": "email"}, anchored)
    assert not fast("a@b")


def test_not_over_an_unknown_keyword_is_not_decided() -> None:
    fast = compile_schema({"not": {"format": "email"}}, anchored)
    assert not fast("anything")


def test_booleans_are_not_integers() -> None:
    fast = compile_schema({"const": 1}, anchored)
    assert fast(1) and not fast(True)


def test_booleans_are_not_integers_inside_arrays_either() -> None:
    fast = compile_schema({"enum": [[1], {"a": 1}]}, anchored)
    assert fast([1]) and fast({"a": 1})
    assert not fast([True]) and not fast({"a": True})
    assert list(Draft202012Validator({"enum": [[1]]}).iter_errors([True]))


def test_a_recursive_definition_is_checked_all_the_way_down() -> None:
    tree = {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}
                },
                "additionalProperties": False,
            }
        },
        "$ref": "#/$defs/node",
    }
    fast = compile_schema(tree, anchored)
    assert fast({"kids": [{"kids": []}, {}]})
    assert not fast({"kids": [{"kids": [{"x": 1}]}]})


def test_formats_are_asked_unless_the_checker_knows_the_validators_formats() -> None:
    schema = {"type": "string", "format": "date-time"}
    assert not compile_schema(schema, anchored)("2026-11-21T12:00:00Z")
    checker = FastChecker({}, formats={"date-time": lambda v: v.endswith("Z")})
    assert checker.compile(schema)("2026-11-21T12:00:00Z")
    assert not checker.compile(schema)("tomorrow")
    # A format the validator does not check constrains nothing, as in jsonschema.
    assert checker.compile({"type": "string", "format": "email"})("not an email")


def test_boolean_subschemas() -> None:
    fast = compile_schema(
        {"properties": {"any": True, "none": False}, "additionalProperties": True},
        anchored,
    )
    assert fast({"any": [1], "other": 2})
    assert not fast({"none": 1})
