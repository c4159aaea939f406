"""I6 — the dispatcher keeps no secret in its environment and is non-dumpable.

Built for real: a process holding ``OPSVAULT_SECRET_*`` seals itself as the
dispatcher does at start (``seal_secrets``); another process of the same user
then tries ``/proc/<pid>/environ`` and ``/proc/<pid>/mem``, and a child the
sealed process starts looks at its own environment. When the suite runs as
root, both drop every capability first, as a dispatcher run as its own user
has none (root with CAP_SYS_PTRACE reads any process: only the sandbox
protects a dispatcher run as root). The unsealed
control shows the reads work otherwise.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from opsvault.dispatcher.secrets import set_non_dumpable, take_secret_environ

SECRET = "sealed-secret-value-2718"
TOKEN = "forge-token-value-1414"

HOLDER = r"""
import os, subprocess, sys, time
seal = sys.argv[1] == "seal"
if seal:
    from opsvault.cli.dispatch import seal_secrets
    kept = seal_secrets()
    assert kept["OPSVAULT_SECRET_HOOK"] and kept["OPSVAULT_FORGE_TOKEN"]
child = subprocess.run(
    [sys.executable, "-c", "import os; print(sorted(k for k in os.environ if k.startswith('OPSVAULT')))"],
    capture_output=True, text=True, check=True,
)
print("child-env " + child.stdout.strip(), flush=True)
print("ready", flush=True)
time.sleep(30)
"""

READER = r"""
import sys
pid = sys.argv[1]
for name in ("environ", "mem"):
    try:
        with open("/proc/" + pid + "/" + name, "rb") as handle:
            data = handle.read(1 << 20) if name == "environ" else b""
        found = b"sealed-secret-value-2718" in data
        print(name, "readable", "secret" if found else "")
    except OSError as exc:
        print(name, "denied", type(exc).__name__)
"""


PR_CAPBSET_DROP = 24


def without_capabilities() -> Callable[[], None] | None:
    """Return a preexec function that empties the bounding set: after exec, root has no capability."""
    if os.geteuid() != 0:
        return None

    def drop() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        for cap in range(64):
            libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # EINVAL past the last: fine

    return drop


def attack(mode: str, tmp_path: Path) -> tuple[str, str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "OPSVAULT_SECRET_HOOK": SECRET,
        "OPSVAULT_FORGE_TOKEN": TOKEN,
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        "HOME": str(tmp_path),
    }
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, mode],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        preexec_fn=without_capabilities(),
    )
    try:
        assert holder.stdout is not None
        child_line = holder.stdout.readline().strip()
        assert holder.stdout.readline().strip() == "ready"
        reader = subprocess.run(
            [sys.executable, "-c", READER, str(holder.pid)],
            env={"PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            preexec_fn=without_capabilities(),
            check=True,
            cwd=tmp_path,
        )
        return child_line, reader.stdout
    finally:
        holder.kill()
        holder.communicate()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux")
def test_sealed_dispatcher_environment_and_memory_are_unreadable(
    tmp_path: Path,
) -> None:
    child, reads = attack("seal", tmp_path)
    assert child == "child-env []"  # nothing inherited by git, hooks or steps
    assert "environ denied PermissionError" in reads
    assert "mem denied PermissionError" in reads


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux")
def test_unsealed_control_leaks_to_children_and_to_proc(tmp_path: Path) -> None:
    child, reads = attack("plain", tmp_path)
    assert "OPSVAULT_SECRET_HOOK" in child and "OPSVAULT_FORGE_TOKEN" in child
    assert "environ readable secret" in reads


def test_take_secret_environ_removes_only_secrets() -> None:
    environ = {
        "OPSVAULT_SECRET_A": "1",
        "OPSVAULT_FORGE_TOKEN": "t",
        "OPSVAULT_FORGE_URL": "https://x",
        "PATH": "/bin",
    }
    taken = take_secret_environ(environ)
    assert taken == {"OPSVAULT_SECRET_A": "1", "OPSVAULT_FORGE_TOKEN": "t"}
    assert environ == {"OPSVAULT_FORGE_URL": "https://x", "PATH": "/bin"}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux")
def test_set_non_dumpable_reports_success_in_a_child() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from opsvault.dispatcher.secrets import set_non_dumpable; print(set_non_dumpable())",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "True"
    assert callable(set_non_dumpable)
