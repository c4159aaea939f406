"""The fake's swagger checks use opsvault's fast pre-check (opsvault/vault/fastcheck.py).

It must never accept a message jsonschema (the authority, Draft 4 over the
vendored swagger) rejects, and it must accept the valid ones, or every message
would pay for jsonschema.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testing.fake_forgejo.validation import SpecValidator, load_spec
from tests.forge.support import DEFINITIONS, load_json
from tests.mutate import mutate


def schema_for(definition: str) -> dict[str, Any]:
    if definition.startswith("["):
        return {"type": "array", "items": {"$ref": f"#/definitions/{definition[1:-1]}"}}
    return {"$ref": f"#/definitions/{definition}"}


def as_the_fake_sends(doc: Any) -> Any:
    """A recorded body without ``username``: Forgejo sends it, its swagger (and so
    the fake, whose responses may hold declared fields only) does not declare it."""
    if isinstance(doc, dict):
        return {k: as_the_fake_sends(v) for k, v in doc.items() if k != "username"}
    if isinstance(doc, list):
        return [as_the_fake_sends(v) for v in doc]
    return doc


# (definition, message, is it a response); responses come from tests/forge/responses.
RESPONSES = [
    (d, as_the_fake_sends(load_json(name)), True)
    for name, d in sorted(DEFINITIONS.items())
]
REQUESTS: list[tuple[str, Any, bool]] = [
    ("MergePullRequestOption", {"Do": "merge", "head_commit_id": "a" * 40}, False),
    (
        "MergePullRequestOption",
        {"Do": "merge", "merge_when_checks_succeed": True, "MergeTitleField": "t"},
        False,
    ),
    (
        "ChangeFilesOptions",
        {
            "branch": "vault/x",
            "message": "m",
            "files": [
                {"operation": "create", "path": "a.toml", "content": "eA=="},
                {"operation": "delete", "path": "b.toml", "sha": "b" * 40},
            ],
        },
        False,
    ),
    (
        "CreatePullRequestOption",
        {"base": "main", "head": "vault/x", "title": "t", "body": "b"},
        False,
    ),
    (
        "CreatePullRequestOption",
        {"base": "main", "head": "x", "due_date": "2026-11-21T12:00:00Z"},
        False,
    ),
    ("CreateLabelOption", {"name": "vault/hold", "color": "#e11d21"}, False),
    ("IssueLabelsOption", {"labels": ["vault/low", 3]}, False),
]
MESSAGES = RESPONSES + REQUESTS

LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 2),
    st.floats(allow_nan=False, allow_infinity=False, width=16),
    st.sampled_from(
        [
            "",
            "x",
            "merge",
            "squash",
            "create",
            "open",
            "closed",
            "2026-11-21T12:00:00Z",
            "2026-11-21",
            "not a date",
            "a" * 40,
        ]
    ),
    st.just([]),
    st.just({}),
    st.just([1, 1]),
    st.just({"login": "x"}),
)
NEW_KEYS = ["extra", "id", "login", "merged", "state", "zz"]


def check(spec: SpecValidator, definition: str, doc: Any, response: bool) -> bool:
    key = f"test {definition} {'resp' if response else 'req'}"
    return spec.fast_accepts(key, schema_for(definition), doc, response=response)


def errors(spec: SpecValidator, definition: str, doc: Any, response: bool) -> list[str]:
    key = f"test {definition} {'resp' if response else 'req'}"
    return spec.schema_errors(key, schema_for(definition), doc, response=response)


@pytest.mark.parametrize(("definition", "doc", "response"), MESSAGES)
def test_valid_messages_pass_both(definition: str, doc: Any, response: bool) -> None:
    spec = load_spec()
    assert errors(spec, definition, doc, response) == []
    assert check(spec, definition, doc, response)


@settings(max_examples=600, deadline=None)
@given(data=st.data())
def test_fast_check_never_accepts_what_jsonschema_rejects(data: st.DataObject) -> None:
    spec = load_spec()
    definition, base, response = data.draw(st.sampled_from(MESSAGES))
    doc = mutate(copy.deepcopy(base), data, LEAVES, NEW_KEYS)
    if check(spec, definition, doc, response):
        assert errors(spec, definition, doc, response) == [], doc


def test_a_shared_sub_object_is_judged_once_per_message() -> None:
    """A page shares one user object between pull requests; each use is still checked."""
    spec = load_spec()
    shared = as_the_fake_sends(load_json("pull-7-open.json"))
    page = [shared, shared]
    assert check(spec, "[PullRequest]", page, True)
    broken = dict(shared, user=dict(shared["user"], id="seven"))
    assert not check(spec, "[PullRequest]", [shared, broken], True)
    assert errors(spec, "[PullRequest]", [shared, broken], True)


@pytest.mark.parametrize(
    ("definition", "doc"),
    [
        ("CreatePullRequestOption", {"due_date": "tomorrow"}),
        ("MergePullRequestOption", {"Do": "octopus"}),
        ("CreateLabelOption", {"name": "x"}),
        ("CreateLabelOption", {"name": "x", "color": "#fff", "colour": "#fff"}),
        ("ChangeFilesOptions", {"files": [{"operation": "create"}]}),
    ],
)
def test_broken_requests_are_refused_by_both(definition: str, doc: Any) -> None:
    spec = load_spec()
    assert not check(spec, definition, doc, False)
    assert errors(spec, definition, doc, False)
