"""The wheel carries the force-included data (formulas, ops-template, examples) and schemas."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_contains_data_and_schemas(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("opsvault-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "opsvault/_data/formulas/noop.toml",
        "opsvault/_data/ops-template/vault/policy.toml",
        "opsvault/_data/ops-template/vault/actions/.gitkeep",
        "opsvault/_data/examples/proposals/noop-smoke-20261121-1.toml",
        "opsvault/vault/schemas/action.schema.json",
        "opsvault/testing/fake_forgejo/swagger.v1.json",
    ):
        assert expected in names, expected
