"""Sandbox tests need a working bubblewrap; in CI its absence is a failure, never a skip."""

from __future__ import annotations

import os
import shutil

import pytest

from opsvault.dispatcher.sandbox import Sandbox, probe


def working_bwrap() -> str:
    """Return the path of a bwrap that works here; skip locally, fail in CI, when there is none.

    `.ci/run` installs bubblewrap, so in CI (``CI=true``) a missing or broken
    bwrap means the sandbox tests did not run: that must turn the build red.
    """
    found = shutil.which("bwrap")
    problem = "bwrap is not installed" if found is None else probe(Sandbox(found))
    if problem is None and found is not None:
        return found
    message = f"{problem}; install bubblewrap (apt-get install bubblewrap)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"sandbox tests cannot run in CI: {message}")
    pytest.skip(message)


@pytest.fixture
def bwrap() -> str:
    return working_bwrap()
