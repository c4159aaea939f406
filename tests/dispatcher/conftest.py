from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from opsvault.testing.fake_forgejo.pytest_plugin import assert_no_violations
from tests.dispatcher.harness import Harness, make_harness


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[Harness]:
    harness = make_harness(tmp_path)
    try:
        yield harness
    finally:
        harness.close()
    assert_no_violations(harness.forge)
