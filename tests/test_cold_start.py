"""A cold `vault classify FILE` imports only what classifying one file needs (issue 11).

Time is measured by benchmarks/classify.py, never asserted; what is asserted
here is what made it slow: modules the command does not need.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from opsvault._resources import data_dir

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json, sys
from opsvault.cli import main
try:
    main(["classify", sys.argv[1]])
except SystemExit:
    pass
sys.stderr.write(json.dumps(sorted(sys.modules)))
"""

# Modules a single-file classify has no use for, and what pulled each in before.
NOT_NEEDED = (
    "importlib.resources",  # schema and data lookup (tempfile, shutil, zipfile, lzma)
    "tempfile",
    "zipfile",
    "opsvault.git.base",  # only for --base/--head
    "opsvault.policy.classify",  # the change classifier
    "pygit2",
    "jsonschema",  # only to explain an invalid file
    "tomlkit",
    "httpx",
)


def test_classifying_one_file_imports_nothing_it_does_not_need(tmp_path: Path) -> None:
    ops = tmp_path / "ops"
    shutil.copytree(data_dir("ops-template"), ops)
    action = ops / "vault" / "actions" / "smoke-test-1.toml"
    action.write_text(
        'formula = "noop"\ncontext = "cold start"\nparams = { message = "hi" }\n'
    )
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(action)],
        capture_output=True,
        text=True,
        cwd=ops,
        check=True,
    )
    assert "smoke-test-1.toml: low" in proc.stdout
    modules = set(json.loads(proc.stderr.strip().splitlines()[-1]))
    assert "opsvault.cli.classify" in modules  # the probe did classify
    assert sorted(m for m in NOT_NEEDED if m in modules) == []
