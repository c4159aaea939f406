"""I6 — the built-in formulas work inside the sandbox, and the sandbox holds.

Each test runs real steps through ``SubprocessRunner`` with a real bwrap:
noop, http-hook against a local HTTP server (the network is shared), git-make
fetching a file:// repository from a ``runner.read_only`` directory. Then the
walls: what is hidden stays hidden inside a shown directory, the deadline
still kills everything the step started, and every known secret is redacted
from the tail whether the step declared it or not.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from opsvault.dispatcher.runner import SubprocessRunner
from opsvault.dispatcher.sandbox import Sandbox
from opsvault.dispatcher.secrets import EnvSecrets
from opsvault.messages import ExecutionRequest, StepSpec
from tests.conftest import init_repo
from tests.steps.support import formula_request_for

TOKEN = "hook-token-0123456789abcdef"
MAKEFILE = 'build:\n\t@echo "building $$(cat VERSION) as $$(id -u)"\n'


def runner(
    tmp_path: Path,
    sandbox: Sandbox,
    secrets: dict[str, str] | None = None,
    kill_grace: float = 0.5,
    **kw: object,
) -> SubprocessRunner:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    env = {f"OPSVAULT_SECRET_{k}": v for k, v in (secrets or {}).items()}
    return SubprocessRunner(
        EnvSecrets(env),
        workspace_root=work,
        sandbox=sandbox,
        kill_grace=kill_grace,
        **kw,  # type: ignore[arg-type]
    )


def request(*argvs: list[str], timeout: float = 20.0) -> ExecutionRequest:
    return ExecutionRequest(
        action_id="probe-1",
        formula="probe",
        steps=tuple(StepSpec(f"s{i}", tuple(a)) for i, a in enumerate(argvs)),
        params=(),
        list_params=(),
        secrets=(),
        timeout_seconds=timeout,
    )


def test_noop_runs_in_the_sandbox(tmp_path: Path, bwrap: str) -> None:
    result = runner(tmp_path, Sandbox(bwrap)).execute(formula_request_for("noop", {}))
    assert (result.outcome, result.sandbox) == ("succeeded", "bwrap"), result
    assert "noop: noop-test-1: hello from opsvault" in result.output_tail


def test_http_hook_reaches_the_network_from_the_sandbox(
    tmp_path: Path, bwrap: str, httpserver: HTTPServer
) -> None:
    httpserver.expect_oneshot_request(
        "/hooks/deploy", method="POST", headers={"Authorization": f"Bearer {TOKEN}"}
    ).respond_with_data(f"queued; you sent {TOKEN}", status=202)
    hook = formula_request_for(
        "http-hook", {"url": httpserver.url_for("/hooks/deploy")}
    )
    result = runner(tmp_path, Sandbox(bwrap), {"HOOK_TOKEN": TOKEN}).execute(hook)
    httpserver.check_assertions()
    assert (result.outcome, result.sandbox) == ("succeeded", "bwrap"), result
    assert "you sent [REDACTED:HOOK_TOKEN]" in result.output_tail


def test_git_make_fetches_from_a_read_only_directory(
    tmp_path: Path, bwrap: str
) -> None:
    source = tmp_path / "mirror" / "app"
    init_repo(source, {"Makefile": MAKEFILE, "VERSION": "2.5\n"})
    params = {"repo": f"file://{source}", "ref": "main", "target": "build"}
    sandbox = Sandbox(bwrap, read_only=(tmp_path / "mirror",))
    result = runner(tmp_path, sandbox).execute(formula_request_for("git-make", params))
    assert (result.outcome, result.sandbox) == ("succeeded", "bwrap"), (
        result.output_tail
    )
    assert "building 2.5" in result.output_tail
    # Without the read_only entry the repository does not exist for the step.
    bare = runner(tmp_path, Sandbox(bwrap)).execute(
        formula_request_for("git-make", params)
    )
    assert (bare.outcome, bare.failed_step) == ("failed", "fetch")
    assert list((tmp_path / "work").iterdir()) == []  # workspaces removed


def test_hidden_paths_stay_hidden_inside_a_shown_directory(
    tmp_path: Path, bwrap: str
) -> None:
    shared = tmp_path / "shared"
    (shared / "state").mkdir(parents=True)
    (shared / "state" / "cache.json").write_text("private")
    (shared / "token").write_text("forge-token-file")
    (shared / "public.txt").write_text("hello")
    sandbox = Sandbox(
        bwrap, read_only=(shared,), hidden=(shared / "state", shared / "token")
    )
    script = (
        "import os, sys\n"
        "d = sys.argv[1]\n"
        "print('public', open(d + '/public.txt').read())\n"
        "print('state', os.listdir(d + '/state'))\n"
        "try:\n"
        "    print('token', repr(open(d + '/token').read()))\n"
        "except OSError:\n"
        "    print('token unreadable')\n"
    )
    result = runner(tmp_path, sandbox).execute(
        request([sys.executable, "-c", script, str(shared)])
    )
    assert result.outcome == "succeeded", result.output_tail
    assert "public hello" in result.output_tail
    assert "state []" in result.output_tail
    assert "forge-token-file" not in result.output_tail
    assert "token unreadable" in result.output_tail or "token ''" in result.output_tail


def test_the_deadline_kills_everything_the_sandboxed_step_started(
    tmp_path: Path, bwrap: str
) -> None:
    marker = "opsvault-sandbox-sleeper-4711"
    started = time.monotonic()
    result = runner(tmp_path, Sandbox(bwrap)).execute(
        request(
            ["/bin/sh", "-c", f"(exec -a {marker} sleep 300) & sleep 300"],
            timeout=1.0,
        )
    )
    assert (result.outcome, result.reason) == ("timeout", "timeout")
    assert time.monotonic() - started < 10
    time.sleep(0.3)
    leftovers = [
        p.name
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and _cmdline(p).startswith(marker)
    ]
    assert leftovers == []


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@pytest.mark.parametrize("sandboxed", [True, False])
def test_every_known_secret_is_redacted_declared_or_not(
    tmp_path: Path, bwrap: str, sandboxed: bool
) -> None:
    known = {"UNDECLARED": "undeclared-value-1234", "forge-token": "forge-token-5678"}
    step = [
        sys.executable,
        "-c",
        "print('leak undeclared-value-1234 forge-token-5678')",
    ]
    result = runner(
        tmp_path,
        Sandbox(bwrap) if sandboxed else None,  # type: ignore[arg-type]
        redactions=lambda: known,
    ).execute(request(step))
    assert result.outcome == "succeeded"
    assert "leak [REDACTED:UNDECLARED] [REDACTED:forge-token]" in result.output_tail
    assert result.sandbox == ("bwrap" if sandboxed else "none")


def test_a_sandboxed_step_gets_sigterm_and_its_grace_at_the_deadline(
    tmp_path: Path, bwrap: str
) -> None:
    # SIGTERM to bwrap itself would end the namespace at once; the step must get
    # the signal, and the grace period to clean up, as outside the sandbox.
    step = [
        "/bin/sh",
        "-c",
        "trap 'sleep 0.5; echo cleaning up; exit 7' TERM; sleep 60 & wait",
    ]
    sandboxed = runner(tmp_path, Sandbox(bwrap), kill_grace=5.0)
    result = sandboxed.execute(request(step, timeout=1.0))
    assert (result.outcome, result.reason) == ("timeout", "timeout")
    assert "cleaning up" in result.output_tail


def test_sandbox_for_hides_everything_the_settings_name(
    tmp_path: Path, bwrap: str
) -> None:
    from opsvault.config import load_settings
    from opsvault.dispatcher.sandbox import sandbox_for
    from tests.cli.conftest import template_files

    ops = tmp_path / "ops"
    init_repo(ops, template_files())
    (tmp_path / "secrets").mkdir()
    config = tmp_path / "d.toml"
    config.write_text(f'[forge]\npath = "{ops}"\n[secrets]\ndir = "secrets"\n')
    environ = {"PATH": "/usr/bin:/bin", "CREDENTIALS_DIRECTORY": "/run/credentials/x"}
    status = sandbox_for(load_settings({}, config), environ)
    assert status.active and status.sandbox is not None
    assert set(status.sandbox.hidden) == {
        ops / ".git" / "opsvault",  # the local-mode state dir
        tmp_path / "secrets",
        ops,
        config,
        Path("/run/credentials/x"),
    }


def test_a_sandboxed_step_cannot_change_kernel_settings(
    tmp_path: Path, bwrap: str
) -> None:
    # Sysctl writes are checked against the euid only: without the sandbox's
    # read-only /proc a step of a root dispatcher could set core_pattern (host
    # code execution). The probe writes a setting's own value back: a no-op.
    script = (
        "path = '/proc/sys/kernel/printk_ratelimit'\n"
        "value = open(path).read()\n"
        "try:\n"
        "    open(path, 'w').write(value)\n"
        "    print('sysctl written')\n"
        "except OSError as exc:\n"
        "    print('sysctl denied', exc.errno)\n"
    )
    result = runner(tmp_path, Sandbox(bwrap)).execute(
        request([sys.executable, "-c", script])
    )
    assert result.outcome == "succeeded", result.output_tail
    assert "sysctl denied" in result.output_tail
