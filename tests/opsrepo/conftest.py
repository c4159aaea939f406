"""An ops repo on disk, made by the real `vault init`, for the ops repo's own CI checks."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "dev-bot",
    "GIT_AUTHOR_EMAIL": "dev-bot@example.invalid",
    "GIT_COMMITTER_NAME": "dev-bot",
    "GIT_COMMITTER_EMAIL": "dev-bot@example.invalid",
}


def tool_env(extra: Mapping[str, str] = {}) -> dict[str, str]:
    """The environment the tools run in: this venv's `vault` first on PATH, a fixed git identity."""
    env = dict(os.environ)
    env.update(GIT_IDENTITY)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def run(
    args: list[str], cwd: Path, extra: Mapping[str, str] = {}
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        cwd=cwd,
        env=tool_env(extra),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture
def ops_repo(tmp_path: Path) -> Path:
    """A fresh ops repo from the template, on main, made by `vault init`."""
    ops = tmp_path / "ops"
    done = run([str(BIN / "vault"), "init", str(ops)], tmp_path)
    assert done.returncode == 0, done.stderr
    return ops
