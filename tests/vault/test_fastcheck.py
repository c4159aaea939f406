"""The fast check never accepts what jsonschema rejects (and accepts the valid examples)."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opsvault._resources import data_dir
from opsvault.vault.fastcheck import compile_schema
from opsvault.vault.schema import _validator, anchored, load_schema

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


def mutate(doc: Any, data: st.DataObject, depth: int = 0) -> Any:
    """Return *doc* with a few random changes: values replaced, keys added or removed, types swapped."""
    if isinstance(doc, dict) and doc and depth < 4:
        doc = dict(doc)
        key = data.draw(st.sampled_from(sorted(doc)))
        choice = data.draw(st.integers(0, 4))
        if choice == 0:
            del doc[key]
        elif choice == 1:
            doc[key] = data.draw(LEAVES)
        elif choice == 2:
            doc[data.draw(st.sampled_from(["extra", "id", "tier", "name", "zz"]))] = (
                data.draw(LEAVES)
            )
        else:
            doc[key] = mutate(doc[key], data, depth + 1)
        return doc
    if isinstance(doc, list) and doc and depth < 4:
        doc = list(doc)
        i = data.draw(st.integers(0, len(doc) - 1))
        choice = data.draw(st.integers(0, 3))
        if choice == 0:
            doc.pop(i)
        elif choice == 1:
            doc.append(copy.deepcopy(doc[i]))
        else:
            doc[i] = mutate(doc[i], data, depth + 1)
        return doc
    return data.draw(LEAVES)


@pytest.mark.parametrize("name", SCHEMAS)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_fast_check_never_accepts_what_jsonschema_rejects(
    name: str, data: st.DataObject
) -> None:
    fast = compile_schema(load_schema(name), anchored)
    base = data.draw(st.sampled_from(EXAMPLES[name]))
    doc = mutate(copy.deepcopy(base), data)
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
