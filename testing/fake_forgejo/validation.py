"""Check requests and responses of the fake against the vendored Forgejo swagger.

Swagger 2.0 cannot say "nullable", but Forgejo serialises Go pointers and nil
slices as ``null``; response properties therefore accept ``null``. Both
directions reject properties the swagger does not declare: Forgejo silently
ignores an unknown request field (a typo would do nothing), and the fake must not
invent response fields that a client could start to rely on.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema

from opsvault.vault.fastcheck import Check, FastChecker

SWAGGER_PATH = Path(__file__).with_name("swagger.v1.json")

# Documented deviations of real Forgejo from its own swagger (API-NOTES.md §0.3).
_API_ERROR = {"$ref": "#/definitions/APIError"}
_GO_ERROR = {
    "type": "object",
    "properties": {
        "Style": {"type": "string"},
        "StdOut": {"type": "string"},
        "StdErr": {"type": "string"},
        "Err": {"type": "object"},
    },
    "additionalProperties": False,
}
_DEVIATIONS: dict[tuple[str, int], dict[str, Any]] = {
    ("repoMergePullRequest", 405): _API_ERROR,
    ("repoMergePullRequest", 409): {"anyOf": [_API_ERROR, _GO_ERROR]},
    ("repoCreateFile", 409): _API_ERROR,
    ("repoUpdateFile", 409): _API_ERROR,
    ("repoChangeFiles", 409): _API_ERROR,
    # A deleted file's entry is null (services/repository/files/file.go:20-34).
    ("repoChangeFiles", 201): {
        "type": "object",
        "properties": {
            "commit": {"$ref": "#/definitions/FileCommitResponse"},
            "files": {
                "type": "array",
                "items": {
                    "anyOf": [
                        {"$ref": "#/definitions/ContentsResponse"},
                        {"type": "null"},
                    ]
                },
            },
            "verification": {"$ref": "#/definitions/PayloadCommitVerification"},
        },
    },
    # A directory is answered with an array of entries.
    ("repoGetContents", 200): {
        "anyOf": [
            {"$ref": "#/definitions/ContentsResponse"},
            {"type": "array", "items": {"$ref": "#/definitions/ContentsResponse"}},
        ]
    },
}
# Undeclared statuses Forgejo answers without a body.
# 201 of a scheduled auto-merge: ctx.Status(http.StatusCreated), undeclared
# (routers/api/v1/repo/pull.go, merge_when_checks_succeed; API-NOTES §10).
_EMPTY_DEVIATIONS = frozenset({("repoGetRawFile", 304), ("repoMergePullRequest", 201)})
# Statuses any operation may answer although few declare them: authentication
# and binding errors (Forgejo middleware) and proxy/fault answers.
_GENERIC_ERRORS = frozenset(
    {400, 401, 403, 404, 405, 409, 413, 422, 423, 500, 502, 503}
)


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    location: str
    required: bool
    schema: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Operation:
    """One swagger operation: ``method`` + ``template`` (without the base path)."""

    method: str
    template: str
    operation_id: str
    parameters: tuple[Parameter, ...]
    responses: Mapping[int, Mapping[str, Any]]

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"


@dataclass(frozen=True, slots=True)
class Match:
    operation: Operation
    path_params: Mapping[str, str]


def _check_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


# The one format checked; jsonschema and the fast pre-check both skip the others.
_FORMAT_CHECKS = {"date-time": _check_datetime}
_FORMATS = jsonschema.FormatChecker(formats=())
_FORMATS.checks("date-time")(_check_datetime)


def _strict_objects(definitions: dict[str, Any], *, nullable: bool) -> dict[str, Any]:
    result = copy.deepcopy(definitions)
    for schema in result.values():
        props = schema.get("properties")
        if schema.get("type") != "object" or props is None:
            continue
        schema.setdefault("additionalProperties", False)
        if nullable:
            for name, prop in list(props.items()):
                props[name] = {"anyOf": [prop, {"type": "null"}]}
    return result


class SpecValidator:
    """Find operations by method and path; report how messages break the spec."""

    def __init__(self, swagger: Mapping[str, Any]) -> None:
        self.base_path: str = swagger["basePath"]
        self._req_defs = _strict_objects(swagger["definitions"], nullable=False)
        self._resp_defs = _strict_objects(swagger["definitions"], nullable=True)
        self._named_responses: Mapping[str, Any] = swagger["responses"]
        self._validators: dict[tuple[str, str], jsonschema.Draft4Validator] = {}
        # opsvault's own fast pre-check (opsvault/vault/fastcheck.py), over the swagger.
        self._fast = {
            kind: FastChecker(defs, ref_prefix="#/definitions/", formats=_FORMAT_CHECKS)
            for kind, defs in (("req", self._req_defs), ("resp", self._resp_defs))
        }
        self._fast_checks: dict[tuple[str, str], Check] = {}
        self._routes: list[tuple[re.Pattern[str], tuple[str, ...], Operation]] = []
        for template, item in swagger["paths"].items():
            shared = item.get("parameters", [])
            for method, op in item.items():
                if method == "parameters":
                    continue
                pattern, names = _compile(template)
                self._routes.append(
                    (pattern, names, self._operation(method, template, op, shared))
                )
        # Literal segments win over parameters, as in Forgejo's router.
        self._routes.sort(key=lambda r: -len(re.sub(r"\{[^}]*\}", "", r[2].template)))

    def _operation(
        self,
        method: str,
        template: str,
        op: Mapping[str, Any],
        shared: Sequence[Mapping[str, Any]],
    ) -> Operation:
        params = tuple(
            Parameter(
                name=p["name"],
                location=p["in"],
                required=bool(p.get("required", False)),
                schema=p.get("schema")
                or {
                    k: v for k, v in p.items() if k not in {"name", "in", "description"}
                },
            )
            for p in [*shared, *op.get("parameters", [])]
        )
        responses: dict[int, Mapping[str, Any]] = {}
        for code, resp in op.get("responses", {}).items():
            if code.isdigit():
                if "$ref" in resp:
                    resp = self._named_responses[resp["$ref"].rsplit("/", 1)[1]]
                responses[int(code)] = resp
        return Operation(method.upper(), template, op["operationId"], params, responses)

    def match(self, method: str, path: str) -> Match | None:
        """Return the operation for *method* and *path* (base path included)."""
        if not path.startswith(self.base_path):
            return None
        rest = path[len(self.base_path) :]
        for pattern, names, op in self._routes:
            if op.method != method:
                continue
            m = pattern.fullmatch(rest)
            if m:
                return Match(
                    op, {n: unquote(v) for n, v in zip(names, m.groups(), strict=True)}
                )
        return None

    def _validator(
        self, key: str, schema: Mapping[str, Any], *, response: bool
    ) -> jsonschema.Draft4Validator:
        cache_key = ("resp" if response else "req", key)
        found = self._validators.get(cache_key)
        if found is None:
            defs = self._resp_defs if response else self._req_defs
            found = jsonschema.Draft4Validator(
                {**schema, "definitions": defs}, format_checker=_FORMATS
            )
            self._validators[cache_key] = found
        return found

    def _errors(
        self, key: str, schema: Mapping[str, Any], value: object, *, response: bool
    ) -> list[str]:
        if self.fast_accepts(key, schema, value, response=response):
            return []
        return self.schema_errors(key, schema, value, response=response)

    def fast_accepts(
        self, key: str, schema: Mapping[str, Any], value: object, *, response: bool
    ) -> bool:
        """The fast pre-check: "yes" means valid, "no" means ask jsonschema."""
        kind = "resp" if response else "req"
        fast = self._fast_checks.get((kind, key))
        if fast is None:
            fast = self._fast[kind].compile(schema)
            self._fast_checks[(kind, key)] = fast
        return self._fast[kind].run(fast, value)

    def schema_errors(
        self, key: str, schema: Mapping[str, Any], value: object, *, response: bool
    ) -> list[str]:
        """Every way *value* breaks *schema*, as jsonschema (the authority) reports it."""
        validator = self._validator(key, schema, response=response)
        leaves = (leaf for e in validator.iter_errors(value) for leaf in _leaves(e))
        return sorted({f"{e.json_path}: {_short(e.message)}" for e in leaves})

    def check_request(
        self,
        match: Match,
        query: Mapping[str, Sequence[str]],
        body: bytes,
        content_type: str,
    ) -> list[str]:
        """Return every way the request breaks the operation's parameters."""
        op = match.operation
        problems: list[str] = []
        declared = {p.name for p in op.parameters if p.location == "query"}
        problems += [
            f"query: unknown parameter {name!r}"
            for name in sorted(set(query) - declared)
        ]
        for param in op.parameters:
            if param.location == "path":
                problems += self._check_scalar(
                    op, param, [match.path_params[param.name]]
                )
            elif param.location == "query":
                if param.name in query:
                    problems += self._check_scalar(op, param, query[param.name])
                elif param.required:
                    problems.append(f"query: missing required parameter {param.name!r}")
            elif param.location == "body":
                problems += self._check_body(op, param, body, content_type)
        if body and not any(p.location in {"body", "formData"} for p in op.parameters):
            problems.append("body: operation takes no body")
        return problems

    def _check_scalar(
        self, op: Operation, param: Parameter, raw: Sequence[str]
    ) -> list[str]:
        schema = dict(param.schema)
        multi = schema.get("type") == "array"
        if not multi and len(raw) > 1:
            return [f"{param.location}: {param.name!r} given {len(raw)} times"]
        item_schema = schema.get("items", {}) if multi else schema
        values: list[object] = []
        for text in raw:
            value = _coerce(text, item_schema.get("type"))
            if value is None:
                return [
                    f"{param.location}: {param.name!r}: {text!r} is not {item_schema.get('type')}"
                ]
            values.append(value)
        value_out: object = values if multi else values[0]
        key = f"{op.key}#{param.location}:{param.name}"
        return [
            f"{param.location}: {param.name!r}{e.removeprefix('$')}"
            for e in self._errors(key, _param_schema(schema), value_out, response=False)
        ]

    def _check_body(
        self, op: Operation, param: Parameter, body: bytes, content_type: str
    ) -> list[str]:
        if not body.strip():
            return [f"body: required by {op.operation_id}"] if param.required else []
        if not content_type.startswith("application/json"):
            return [f"body: Content-Type {content_type!r} is not application/json"]
        try:
            value = json.loads(body)
        except ValueError as exc:
            return [f"body: not JSON ({exc})"]
        return [
            f"body{e.removeprefix('$')}"
            for e in self._errors(op.key + "#body", param.schema, value, response=False)
        ]

    def check_response(
        self, op: Operation, status: int, payload: object | None, raw: bytes
    ) -> list[str]:
        """Return every way a response breaks the operation's declared responses."""
        schema: Mapping[str, Any] | None
        if (op.operation_id, status) in _EMPTY_DEVIATIONS:
            schema = None
        elif (op.operation_id, status) in _DEVIATIONS:
            schema = _DEVIATIONS[(op.operation_id, status)]
        elif status in op.responses:
            schema = op.responses[status].get("schema")
            if schema is None and status >= 400 and raw:
                # Declared by description only; Forgejo's ctx.Error still sends an APIError.
                schema = _API_ERROR
        elif status in _GENERIC_ERRORS:
            schema = _API_ERROR if raw else None
        else:
            return [f"status {status} is not declared for {op.operation_id}"]
        if schema is None:
            return (
                []
                if not raw
                else [
                    f"status {status}: declared without a body but {len(raw)} bytes were sent"
                ]
            )
        if schema.get("type") == "file":
            return []
        if payload is None:
            return [f"status {status}: declared with a body but none was sent"]
        return self._errors(f"{op.key}#{status}", schema, payload, response=True)


