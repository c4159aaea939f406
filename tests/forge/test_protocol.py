"""ForgejoClient implements the Forge port, and the port stays free of HTTP."""

from __future__ import annotations

import dataclasses
import inspect

from opsvault.forge import base
from opsvault.forge.base import Forge, ensure_marker
from opsvault.forge.client import ForgejoClient

PEOPLE_LINKS = {"html_url", "target_url"}


def as_forge(client: ForgejoClient) -> Forge:
    return client  # mypy checks the structural match


def test_client_has_every_port_method_with_the_same_parameters() -> None:
    port = {
        n
        for n, _ in inspect.getmembers(Forge, inspect.isfunction)
        if not n.startswith("_")
    }
    assert port
    for name in port:
        ours = inspect.signature(getattr(ForgejoClient, name)).parameters
        theirs = inspect.signature(getattr(Forge, name)).parameters
        assert list(ours) == list(theirs), name


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
