from __future__ import annotations

import itertools
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opsvault.dispatcher.runner import DEFAULT_PATH, RecordingRunner, SubprocessRunner
from opsvault.dispatcher.secrets import DirectorySecrets, EnvSecrets, RedactingTail
from opsvault.messages import ExecutionRequest, RunResult, StepSpec

SECRET = "hunter2-very-secret-value"


def py(code: str, *args: str) -> tuple[str, ...]:
    return ("{python}", "-c", code, *args)


def request(
    *steps: tuple[str, ...],
    secrets: Sequence[str] = (),
    timeout: float = 10.0,
    params: Mapping[str, str] | None = None,
    output_limit: int = 64 * 1024,
    metadata: tuple[tuple[str, str], ...] = (),
) -> ExecutionRequest:
    return ExecutionRequest(
        action_id="act-1",
        formula="test",
        steps=tuple(StepSpec(f"step{i}", run) for i, run in enumerate(steps)),
        params=tuple((params or {}).items()),
        list_params=(),
        secrets=tuple(secrets),
        timeout_seconds=timeout,
        output_limit=output_limit,
        metadata=metadata,
    )


@pytest.fixture
def runner(tmp_path: Path) -> SubprocessRunner:
    root = tmp_path / "workspaces"
    root.mkdir()
    ticks = iter(range(1000, 2000))
    return SubprocessRunner(
        EnvSecrets(
            {"OPSVAULT_SECRET_TOKEN": SECRET, "OPSVAULT_SECRET_OTHER": "other-secret"}
        ),
        workspace_root=root,
        clock=lambda: float(next(ticks)),
        kill_grace=0.3,
    )


def test_steps_run_in_order_and_succeed(runner: SubprocessRunner) -> None:
    result = runner.execute(
        request(py("print('one')"), py("import sys; print(sys.argv[1])", "{action.id}"))
    )
    assert (result.outcome, result.reason, result.exit_code) == ("succeeded", "ok", 0)
    assert result.failed_step is None
    assert result.output_tail.index("one\n") < result.output_tail.index("act-1\n")
    assert (result.started_at, result.ended_at) == (1000.0, 1001.0)


