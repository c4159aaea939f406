from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from opsvault.testing.fake_forgejo.pytest_plugin import assert_no_violations
from tests.dispatcher.harness import Harness, make_harness
from tests.dispatcher.local_harness import LocalHarness, make_local_harness


@pytest.fixture
def vault(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Harness | LocalHarness]:
    """A dispatcher with real git on the fake Forgejo, or, parametrised, on each forge.

    Tests marked ``@both_forges`` (tests/dispatcher/local_harness.py) get it
    once with ``LocalForge`` and once with ``ForgejoClient`` + fake; the
    others get the fake Forgejo only.
    """
    if getattr(request, "param", "forgejo") == "local":
        yield make_local_harness(tmp_path)
        return
    harness = make_harness(tmp_path)
    try:
        yield harness
    finally:
        harness.close()
    assert_no_violations(harness.forge)
