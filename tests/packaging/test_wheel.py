"""What ships: the wheel is the product (data and schemas, no test doubles); the
sdist is the project (the product, the test doubles in ``testing/``, the tests).
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_contains_data_and_schemas_but_no_test_doubles(tmp_path: Path) -> None:
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
        "opsvault/_data/ops-template/.forgejo/workflows/vault.yml",
        "opsvault/_data/examples/proposals/noop-smoke-20261121-1.toml",
        "opsvault/vault/schemas/action.schema.json",
        "opsvault/vault/fastcheck.py",
        "opsvault/web/templates/status.html",  # the status page (ADR 0016)
    ):
        assert expected in names, expected
    leaked = sorted(
        n
        for n in names
        if n.startswith(("testing/", "tests/", "benchmarks/"))
        or "fake_forgejo" in n
        or "swagger" in n
    )
    assert leaked == []
    tops = {n.split("/", 1)[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"opsvault"}


def test_sdist_carries_the_test_doubles_and_one_swagger(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "hatchling",
            "build",
            "-t",
            "sdist",
            "-d",
            str(tmp_path),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (sdist,) = tmp_path.glob("opsvault-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    for expected in (
        "testing/__init__.py",
        "testing/fake_forgejo/server.py",
        "testing/fake_forgejo/swagger.v1.json",
        "tests/conftest.py",
        "opsvault/vault/fastcheck.py",
    ):
        assert expected in names, expected
    # One vendored swagger, read by the fake's validation and by the tests alike.
    assert sorted(n for n in names if n.endswith("swagger.v1.json")) == [
        "testing/fake_forgejo/swagger.v1.json"
    ]
