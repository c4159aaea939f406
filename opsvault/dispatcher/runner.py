"""The subprocess adapter of the runner port (``opsvault.ports.Runner``) and a recording stand-in.

A formula's steps are argv lists run in order in a fresh private workspace, with
an environment holding only PATH, HOME, LANG, the declared secrets and VAULT_*
metadata, under one hard deadline enforced from outside, with merged output
captured into a bounded tail in which every known secret value (declared or not)
and the forge token are redacted. With a ``Sandbox`` each step runs inside
bubblewrap (opsvault/dispatcher/sandbox.py), its workspace the only writable
path. Runtime semantics are documented for formula authors in docs/formulas.md.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from opsvault.dispatcher.reasons import ReasonCode
from opsvault.dispatcher.records import Outcome
from opsvault.dispatcher.sandbox import SANDBOXED, UNSANDBOXED, Sandbox
from opsvault.dispatcher.secrets import SECRET_NAME, RedactingTail
from opsvault.errors import InvalidFormulaError, OpsvaultError
from opsvault.messages import ExecutionRequest, RunResult
from opsvault.ports import SecretSource
from opsvault.vault.placeholders import render_argv

log = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
"""PATH given to steps unless the composition root passes another one. Never
inherited from the dispatcher, whose PATH may hold user-writable directories."""

_METADATA_NAME = re.compile(r"VAULT_[A-Z0-9_]+")
_FIXED_ENV = frozenset({"PATH", "HOME", "LANG"})
_FIXED_VAULT_ENV = frozenset({"VAULT_ACTION_ID", "VAULT_FORMULA", "VAULT_WORKSPACE"})
_CHUNK = 64 * 1024
_POLL_SECONDS = 0.05


class _SpawnFailed(Exception):
    pass


@dataclass(frozen=True, slots=True)
class _End:
    """How an execution ended, before the clock and the tail are read."""

    reason: ReasonCode
    tail: RedactingTail
    exit_code: int | None = None
    failed_step: str | None = None
    started_steps: bool = False


_OUTCOMES = {ReasonCode.OK: Outcome.SUCCEEDED, ReasonCode.TIMEOUT: Outcome.TIMEOUT}


def _check_request(request: ExecutionRequest) -> str | None:
    """Return why *request* cannot be run safely, or None. Validation upstream
    should make this unreachable; the runner re-checks because env names collide."""
    for name in request.secrets:
        if (
            not SECRET_NAME.fullmatch(name)
            or name in _FIXED_ENV
            or name.startswith("VAULT_")
        ):
            return f"secret name {name!r} is invalid or reserved"
    for key, _ in request.metadata:
        if not _METADATA_NAME.fullmatch(key) or key in _FIXED_VAULT_ENV:
            return f"metadata name {key!r} is invalid or reserved"
    if not request.timeout_seconds > 0:
        return f"timeout {request.timeout_seconds!r} is not positive"
    if request.output_limit < 0:
        return f"output limit {request.output_limit!r} is negative"
    return None


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
        os.killpg(pgid, signum)


def _group_members(pgid: int) -> list[int]:
    """Return the pids of process group *pgid* (Linux /proc; empty elsewhere)."""
    members = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as handle:
                    stat_line = handle.read()
            except OSError:
                continue  # gone meanwhile
            fields = stat_line.rsplit(b")", 1)[-1].split()
            if len(fields) > 2 and fields[2] == str(pgid).encode():
                members.append(int(entry.name))
    return members


def _signal_group_except(pgid: int, spared: int, signum: int) -> None:
    """Signal every process of group *pgid* but *spared* (the sandbox's bwrap)."""
    for pid in _group_members(pgid):
        if pid != spared:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)


def _leader_exited(pid: int) -> bool:
    """Return whether *pid* has exited, without reaping it.

    Keeping the zombie keeps its pid (our group id) from being reused, so a
    later killpg cannot hit an unrelated process group.
    """
    try:
        return (
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        )
    except ChildProcessError:
        return True


def _remove_tree(path: Path) -> None:
    # A step may leave unreadable or read-only directories behind; open them up
    # top-down (os.walk lists a directory before descending into it).
    with contextlib.suppress(OSError):
        path.chmod(stat.S_IRWXU)
    for root, dirs, _ in os.walk(path):
        for name in dirs:
            target = Path(root, name)
            if not target.is_symlink():
                with contextlib.suppress(OSError):
                    target.chmod(stat.S_IRWXU)
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():
        log.warning("could not remove workspace %s", path)


