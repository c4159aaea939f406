"""Steps run inside a bubblewrap sandbox (invariant I6: a step reads only its declared secrets).

A step is a program an admin approved, but nothing else about the dispatcher is
its business: not the dispatcher's processes and their environment, not the
secrets directory, the forge token file, the state directory or the ops repo.
``Sandbox.wrap`` turns a step's argv into a ``bwrap`` command line that gives
the step new PID, IPC, UTS and mount namespaces, no capabilities, a fresh
``/proc`` showing only its own processes, a private ``/tmp``, read-only views of
the system directories and of the Python installation running opsvault, and
one writable directory: its workspace. The network namespace is shared (steps
call deploy hooks and fetch repositories); see docs/adr/0007.

``probe`` decides at start whether the sandbox works here; ``resolve`` applies
the ``runner.sandbox`` setting ("auto", "required", "off") to that answer.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from opsvault.atomic_write import write_atomic
from opsvault.errors import ConfigError

if TYPE_CHECKING:
    from opsvault.config import Settings

log = logging.getLogger(__name__)

INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`)"
SANDBOXED = "bwrap"  # what a result record says about a step run in the sandbox
UNSANDBOXED = "none"

# Read-only at the same path when present. A top-level entry that is a symlink
# on the host (/bin -> usr/bin on merged-/usr systems) becomes the same symlink.
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# The few files of /etc that programs need to run, resolve names and check
# certificates; never the whole of /etc (it may hold credentials).
ETC_PATHS = (
    "/etc/alternatives",
    "/etc/ca-certificates",
    "/etc/ca-certificates.conf",
    "/etc/gai.conf",
    "/etc/gitconfig",
    "/etc/group",
    "/etc/host.conf",
    "/etc/hosts",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/mime.types",
    "/etc/nsswitch.conf",
    "/etc/os-release",
    "/etc/passwd",
    "/etc/pki",
    "/etc/protocols",
    "/etc/resolv.conf",
    "/etc/services",
    "/etc/ssl",
    "/etc/python3*",
)
PROBE_SECONDS = 20.0


class SandboxMode(StrEnum):
    AUTO = "auto"  # sandbox when bwrap works here; otherwise warn loudly and run bare
    REQUIRED = "required"  # refuse to start without a working sandbox
    OFF = "off"  # never sandbox (the operator's explicit choice)


def python_paths() -> tuple[Path, ...]:
    """Return what the interpreter running opsvault needs to run ``opsvault.steps`` too.

    The prefixes (a virtualenv and the installation it was made from), the
    installation the executable resolves to, the ``opsvault`` package (an
    editable install keeps it in a source tree) and the directory holding the
    libraries the step programs import (``httpx`` and its dependencies, which
    may be a user site-packages). Never ``/`` itself.
    """
    import httpx

    import opsvault

    found = [
        Path(sys.prefix),
        Path(sys.base_prefix),
        Path(sys.exec_prefix),
        Path(sys.base_exec_prefix),
        Path(sys.executable).parent,
        Path(sys.executable).resolve().parent.parent,
        Path(opsvault.__file__).resolve().parent,
        Path(httpx.__file__).resolve().parent.parent,
    ]
    return tuple(p for p in dict.fromkeys(found) if p.is_dir() and p != Path(p.anchor))


def _within(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def _expand(patterns: Iterable[str]) -> list[Path]:
    found: list[Path] = []
    for pattern in patterns:
        matches = glob.glob(pattern) if "*" in pattern else [pattern]
        found.extend(Path(m) for m in sorted(matches) if os.path.lexists(m))
    return found


@dataclass(frozen=True, slots=True)
class Sandbox:
    """How to wrap a step's argv in bwrap.

    *read_only*: extra directories steps may read (operator-chosen, e.g. a
    mirror of repositories for ``git-make`` file:// URLs). *hidden*: paths that
    must stay invisible even when they lie inside a directory the sandbox shows
    (the state dir, the secrets dir, the token file, the ops repo, the config):
    a directory is covered by an empty tmpfs, a file by /dev/null.
    """

    bwrap: str
    read_only: tuple[Path, ...] = ()
    hidden: tuple[Path, ...] = ()

    def wrap(self, argv: Sequence[str], workspace: Path) -> list[str]:
        """Return the bwrap command line that runs *argv* with *workspace* as its only writable path."""
        args = [
            self.bwrap,
            "--die-with-parent",  # the dispatcher's kill reaches everything inside
            # No --new-session: steps have no terminal (stdin is /dev/null, output a
            # pipe, the runner starts bwrap in a session of its own), and staying in
            # bwrap's process group lets the runner's SIGTERM reach the step.
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--hostname",
            "opsvault-step",
            "--cap-drop",
            "ALL",  # as root, bwrap would otherwise keep every capability
            "--proc",
            "/proc",
            # Read-only: sysctls check only the euid, so a step run by a root
            # dispatcher could otherwise set /proc/sys/kernel/core_pattern.
            "--remount-ro",
            "/proc",
            "--dev",
            "/dev",
            "--tmpfs",
            "/tmp",
            "--tmpfs",
            "/var/tmp",
            "--tmpfs",
            "/run",
        ]
        shown: list[Path] = []
        for entry in _expand(SYSTEM_PATHS):
            if entry.is_symlink():
                args += ["--symlink", os.readlink(entry), str(entry)]
            else:
                args += ["--ro-bind", str(entry), str(entry)]
                shown.append(entry)
        for entry in _expand(ETC_PATHS):
            args += ["--ro-bind", str(entry), str(entry)]
            shown.append(entry)
        for entry in (*python_paths(), *self.read_only):
            if not _within(entry, shown) and entry.exists():
                args += ["--ro-bind", str(entry), str(entry)]
                shown.append(entry)
        for secret in self.hidden:
            if not _within(secret, shown) or not os.path.lexists(secret):
                continue  # not visible inside anyway
            if secret.is_dir():
                args += ["--tmpfs", str(secret)]
            else:
                args += ["--ro-bind", "/dev/null", str(secret)]
        args += ["--bind", str(workspace), str(workspace), "--chdir", str(workspace)]
        args += ["--remount-ro", "/"]  # the sandbox's own root: no new top-level files
        return [*args, "--", *argv]


@dataclass(frozen=True, slots=True)
class SandboxStatus:
    """What the runner will do: sandbox every step, or not (and why)."""

    mode: SandboxMode
    sandbox: Sandbox | None
    detail: str  # one line for the start-up log and `vault status`

    @property
    def active(self) -> bool:
        return self.sandbox is not None


def find_bwrap(setting: str, path: str | None) -> str | None:
    """Return the bwrap executable *setting* names (a path, or a name looked up in *path*)."""
    if os.sep in setting:
        return setting if os.access(setting, os.X_OK) else None
    return shutil.which(setting, path=path)


def probe(sandbox: Sandbox) -> str | None:
    """Run the interpreter inside *sandbox* once; return why it failed, or None if it works.

    Namespaces may be unavailable (a container without user namespaces, a
    kernel that forbids them): finding the binary is not enough.
    """
    with tempfile.TemporaryDirectory(prefix="opsvault-probe-") as workspace:
        argv = sandbox.wrap(
            [sys.executable, "-c", "import opsvault.steps"], Path(workspace)
        )
        try:
            done = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=PROBE_SECONDS,
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{sandbox.bwrap} cannot run: {exc}"
    if done.returncode != 0:
        text = (done.stderr or done.stdout).decode("utf-8", "replace").strip()
        last = text.splitlines()[-1] if text else f"exit status {done.returncode}"
        return f"{sandbox.bwrap} does not work here: {last}"
    return None


def resolve(
    mode: SandboxMode,
    bwrap_setting: str,
    path: str | None,
    read_only: Sequence[Path] = (),
    hidden: Sequence[Path] = (),
) -> SandboxStatus:
    """Apply *mode* to what this host offers; raise ConfigError (exit 78) when "required" cannot be met."""
    if mode is SandboxMode.OFF:
        return SandboxStatus(
            mode, None, "steps are NOT sandboxed: runner.sandbox is 'off'"
        )
    found = find_bwrap(bwrap_setting, path)
    problem: str | None
    sandbox: Sandbox | None = None
    if found is None:
        problem = f"bubblewrap ({bwrap_setting!r}) was not found"
    else:
        sandbox = Sandbox(found, tuple(read_only), tuple(p.absolute() for p in hidden))
        problem = probe(sandbox)
    if problem is None and sandbox is not None:
        return SandboxStatus(mode, sandbox, f"steps run sandboxed by {sandbox.bwrap}")
    if mode is SandboxMode.REQUIRED:
        raise ConfigError(
            "runner.sandbox",
            f"is 'required' but {problem}",
            f"{INSTALL_HINT}, set runner.bwrap to its path, or set runner.sandbox = 'auto'",
        )
    return SandboxStatus(
        mode,
        None,
        f"steps are NOT sandboxed: {problem}; every step can read what the "
        f"dispatcher's user can read. Fix: {INSTALL_HINT}, or set "
        "runner.sandbox = 'required' to refuse to start without it",
    )


def hidden_paths(settings: Settings, environ: Mapping[str, str]) -> tuple[Path, ...]:
    """Return what no step may see: state, secrets, token, webhook secret, ops repo, config, credentials."""
    candidates = [
        settings.dispatcher.state_dir,
        settings.secrets.dir,
        settings.forge.token_file,
        settings.webhook.secret_file,
        settings.forge.path,
        settings.file,
    ]
    credentials = environ.get("CREDENTIALS_DIRECTORY")  # systemd's LoadCredential=
    if credentials:
        candidates.append(Path(credentials))
    return tuple(dict.fromkeys(Path(p).absolute() for p in candidates if p))


def sandbox_for(settings: Settings, environ: Mapping[str, str]) -> SandboxStatus:
    """Decide at start how steps run, from ``[runner]``; bwrap is looked up in *environ*'s PATH.

    Raise ConfigError (exit 78) for ``sandbox = "required"`` without a working bwrap.
    """
    runner = settings.runner
    try:
        mode = SandboxMode(runner.sandbox)
    except ValueError as exc:  # the schema makes this unreachable
        raise ConfigError(
            "runner.sandbox", f"{runner.sandbox!r} is not auto, required or off"
        ) from exc
    return resolve(
        mode,
        runner.bwrap,
        environ.get("PATH"),
        runner.read_only,
        hidden_paths(settings, environ),
    )


RUNNER_STATE = "runner.json"


def write_runner_state(state_dir: Path, status: SandboxStatus) -> None:
    """Record in *state_dir* how this dispatcher runs steps, for `vault status` (best effort)."""
    data = {
        "sandboxed": status.active,
        "mode": str(status.mode),
        "detail": status.detail,
        "pid": os.getpid(),
    }
    target = state_dir / RUNNER_STATE
    try:
        text = json.dumps(data, indent=2, sort_keys=True) + "\n"
        write_atomic(target, text.encode("utf-8"), mode=0o666)
    except OSError as exc:
        log.warning("cannot write %s: %s", target, exc.strerror)


def read_runner_state(state_dir: Path) -> tuple[bool, str] | None:
    """Return (sandboxed, detail) a dispatcher wrote at its start, or None."""
    try:
        data = json.loads((state_dir / RUNNER_STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("sandboxed"), bool):
        return None
    detail = data.get("detail")
    return data["sandboxed"], (
        f"dispatcher (pid {data.get('pid', '?')}): {detail}"
        if isinstance(detail, str)
        else ""
    )
