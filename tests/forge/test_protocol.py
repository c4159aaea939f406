"""Both forges implement the Forge port, the port is what the product calls, and it stays free of HTTP."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
from pathlib import Path

import pytest

from opsvault import ports
from opsvault.forge import types as base
from opsvault.forge.client import ForgejoClient
from opsvault.forge.local import LocalForge
from opsvault.forge.types import ensure_marker
from opsvault.ports import Forge

PEOPLE_LINKS = {"html_url", "target_url"}


PRODUCT = Path(__file__).parents[2] / "opsvault"


def as_forge(client: ForgejoClient, local: LocalForge) -> tuple[Forge, Forge]:
    return client, local  # mypy checks the structural match


def _port_methods() -> set[str]:
    return {
        n
        for n, _ in inspect.getmembers(Forge, inspect.isfunction)
        if not n.startswith("_")
    }


@pytest.mark.parametrize("adapter", [ForgejoClient, LocalForge])
def test_adapter_has_every_port_method_with_the_same_parameters(
    adapter: type[object],
) -> None:
    port = _port_methods()
    assert port
    for name in port:
        ours = inspect.signature(getattr(adapter, name)).parameters
        theirs = inspect.signature(getattr(Forge, name)).parameters
        assert list(ours) == list(theirs), name
    assert isinstance(inspect.getattr_static(adapter, "requests_made"), property)


def test_port_holds_only_what_the_product_calls() -> None:
    """Every port member is used outside the adapters; unused calls stay adapter-only."""
    product = "\n".join(
        p.read_text()
        for p in PRODUCT.rglob("*.py")
        if p.parent.name not in {"forge", "fake_forgejo"}
    )
    members = _port_methods() | {"requests_made"}
    unused = {m for m in members if not re.search(rf"\.{m}\b", product)}
    assert not unused
    assert "getattr(app.forge" not in product and 'getattr(forge, "' not in product


def _members(protocol: type[object]) -> set[str]:
    return {
        n
        for n, v in vars(protocol).items()
        if not n.startswith("_") and (callable(v) or isinstance(v, property))
    }


def test_no_capability_is_probed_with_getattr() -> None:
    """What the product needs of an adapter is a port member, never a getattr guess."""
    protocols = [ports.Forge, ports.Mainline, ports.Runner, ports.Notifier]
    probed = set().union(*(_members(p) for p in [*protocols, ports.SecretSource]))
    assert {"whoami", "requests_made", "close", "known"} <= probed
    probed.add("refresh")  # App.redact is a Redactor
    found = []
    for path in PRODUCT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in {"getattr", "hasattr"}
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and node.args[1].value in probed
            ):
                found.append(f"{path.relative_to(PRODUCT)}:{node.lineno}")
    assert not found


def test_value_types_are_frozen_slotted_and_carry_no_http() -> None:
    types = [
        obj
        for _, obj in inspect.getmembers(base, inspect.isclass)
        if dataclasses.is_dataclass(obj) and obj.__module__ == base.__name__
    ]
    assert types
    for cls in types:
        params = cls.__dataclass_params__  # type: ignore[attr-defined]
        assert params.frozen and hasattr(cls, "__slots__"), cls
        for field in dataclasses.fields(cls):
            assert "status_code" not in field.name and "api_url" not in field.name
            # Links for people are fine; API addresses are not.
            assert field.name in PEOPLE_LINKS or "url" not in field.name, (
                cls,
                field.name,
            )


def test_ensure_marker_adds_it_once() -> None:
    marker = "<!-- opsvault:tier -->"
    assert ensure_marker("body", marker) == f"{marker}\nbody"
    assert ensure_marker(f"{marker}\nbody", marker) == f"{marker}\nbody"
