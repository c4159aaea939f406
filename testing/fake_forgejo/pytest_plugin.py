"""Pytest helpers: a running fake Forgejo that fails the test on any swagger violation.

The root ``tests/conftest.py`` loads it for every test::

    pytest_plugins = ["testing.fake_forgejo.pytest_plugin"]
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testing.fake_forgejo.server import FakeForgejo


def assert_no_violations(forge: FakeForgejo) -> None:
    """Fail with every recorded swagger violation of *forge*, if any."""
    if forge.violations:
        lines = "\n".join(f"  - {v}" for v in forge.violations)
        pytest.fail(
            f"fake forgejo recorded {len(forge.violations)} swagger violation(s):\n{lines}",
            pytrace=False,
        )


@pytest.fixture
def fake_forgejo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeForgejo]:
    """Yield a started ``FakeForgejo``; at teardown stop it and assert no violations.

    A test that provokes violations on purpose clears ``forge.violations`` itself.
    """
    forge = FakeForgejo(tmp_path_factory.mktemp("fake-forgejo"))
    with forge:
        yield forge
    assert_no_violations(forge)