def test_execution_stops_at_the_first_failing_step(
    runner: SubprocessRunner, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    result = runner.execute(
        request(
            py("import sys; print('bad'); sys.exit(3)"),
            py("import pathlib, sys; pathlib.Path(sys.argv[1]).touch()", str(marker)),
        )
    )
    assert (result.outcome, result.reason, result.exit_code) == (
        "failed",
        "exit-nonzero",
        3,
    )
    assert result.failed_step == "step0"
    assert "bad" in result.output_tail
    assert not marker.exists()


def test_environment_holds_only_the_allowed_names(
    runner: SubprocessRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAKY_PARENT_VAR", "parent-value")
    monkeypatch.setenv("OPSVAULT_SECRET_UNDECLARED", "undeclared-secret")
    code = "import json, os; print(json.dumps(dict(os.environ)))"
    result = runner.execute(
        request(py(code), secrets=["TOKEN"], metadata=(("VAULT_PR", "12"),))
    )
    assert result.outcome == "succeeded", result.output_tail
    line = next(x for x in result.output_tail.splitlines() if x.startswith("{"))
    env = json.loads(line)
    # CPython may add LC_CTYPE when it coerces a C locale; nothing else may appear.
    env.pop("LC_CTYPE", None)
    assert set(env) == {
        "PATH", "HOME", "LANG", "TOKEN",
        "VAULT_ACTION_ID", "VAULT_FORMULA", "VAULT_WORKSPACE", "VAULT_PR",
    }  # fmt: skip
    assert env["TOKEN"] == "[REDACTED:TOKEN]"  # the value arrived, and was redacted
    assert env["PATH"] == DEFAULT_PATH
    assert env["LANG"] == "C.UTF-8"
    assert (env["VAULT_ACTION_ID"], env["VAULT_FORMULA"], env["VAULT_PR"]) == (
        "act-1",
        "test",
        "12",
    )
    assert env["HOME"].startswith(env["VAULT_WORKSPACE"] + "/")
    assert "parent-value" not in result.output_tail
    assert "undeclared-secret" not in result.output_tail
    assert "other-secret" not in result.output_tail


def test_workspace_is_private_fresh_and_removed(
    runner: SubprocessRunner, tmp_path: Path
) -> None:
    code = (
        "import os, stat, sys; ws = sys.argv[1]; "
        "print(oct(stat.S_IMODE(os.stat(ws).st_mode)), os.getcwd() == ws, sorted(os.listdir(ws)), "
        "oct(stat.S_IMODE(os.stat(os.environ['HOME']).st_mode))); "
        "os.makedirs(ws + '/ro/sub/deep'); os.chmod(ws + '/ro/sub', 0o000); "
        "os.chmod(ws + '/ro', 0o500)"
    )
    result = runner.execute(request(py(code, "{workspace}")))
    assert result.outcome == "succeeded", result.output_tail
    assert "0o700 True ['.home'] 0o700" in result.output_tail
    assert list((tmp_path / "workspaces").iterdir()) == []


def test_missing_secret_fails_without_running_anything(
    runner: SubprocessRunner, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    step = py("import pathlib, sys; pathlib.Path(sys.argv[1]).touch()", str(marker))
    result = runner.execute(request(step, secrets=["TOKEN", "ABSENT"]))
    assert (result.outcome, result.reason, result.failed_step) == (
        "failed",
        "secret-missing",
        None,
    )
    assert "ABSENT" in result.output_tail
    assert not marker.exists()
    assert list((tmp_path / "workspaces").iterdir()) == []


def test_secret_placeholder_is_refused_before_anything_runs(
    runner: SubprocessRunner, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    first = py("import pathlib, sys; pathlib.Path(sys.argv[1]).touch()", str(marker))
    result = runner.execute(
        request(first, ("echo", "{secrets.TOKEN}"), secrets=["TOKEN"])
    )
    assert (result.outcome, result.reason, result.failed_step) == (
        "failed",
        "bad-placeholder",
        "step1",
    )
    assert "unknown placeholder {secrets.TOKEN}" in result.output_tail
    assert not marker.exists()


def test_params_fill_placeholders(runner: SubprocessRunner) -> None:
    result = runner.execute(
        request(
            py(
                "import sys; print(sys.argv[1:])",
                "--site={params.site}",
                "{params.site}",
            ),
            params={"site": "a b"},
        )
    )
    assert "['--site=a b', 'a b']" in result.output_tail


def test_list_params_expand_to_arguments(runner: SubprocessRunner) -> None:
    req = ExecutionRequest(
        "act-1",
        "test",
        (StepSpec("s", py("import sys; print(sys.argv[1:])", "{params.hosts}")),),
        (),
        (("hosts", ("web-1", "web 2")),),
        (),
        10.0,
    )
    assert "['web-1', 'web 2']" in runner.execute(req).output_tail


def test_unknown_program_is_a_spawn_failure(runner: SubprocessRunner) -> None:
    result = runner.execute(request(("/nonexistent/program",)))
    assert (result.outcome, result.reason, result.failed_step) == (
        "failed",
        "spawn-failed",
        "step0",
    )


def test_reserved_secret_names_are_refused(runner: SubprocessRunner) -> None:
    for bad in ("PATH", "VAULT_ACTION_ID", "lower"):
        assert runner.execute(request(("true",), secrets=[bad])).reason == "bad-request"
    assert runner.execute(
        request(("true",), metadata=(("VAULT_WORKSPACE", "/"),))
    ).reason == ("bad-request")


def _dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # Reparented to a PID 1 that does not reap: a zombie is dead too.
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state == "Z"


def test_deadline_kills_the_whole_group_even_a_term_ignoring_grandchild(
    runner: SubprocessRunner, tmp_path: Path
) -> None:
    pidfile = tmp_path / "grandchild.pid"
    grandchild = (
        "import os, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "open(sys.argv[1], 'w').write(str(os.getpid())); print('gc up', flush=True); "
        "time.sleep(60)"
    )
    parent = (
        "import subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', sys.argv[1], sys.argv[2]]); time.sleep(60)"
    )
    began = time.monotonic()
    result = runner.execute(request(py(parent, grandchild, str(pidfile)), timeout=1.0))
    elapsed = time.monotonic() - began
    assert (result.outcome, result.reason, result.failed_step) == (
        "timeout",
        "timeout",
        "step0",
    )
    assert result.exit_code is None
    assert elapsed < 5
    assert "gc up" in result.output_tail
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 2
    while not _dead(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _dead(pid)


def test_term_ignoring_step_is_killed_after_grace(runner: SubprocessRunner) -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('up', flush=True); time.sleep(60)"
    )
    began = time.monotonic()
    result = runner.execute(request(py(code), timeout=0.5))
    assert result.outcome == "timeout"
    assert time.monotonic() - began < 4


def test_deadline_covers_the_whole_execution(
    runner: SubprocessRunner, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    result = runner.execute(
        request(
            py("import time; time.sleep(0.4)"),
            py("import time; time.sleep(0.4)"),
            py("import pathlib, sys; pathlib.Path(sys.argv[1]).touch()", str(marker)),
            timeout=0.6,
        )
    )
    assert (result.outcome, result.failed_step) == ("timeout", "step1")
    assert not marker.exists()


def test_leftover_background_processes_do_not_outlive_their_step(
    runner: SubprocessRunner, tmp_path: Path
) -> None:
    pidfile = tmp_path / "bg.pid"
    code = (
        "import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', "
        "'import time; time.sleep(60)']); open(sys.argv[1], 'w').write(str(p.pid))"
    )
    began = time.monotonic()
    result = runner.execute(request(py(code, str(pidfile)), timeout=10))
    assert result.outcome == "succeeded"
    assert time.monotonic() - began < 3
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 2
    while not _dead(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _dead(pid)


def test_output_is_capped_to_its_tail(runner: SubprocessRunner) -> None:
    code = (
        "import sys\nfor i in range(20000): sys.stdout.write(f'line {{i:06d}}\\n')\n"
        "sys.stdout.flush(); sys.stderr.write('the end\\n')"
    )
    result = runner.execute(request(py(code), output_limit=1000))
    assert len(result.output_tail.encode()) <= 1000
    assert result.output_tail.endswith("the end\n")
    assert "line 019999" in result.output_tail
    assert "line 000000" not in result.output_tail


def test_secret_split_across_writes_is_redacted(runner: SubprocessRunner) -> None:
    code = (
        "import os, sys, time; s = os.environ['TOKEN']; out = sys.stdout.buffer\n"
        "for i in range(1, len(s)):\n"
        "    out.write(b'<' + s[:i].encode()); out.flush(); time.sleep(0.002)\n"
        "    out.write(s[i:].encode() + b'>\\n'); out.flush()\n"
    )
    result = runner.execute(request(py(code), secrets=["TOKEN"]))
    assert result.outcome == "succeeded"
    assert SECRET not in result.output_tail
    assert SECRET[:8] not in result.output_tail
    assert result.output_tail.count("<[REDACTED:TOKEN]>") == len(SECRET) - 1


def test_secret_at_the_truncation_point_is_redacted_first(
    runner: SubprocessRunner,
) -> None:
    # The cut falls inside the secret: no fragment of it may survive at the front.
    code = "import os, sys; sys.stdout.write(os.environ['TOKEN'] + 'x' * 10)"
    result = runner.execute(request(py(code), secrets=["TOKEN"], output_limit=60))
    assert SECRET[-6:] not in result.output_tail
    assert result.output_tail.endswith("x" * 10)


@given(
    st.lists(
        st.sampled_from([b"ab", b"SECRET", b"SEC", b"RET", b"\n", b"xx", b"TOPSECRET"]),
        max_size=30,
    ),
    st.lists(st.integers(min_value=0, max_value=40), max_size=8),
    st.integers(min_value=0, max_value=60),
)
def test_redacting_tail_equals_redact_then_truncate(
    pieces: list[bytes], cuts: list[int], limit: int
) -> None:
    secrets = {"S": "SECRET", "T": "TOPSECRET", "SHORT": "ab"}
    stream = b"".join(pieces)
    expected = stream.replace(b"TOPSECRET", b"\0T").replace(b"SECRET", b"\0S")
    expected = expected.replace(b"\0T", b"[REDACTED:T]").replace(
        b"\0S", b"[REDACTED:S]"
    )
    expected = expected[-limit:] if limit else b""
    tail = RedactingTail(secrets, limit)
    points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    for start, end in itertools.pairwise(points):
        tail.feed(stream[start:end])
    assert tail.text() == expected.decode()


def test_recording_runner_records_and_replays() -> None:
    scripted = RunResult("failed", "exit-nonzero", 2, "s", 1.0, 2.0, "boom")
    recorder = RecordingRunner.scripted([scripted])
    req = request(("true",))
    assert recorder.execute(req) == scripted
    assert recorder.execute(req).outcome == "succeeded"
    assert recorder.requests == [req, req]


def test_python_placeholder_is_this_interpreter(runner: SubprocessRunner) -> None:
    result = runner.execute(request(py("import sys; print(sys.executable)")))
    assert sys.executable in result.output_tail


def test_results_hold_plain_strings(runner: SubprocessRunner) -> None:
    result = runner.execute(request(("true",)))
    assert type(result.outcome) is str and type(result.reason) is str


def test_refused_directory_secret_is_missing_and_not_read(tmp_path: Path) -> None:
    (tmp_path / "host-file").write_text("not for steps")
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "TOKEN").symlink_to(tmp_path / "host-file")
    runner = SubprocessRunner(DirectorySecrets(secrets_dir), workspace_root=tmp_path)
    result = runner.execute(request(("true",), secrets=["TOKEN"]))
    assert (result.outcome, result.reason) == ("failed", "secret-missing")
    assert "not for steps" not in result.output_tail


def test_concurrent_executions_are_independent(runner: SubprocessRunner) -> None:
    code = "import sys, time; time.sleep(0.2); print('done', sys.argv[1])"
    reqs = [request(py(code, "{params.n}"), params={"n": str(i)}) for i in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(runner.execute, reqs))
    for i, result in enumerate(results):
        assert result.outcome == "succeeded"
        assert f"done {i}\n" in result.output_tail
