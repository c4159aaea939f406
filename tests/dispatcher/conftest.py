from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dispatcher.harness import Harness
from tests.dispatcher.local_harness import LocalHarness, open_vault


@pytest.fixture
def vault(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Harness | LocalHarness]:
    """A dispatcher with real git on the fake Forgejo, or, parametrised, on each forge.

    Tests marked ``@both_forges`` (tests/dispatcher/local_harness.py) get it
    once with ``LocalForge`` and once with ``ForgejoClient`` + fake; the
    others get the fake Forgejo only.
    """
    with open_vault(getattr(request, "param", "forgejo"), tmp_path) as harness:
        yield harness