class SubprocessRunner:
    """Run steps as local subprocesses (argv only, never a shell).

    *path* is the PATH steps get (see DEFAULT_PATH). *kill_grace* is the time
    between SIGTERM and SIGKILL at the deadline. *sandbox*: run every step
    inside it (None: as plain subprocesses). *redactions* returns every secret
    value known to the dispatcher (name -> value, the forge token included):
    all of them are redacted from the output, not only the declared ones. One
    instance may serve several worker threads at once: each execution keeps its
    state on its own stack.
    """

    def __init__(
        self,
        secrets: SecretSource,
        workspace_root: Path | None = None,
        clock: Callable[[], float] = time.time,
        kill_grace: float = 2.0,
        path: str = DEFAULT_PATH,
        sandbox: Sandbox | None = None,
        redactions: Callable[[], Mapping[str, str]] | None = None,
    ) -> None:
        self._secrets = secrets
        self._sandbox = sandbox
        self._redactions = redactions
        self._workspace_root = workspace_root
        self._clock = clock
        self._kill_grace = kill_grace
        self._path = path

    def execute(self, request: ExecutionRequest) -> RunResult:
        started_at = self._clock()
        deadline = time.monotonic() + max(request.timeout_seconds, 0.0)
        tail = RedactingTail(self._known(), max(request.output_limit, 0))
        end = self._prepare_and_run(request, deadline, tail)
        outcome = _OUTCOMES.get(end.reason, Outcome.FAILED)
        log.info(
            "action %s: %s (%s)", request.action_id, outcome.value, end.reason.value
        )
        return RunResult(
            outcome=outcome.value,
            reason=end.reason.value,
            exit_code=end.exit_code,
            failed_step=end.failed_step,
            started_at=started_at,
            ended_at=self._clock(),
            output_tail=end.tail.text(),
            sandbox=(SANDBOXED if self._sandbox else UNSANDBOXED)
            if end.started_steps
            else "",
        )

    def _known(self) -> dict[str, str]:
        if self._redactions is None:
            return {}
        try:
            return dict(self._redactions())
        except OpsvaultError as exc:  # cannot list: the declared are still redacted
            log.warning("cannot list the known secrets for redaction: %s", exc)
            return {}

    def _prepare_and_run(
        self, request: ExecutionRequest, deadline: float, tail: RedactingTail
    ) -> _End:
        problem = _check_request(request)
        if problem is not None:
            tail.note(f"refused: {problem}")
            return _End(ReasonCode.BAD_REQUEST, tail)
        secrets: dict[str, str] = {}
        missing: list[str] = []
        for name in request.secrets:
            try:
                value = self._secrets.get(name)
            except OpsvaultError as exc:
                log.warning("secret %r: %s", name, exc)
                value = None
            if value:
                secrets[name] = value
            else:
                missing.append(name)
        tail = RedactingTail(self._known() | secrets, request.output_limit)
        if missing:
            tail.note(f"missing secrets (nothing was run): {', '.join(missing)}")
            return _End(ReasonCode.SECRET_MISSING, tail)
        try:
            workspace = Path(
                tempfile.mkdtemp(prefix="opsvault-", dir=self._workspace_root)
            )
        except OSError as exc:
            tail.note(f"cannot create a workspace: {exc}")
            return _End(ReasonCode.SPAWN_FAILED, tail)
        try:
            return self._run_steps(request, workspace, secrets, deadline, tail)
        finally:
            _remove_tree(workspace)

    def _run_steps(
        self,
        request: ExecutionRequest,
        workspace: Path,
        secrets: Mapping[str, str],
        deadline: float,
        tail: RedactingTail,
    ) -> _End:
        home = workspace / ".home"
        home.mkdir(mode=0o700)
        values = {f"params.{name}": value for name, value in request.params}
        values |= {
            "workspace": str(workspace),
            "action.id": request.action_id,
            "python": sys.executable,
        }
        lists = {f"params.{name}": items for name, items in request.list_params}
        argvs: list[tuple[str, ...]] = []
        for index, step in enumerate(request.steps):
            try:
                argvs.append(
                    render_argv(
                        step.run,
                        values,
                        f"formula {request.formula!r}",
                        lists=lists,
                        path=f"$.steps[{index}].run",
                    )
                )
            except InvalidFormulaError as exc:
                tail.note(f"nothing was run: {exc}")
                return _End(ReasonCode.BAD_PLACEHOLDER, tail, failed_step=step.name)
        env = {"PATH": self._path, "HOME": str(home), "LANG": "C.UTF-8"}
        env |= {
            "VAULT_ACTION_ID": request.action_id,
            "VAULT_FORMULA": request.formula,
            "VAULT_WORKSPACE": str(workspace),
        }
        env |= dict(request.metadata)
        env |= secrets
        exit_code: int | None = None
        started = False
        for step, argv in zip(request.steps, argvs, strict=True):
            if time.monotonic() >= deadline:
                tail.note(f"deadline reached before step {step.name!r}")
                return _End(ReasonCode.TIMEOUT, tail, None, step.name, started)
            tail.note(f"step {step.name!r}")
            started = True
            try:
                exit_code, timed_out = self._run_step(
                    argv, env, workspace, deadline, tail
                )
            except _SpawnFailed as exc:
                tail.note(f"cannot start step {step.name!r}: {exc}")
                return _End(
                    ReasonCode.SPAWN_FAILED,
                    tail,
                    failed_step=step.name,
                    started_steps=started,
                )
            if timed_out:
                tail.note(
                    f"deadline of {request.timeout_seconds}s reached in step {step.name!r}"
                )
                return _End(
                    ReasonCode.TIMEOUT, tail, failed_step=step.name, started_steps=True
                )
            if exit_code != 0:
                tail.note(f"step {step.name!r} exited with {exit_code}")
                return _End(ReasonCode.EXIT_NONZERO, tail, exit_code, step.name, True)
        return _End(ReasonCode.OK, tail, exit_code, started_steps=started)

    def _run_step(
        self,
        argv: tuple[str, ...],
        env: Mapping[str, str],
        cwd: Path,
        deadline: float,
        tail: RedactingTail,
    ) -> tuple[int, bool]:
        """Run one step; return (exit code, whether the deadline killed it)."""
        command = self._sandbox.wrap(argv, cwd) if self._sandbox else list(argv)
        try:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,  # own process group: signals reach every descendant
                close_fds=True,
            )
        except (OSError, ValueError) as exc:
            raise _SpawnFailed(str(exc)) from exc
        with proc:
            timed_out = self._pump(proc, deadline, tail)
            proc.wait()
        return proc.returncode, timed_out

    def _pump(
        self, proc: subprocess.Popen[bytes], deadline: float, tail: RedactingTail
    ) -> bool:
        """Copy output into *tail* until the step's group is gone; enforce the deadline."""
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        group = proc.pid
        grace = self._kill_grace
        term_at: float | None = None
        killed = False
        exited_at: float | None = None
        eof = False
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while True:
                now = time.monotonic()
                if exited_at is None and _leader_exited(proc.pid):
                    exited_at = now
                    # Whatever the step left running does not outlive it.
                    _signal_group(group, signal.SIGKILL)
                if exited_at is not None and (eof or now >= exited_at + grace):
                    # Stop reading even if a process that left the group (setsid)
                    # still holds the pipe open.
                    return term_at is not None
                if exited_at is None and term_at is None and now >= deadline:
                    if self._sandbox is not None:
                        # SIGTERM would end bwrap at once and its namespace with
                        # it: give the step itself the grace period instead.
                        _signal_group_except(group, proc.pid, signal.SIGTERM)
                    else:
                        _signal_group(group, signal.SIGTERM)
                    term_at = now
                elif term_at is not None and not killed and now >= term_at + grace:
                    _signal_group(group, signal.SIGKILL)
                    killed = True
                if eof:
                    time.sleep(_POLL_SECONDS)
                elif selector.select(timeout=_POLL_SECONDS):
                    chunk = os.read(fd, _CHUNK)
                    if chunk:
                        tail.feed(chunk)
                    else:
                        eof = True


@dataclass(slots=True)
class RecordingRunner:
    """Record every request and return scripted results (then a default success)."""

    results: list[RunResult] = field(default_factory=list)
    requests: list[ExecutionRequest] = field(default_factory=list)

    @classmethod
    def scripted(cls, results: Iterable[RunResult]) -> RecordingRunner:
        return cls(results=list(results))

    def execute(self, request: ExecutionRequest) -> RunResult:
        self.requests.append(request)
        if self.results:
            return self.results.pop(0)
        return RunResult(
            Outcome.SUCCEEDED.value, ReasonCode.OK.value, 0, None, 0.0, 0.0, ""
        )
