"""A dispatcher in a process of its own, for the exactly-once and crash tests.

Run as ``python -m tests.dispatcher._proc_dispatcher SPEC_JSON`` from the
repository root (``spawn_dispatcher`` does that). SPEC_JSON is a ``ProcSpec``
written by the test. The process builds its own App (its own bare clone and
state_dir, the shared forge identity), and then either ticks once or ticks
until main holds no action in ``vault/actions`` nor ``vault/running``.

Executions are recorded by ``AppendingRunner``: one line per execution,
appended with O_APPEND to a file every process shares, *before* anything can
kill the process — so a line means "the side effect may have happened".
``kill_at`` makes ``App.checkpoint`` SIGKILL the process at that checkpoint
("claimed", "executed", "recorded"), or inside the runner ("running").
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opsvault.git.base import OpsRepo
    from opsvault.messages import ExecutionRequest, RunResult

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class ProcSpec:
    forge_url: str  # "" for local mode: LocalForge over the ops repo at *origin*
    token: str
    origin: str  # the fake forge's bare repository, or the local ops repo (a path)
    clone: str
    state_dir: str
    log: str  # shared execution log
    now: str  # ISO time of the first tick
    identity: str = "vault-bot"
    kill_at: str | None = None  # checkpoint name, or "running"
    until_idle: bool = False
    queue_limit: int = 100
    max_concurrency: int = 4
    step_seconds: float = 1.0  # how far `now` moves between ticks
    deadline_seconds: float = 60.0  # wall time before giving up (until_idle)
    action_seconds: float = (
        0.0  # how long each execution takes (benchmarks/replicas.py)
    )
    # benchmarks/replicas.py: after a tick that committed nothing, wait until
    # main moves on the forge, or this long at most (a service waits for its
    # interval or for the push webhook that wakes it; it does not spin on a
    # main other replicas are working through)
    idle_wait: float = 0.0
    # benchmarks/replicas.py: once built, create *ready_file* and wait for
    # *go_file* before the first tick; when nothing is left, write the time
    # (time.time()) into *done_file* before closing down (a replica is a
    # long-running service: its start-up and shut-down are not part of a run)
    ready_file: str | None = None
    go_file: str | None = None
    done_file: str | None = None
    # benchmarks/replicas.py: each tick's `now` is the first tick's plus the
    # real time since (replicas then agree on the time, whatever their tick
    # counts), not plus step_seconds per tick
    real_clock: bool = False


class AppendingRunner:
    """Append the action id (and our pid) to a shared log, then succeed."""

    def __init__(
        self, log: Path, *, die_inside: bool = False, seconds: float = 0.0
    ) -> None:
        self.log = log
        self.die_inside = die_inside
        self.seconds = seconds

    def execute(self, request: ExecutionRequest) -> RunResult:
        from opsvault.messages import RunResult

        started = time.time()
        append_line(self.log, f"{request.action_id} {os.getpid()}")
        if self.die_inside:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.seconds:
            time.sleep(self.seconds)
        return RunResult("succeeded", "ok", 0, None, started, time.time(), "ran\n")


def append_line(path: Path, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def executions(path: Path) -> list[str]:
    """Return the action ids in the shared log, one per execution."""
    if not path.exists():
        return []
    return [line.split()[0] for line in path.read_text().splitlines() if line]


def _die_at(name: str) -> Callable[[str], None]:
    def checkpoint(reached: str) -> None:
        if reached == name:
            os.kill(os.getpid(), signal.SIGKILL)

    return checkpoint


def _pending(repo: OpsRepo, main: str) -> list[str]:
    return [
        p
        for prefix in ("vault/actions", "vault/running")
        for p in repo.list_files(main, prefix)
        if p.endswith(".toml")
    ]


def _wait_for_a_push(origin: Path, seconds: float) -> None:
    """Return once main on the forge's repository at *origin* moves, or after *seconds*."""
    from opsvault.git.pygit2_repo import Pygit2OpsRepo

    forge = Pygit2OpsRepo.open(origin)
    seen = forge.resolve("refs/heads/main")
    give_up = time.monotonic() + seconds
    while time.monotonic() < give_up and forge.resolve("refs/heads/main") == seen:
        time.sleep(0.01)


