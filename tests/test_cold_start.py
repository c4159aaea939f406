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
    main(sys.argv[1:])
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
    "apscheduler",
    "jinja2",
    "prometheus_client",
    "opsvault.app",  # the composition root of the commands that need a forge or git
    "opsvault.config",
    "opsvault.policy.freeze",  # only for a policy with [[freeze]] windows
    "zoneinfo",  # (its import reads sysconfig for the time zone path)
    "sysconfig",
    "opsvault.policy.salvage",  # only to lint an invalid policy
    "opsvault.policy.change",  # the change model: only for --base/--head
)


def _modules(args: list[str], cwd: Path) -> tuple[str, set[str]]:
    """Run the CLI with *args* in a new interpreter; its output and the modules it imported."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=True,
    )
    return proc.stdout, set(json.loads(proc.stderr.strip().splitlines()[-1]))


def _commands(modules: set[str]) -> list[str]:
    """The command modules among *modules* (opsvault.cli's own helpers left out)."""
    from opsvault.cli import COMMANDS

    targets = {target.split(":")[0] for target, _ in COMMANDS.values()}
    return sorted(modules & targets)


def test_classifying_one_file_imports_nothing_it_does_not_need(tmp_path: Path) -> None:
    ops = tmp_path / "ops"
    shutil.copytree(data_dir("ops-template"), ops)
    action = ops / "vault" / "actions" / "smoke-test-1.toml"
    action.write_text(
        'formula = "noop"\ncontext = "cold start"\nparams = { message = "hi" }\n'
    )
    out, modules = _modules(["classify", str(action)], ops)
    assert "smoke-test-1.toml: low" in out
    assert "opsvault.cli.classify" in modules  # the probe did classify
    assert sorted(m for m in NOT_NEEDED if m in modules) == []
    assert _commands(modules) == ["opsvault.cli.classify"]
    out, modules = _modules(["classify", "--json", str(action)], ops)
    assert '"tier": "low"' in out
    assert sorted(m for m in NOT_NEEDED if m in modules) == []


def test_help_imports_no_command(tmp_path: Path) -> None:
    """`vault --help` lists every command from its summary; `vault classify --help` imports one."""
    out, modules = _modules(["--help"], tmp_path)
    assert "classify    Print the blast-radius tier" in out
    assert _commands(modules) == []
    out, modules = _modules(["classify", "--help"], tmp_path)
    assert "classify [OPTIONS] [PATHS]..." in out
    assert _commands(modules) == ["opsvault.cli.classify"]
