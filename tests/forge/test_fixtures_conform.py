"""Every response fixture written by hand conforms to Forgejo's swagger definitions."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft4Validator

from testing.fake_forgejo.validation import SWAGGER_PATH

from .support import DEFINITIONS, RESPONSES, load_http, load_json

# The one vendored swagger, which the fake Forgejo validates against too.
SWAGGER = json.loads(SWAGGER_PATH.read_text(encoding="utf-8"))


def validator_for(definition: str) -> Draft4Validator:
    if definition.startswith("["):
        schema: dict[str, Any] = {
            "type": "array",
            "items": {"$ref": f"#/definitions/{definition[1:-1]}"},
        }
    else:
        schema = {"$ref": f"#/definitions/{definition}"}
    schema["definitions"] = SWAGGER["definitions"]
    return Draft4Validator(schema)


def test_every_json_fixture_has_a_definition() -> None:
    assert sorted(p.name for p in RESPONSES.glob("*.json")) == sorted(DEFINITIONS)


@pytest.mark.parametrize(("name", "definition"), sorted(DEFINITIONS.items()))
def test_fixture_conforms_to_swagger(name: str, definition: str) -> None:
    errors = sorted(validator_for(definition).iter_errors(load_json(name)), key=str)
    assert [f"{e.json_path}: {e.message}" for e in errors] == []


def test_settings_fixture_conforms() -> None:
    _, body = load_http("forgejo-GET-settings-api.http")
    assert not list(validator_for("GeneralAPISettings").iter_errors(json.loads(body)))


def test_validator_catches_a_wrong_type() -> None:
    bad = dict(load_json("pull-7-open.json"), number="seven")
    assert list(validator_for("PullRequest").iter_errors(bad))