def run(spec: ProcSpec) -> int:
    from opsvault.app import App
    from opsvault.config import DispatcherSettings, Settings
    from opsvault.dispatcher.notify import RecordingNotifier
    from opsvault.dispatcher.report import report_data
    from opsvault.dispatcher.tick import tick
    from opsvault.forge.client import ForgejoClient
    from opsvault.forge.local import LocalForge
    from opsvault.forge.token import ForgeToken
    from opsvault.git.mainline import LocalMainline, RemoteMainline
    from opsvault.git.pygit2_repo import Pygit2OpsRepo
    from opsvault.ports import Forge, Mainline
    from testing.fake_forgejo.protection import PUSHER_ENV
    from tests.dispatcher.local_harness import OPERATOR

    settings = Settings(
        dispatcher=DispatcherSettings(
            identity=spec.identity,
            state_dir=Path(spec.state_dir),
            queue_limit=spec.queue_limit,
            max_concurrency=spec.max_concurrency,
        )
    )
    forge: Forge
    mainline: Mainline
    if not spec.forge_url:  # local mode, wired as app.build_app wires it
        repo = Pygit2OpsRepo.open(Path(spec.origin))
        forge = LocalForge(repo, spec.identity, operator=OPERATOR)
        mainline = LocalMainline(repo)
    else:
        clone = Path(spec.clone)
        env = {PUSHER_ENV: spec.identity}  # who pushes, for the fake's pre-receive hook
        if clone.exists():
            repo = Pygit2OpsRepo.open(clone, transport_env=env)
        else:
            repo = Pygit2OpsRepo.clone(spec.origin, clone, bare=True, transport_env=env)
        forge = ForgejoClient(
            spec.forge_url,
            "acme",
            "ops",
            ForgeToken(spec.token),
            bot_login=spec.identity,
            sleep=lambda s: time.sleep(min(s, 0.05)),
        )
        mainline = RemoteMainline(repo)
    app = App(
        settings=settings,
        forge=forge,
        repo=repo,
        mainline=mainline,
        runner=AppendingRunner(
            Path(spec.log),
            die_inside=spec.kill_at == "running",
            seconds=spec.action_seconds,
        ),
        notifier=RecordingNotifier(),
        state_dir=settings.dispatcher.state_dir,
        identity=spec.identity,
    )
    if spec.kill_at is not None and spec.kill_at != "running":
        app.checkpoint = _die_at(spec.kill_at)
    if spec.ready_file and spec.go_file:
        Path(spec.ready_file).touch()
        while not Path(spec.go_file).exists():
            time.sleep(0.002)
    now = first = datetime.fromisoformat(spec.now)
    started = time.monotonic()
    give_up = started + spec.deadline_seconds
    try:
        while True:
            report = tick(app, now)
            sys.stdout.write(json.dumps(report_data(report)) + "\n")
            sys.stdout.flush()
            if not spec.until_idle:
                return 0
            if not _pending(repo, mainline.refresh()):
                if spec.done_file:
                    Path(spec.done_file).write_text(repr(time.time()))
                return 0
            if time.monotonic() > give_up:
                sys.stderr.write("gave up: actions still pending\n")
                return 2
            if spec.idle_wait and not report.commits:
                _wait_for_a_push(Path(spec.origin), spec.idle_wait)
            if spec.real_clock:
                now = first + timedelta(seconds=time.monotonic() - started)
            else:
                now += timedelta(seconds=spec.step_seconds)
    finally:
        forge.close()


def proc_spec(
    vault: Any, name: str, log: Path, now: datetime, **options: Any
) -> ProcSpec:
    """Describe the dispatcher ``vault.app(name)`` would build (same clone, state_dir, identity)."""
    local = getattr(vault, "kind", "forgejo") == "local"
    return ProcSpec(
        forge_url="" if local else vault.forge.url,
        token="" if local else vault.tokens[vault.identity],
        origin=str(vault.root / "ops")
        if local
        else str(vault.forge.repo("acme/ops").git.path),
        clone=str(vault.root / f"{name}.git"),
        state_dir=str(vault.root / f"{name}-state"),
        log=str(log),
        now=now.isoformat(),
        identity=vault.identity,
        **options,
    )


def spawn_dispatcher(spec: ProcSpec, spec_file: Path) -> subprocess.Popen[str]:
    """Start ``run(spec)`` in a new Python process; stdout holds one JSON report per tick."""
    spec_file.write_text(json.dumps(asdict(spec)))
    return subprocess.Popen(
        [sys.executable, "-m", "tests.dispatcher._proc_dispatcher", str(spec_file)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def main(argv: list[str]) -> int:
    spec = ProcSpec(**json.loads(Path(argv[1]).read_text()))
    return run(spec)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
