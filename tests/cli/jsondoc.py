"""The JSON Schemas of docs/json.md, for tests that check what `--json` prints.

docs/json.md has one section per command (``## vault policy check``) whose
first fenced ``json`` block is the schema of that command's output, and a
section ``## The envelope`` whose block holds the shared ``$defs`` the others
refer to (``envelope#/$defs/failure``). Use :func:`assert_matches_doc`::

    data = json.loads(output)
    assert_matches_doc("policy check", data)
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

DOC = Path(__file__).resolve().parents[2] / "docs" / "json.md"
ENVELOPE = "The envelope"
_HEADING = re.compile(r"^## (.+)$", re.MULTILINE)
_BLOCK = re.compile(r"^```json\n(.*?)^```$", re.MULTILINE | re.DOTALL)


@cache
def schemas() -> dict[str, dict[str, Any]]:
    """Return each section's schema by heading: ``"vault classify"``, ``"The envelope"``."""
    text = DOC.read_text(encoding="utf-8")
    headings = list(_HEADING.finditer(text))
    found: dict[str, dict[str, Any]] = {}
    for i, heading in enumerate(headings):
        end = headings[i + 1].start() if i + 1 < len(headings) else len(text)
        block = _BLOCK.search(text, heading.end(), end)
        if block is not None:
            schema = json.loads(block[1])
            assert isinstance(schema, dict), heading[1]
            found[heading[1].strip()] = schema
    return found


@cache
def _registry() -> Registry[Any]:
    resources = [
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas().values()
    ]
    registry: Registry[Any] = Registry().with_resources(resources)
    return registry


def schema_for(command: str) -> dict[str, Any]:
    """Return the schema of ``vault <command>``'s output (``"policy check"``)."""
    heading = f"vault {command}"
    assert heading in schemas(), f"docs/json.md has no section '## {heading}'"
    return schemas()[heading]


def problems_against_doc(command: str, data: Any) -> list[str]:
    """Return every way *data* breaks the documented schema of *command* (empty: it matches)."""
    validator = Draft202012Validator(schema_for(command), registry=_registry())
    found = []
    for error in validator.iter_errors(data):
        found.append(f"{error.json_path}: {error.message}")
        # oneOf: say why each alternative failed, or the message says nothing.
        found.extend(f"  {sub.json_path}: {sub.message}" for sub in error.context or ())
    return found


def assert_matches_doc(command: str, data: Any) -> None:
    problems = problems_against_doc(command, data)
    assert not problems, (
        f"`vault {command} --json` output does not match docs/json.md:\n"
        + "\n".join(problems)
        + f"\n{json.dumps(data, indent=2)[:2000]}"
    )