def _leaves(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """Report the failing branch of an ``anyOf``, not the union (nullable wrappers)."""
    subs = [
        e
        for e in error.context or []
        if not (e.validator == "type" and e.validator_value == "null")
    ]
    if not subs:
        return [error]
    return [leaf for e in subs for leaf in _leaves(e)]


def _short(message: str, limit: int = 300) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."


def _param_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    keep = {
        "type",
        "enum",
        "minimum",
        "maximum",
        "items",
        "format",
        "pattern",
        "maxLength",
        "minLength",
    }
    out = {k: v for k, v in schema.items() if k in keep}
    if isinstance(out.get("items"), Mapping):
        out["items"] = _param_schema(out["items"])
    return out


def _coerce(text: str, kind: object) -> object | None:
    if kind == "integer":
        return int(text) if re.fullmatch(r"-?[0-9]+", text) else None
    if kind == "boolean":
        return {"true": True, "false": False}.get(text)
    return text


def _compile(template: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    out = ""
    names: list[str] = []
    for literal, name in re.findall(r"([^{]*)(?:\{([^}]*)\})?", template):
        out += re.escape(literal)
        if name:
            out += "(.+)" if name == "filepath" else "([^/]+)"
            names.append(name)
    return re.compile(out), tuple(names)


@functools.cache
def load_spec() -> SpecValidator:
    """Return the process-wide validator for the vendored swagger (built once)."""
    return SpecValidator(json.loads(SWAGGER_PATH.read_text(encoding="utf-8")))
