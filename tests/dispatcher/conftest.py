from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from opsvault.testing.fake_forgejo.pytest_plugin import assert_no_violations
from tests.dispatcher.harness import Harness, make_harness
from tests.dispatcher.local_harness import LocalHarness, make_local_harness


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[Harness]:
    harness = make_harness(tmp_path)
    try:
        yield harness
    finally:
        harness.close()
    assert_no_violations(harness.forge)


@pytest.fixture(params=["local", "forgejo"])
def any_vault(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Harness | LocalHarness]:
    """A dispatcher on each forge in turn: LocalForge, then ForgejoClient + fake.

    A module whose flows hold on both forges uses it as its ``vault``
    (see tests/dispatcher/test_flows.py).
    """
    if request.param == "local":
        yield make_local_harness(tmp_path)
        return
    harness = make_harness(tmp_path)
    try:
        yield harness
    finally:
        harness.close()
    assert_no_violations(harness.forge)
