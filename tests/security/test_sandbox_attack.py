"""I6 — a step can read only its declared secrets: the attack of issue 8, built for real.

A real dispatcher process (`vault dispatcher run --once`, Forgejo mode against
the fake Forgejo) holds ``OPSVAULT_SECRET_HOOK_TOKEN`` in its environment, a
secrets directory, a forge token file and a state directory. An admin merges an
action whose formula declares no secrets; its one step scans every
``/proc/<pid>/environ``, reads the secrets directory, the token file and the
state directory, and writes outside its workspace. In the sandbox every one of
these fails. Without it (``runner.sandbox = "off"``) the same step reads what
it can, which shows the probe works, and whatever it prints is still redacted
in the record on main, the PR comment and the dispatcher's log.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pygit2
import pytest

from testing.fake_forgejo.protection import PUSHER_ENV
from tests.dispatcher.harness import REPO, Harness

HOOK_TOKEN = "hook-token-value-31337"  # in the dispatcher's environment only
OTHER_KEY = "other-key-from-the-directory-4242"  # a file of secrets.dir
# The probe reads files, scans /proc and tries to write; it prints what it got
# (the values, which redaction must hide) and their digests (which it cannot).
PROBE = r"""
import hashlib, json, os, sys
secrets_dir, secret_file, token_file, state_dir, outside, shown = sys.argv[1:7]
report = {}
def digest(data):
    return hashlib.sha256(data).hexdigest()
def attempt(name, path):
    try:
        if os.path.isdir(path):
            report[name] = "listed " + ",".join(sorted(os.listdir(path)))
            return
        with open(path, "rb") as handle:
            data = handle.read()
        report[name] = "read " + digest(data.strip())
        print(name + " says " + data.decode("utf-8", "replace").strip())
    except OSError as exc:
        report[name] = "denied " + type(exc).__name__
attempt("secrets_dir", secrets_dir)
attempt("secret_file", secret_file)
attempt("token_file", token_file)
attempt("state_dir", state_dir)
leaks = []
for pid in sorted(p for p in os.listdir("/proc") if p.isdigit()):
    try:
        with open("/proc/" + pid + "/environ", "rb") as handle:
            block = handle.read()
    except OSError:
        continue
    for entry in block.split(b"\0"):
        if entry.startswith(b"OPSVAULT_SECRET_HOOK_TOKEN="):
            value = entry.split(b"=", 1)[1]
            leaks.append(digest(value))
            print("environ of " + pid + " says " + value.decode())
report["environ"] = sorted(set(leaks))
report["processes_seen"] = len([p for p in os.listdir("/proc") if p.isdigit()])
try:
    with open(outside, "w") as handle:
        handle.write("written by a step")
    report["write_outside"] = "wrote"
except OSError as exc:
    report["write_outside"] = "denied " + type(exc).__name__
try:
    with open(shown, "w") as handle:
        handle.write("written by a step")
    report["write_read_only"] = "wrote"
except OSError as exc:
    report["write_read_only"] = "denied " + type(exc).__name__
print("PROBE " + json.dumps(report, sort_keys=True))
"""


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Setup:
    vault: Harness
    config: Path
    env: dict[str, str]
    token: str
    state_dir: Path
    outside: Path
    number: int


def probe_formula(setup_paths: list[str]) -> str:
    args = ", ".join(json.dumps(p) for p in setup_paths)
    script = PROBE.replace("{", "{{").replace("}", "}}")  # literal braces
    return (
        'name = "probe"\n'
        'description = "an admin-approved build that declares no secrets"\n'
        'blast_radius = "high"\n'
        "[[steps]]\n"
        'name = "build"\n'
        f'run = ["{{python}}", "-c", {json.dumps(script)}, {args}]\n'
    )


def prepare(vault: Harness, tmp_path: Path, sandbox: str) -> Setup:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "OTHER_KEY").write_text(OTHER_KEY + "\n")
    token = vault.tokens["vault-bot"]
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    state_dir = tmp_path / "state"
    outside = tmp_path / "outside-marker"
    visible = tmp_path / "visible"  # runner.read_only: seen, never written
    visible.mkdir()
    paths = [
        str(secrets),
        str(secrets / "OTHER_KEY"),
        str(token_file),
        str(state_dir),
        str(outside),
        str(visible / "marker"),
    ]
    vault.forge.push(
        REPO,
        "main",
        {"vault/formulas/probe.toml": probe_formula(paths)},
        author="alice",
    )
    number = vault.propose("probe-1", 'formula = "probe"\ncontext = "release"\n')
    vault.merge_as("alice", number)
    config = tmp_path / "dispatcher.toml"
    config.write_text(
        "[forge]\n"
        'kind = "forgejo"\n'
        f'url = "{vault.forge.url}"\n'
        f'repo = "{REPO}"\n'
        f'token_file = "{token_file}"\n'
        f'git_url = "{vault.forge.repo(REPO).git.path}"\n'
        "[dispatcher]\n"
        'identity = "vault-bot"\n'
        f'state_dir = "{state_dir}"\n'
        "[secrets]\n"
        f'dir = "{secrets}"\n'
        "[runner]\n"
        f'sandbox = "{sandbox}"\n'
        f'read_only = ["{visible}"]\n'
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "GIT_CONFIG_NOSYSTEM": "1",
        "OPSVAULT_SECRET_HOOK_TOKEN": HOOK_TOKEN,
        PUSHER_ENV: "vault-bot",  # who pushes, for the fake's pre-receive hook
    }
    return Setup(vault, config, env, token, state_dir, outside, number)


def run_dispatcher(setup: Setup) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from opsvault.cli import main; sys.exit(main())",
            "dispatcher",
            "run",
            "--once",
            "--config",
            str(setup.config),
        ],
        env=setup.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def fired_record(vault: Harness) -> dict[str, Any]:
    path = next(
        p for p in vault.main_files("vault/fired") if p.endswith("probe-1.result.json")
    )
    record: dict[str, Any] = json.loads(vault.main_file(path) or b"{}")
    return record


def probe_report(record: dict[str, Any]) -> dict[str, Any]:
    line = next(
        line for line in record["output_tail"].splitlines() if line.startswith("PROBE ")
    )
    report: dict[str, Any] = json.loads(line.removeprefix("PROBE "))
    return report


def assert_nothing_leaked(setup: Setup, done: subprocess.CompletedProcess[str]) -> None:
    """No secret value in any git object, PR comment, log line or report."""
    values = (HOOK_TOKEN, OTHER_KEY, setup.token)
    store = pygit2.Repository(str(setup.vault.forge.repo(REPO).git.path))
    for oid in store.odb:
        blob = store.odb.read(oid)[1]
        assert all(v.encode() not in blob for v in values)
    comments = setup.vault.client("alice").fetch_comments(setup.number)
    assert comments
    for comment in comments:
        assert all(v not in comment.body for v in values)
    assert all(v not in done.stdout + done.stderr for v in values)


def test_sandboxed_step_reads_no_secret_and_writes_nowhere_else(
    vault: Harness, tmp_path: Path, bwrap: str
) -> None:
    setup = prepare(vault, tmp_path, "required")
    done = run_dispatcher(setup)
    assert done.returncode == 0, done.stderr
    record = fired_record(vault)
    assert (record["outcome"], record["sandbox"]) == ("succeeded", "bwrap"), record
    report = probe_report(record)
    assert report["environ"] == []  # no process shows a secret in its environment
    assert report["secrets_dir"].startswith("denied")
    assert report["secret_file"].startswith("denied")
    assert report["token_file"].startswith("denied")
    assert report["state_dir"].startswith("denied")
    # The write lands in the step's private /tmp (a tmpfs thrown away with it),
    # never on the host.
    assert not setup.outside.exists()
    assert report["write_read_only"] == "denied OSError"  # EROFS
    assert report["processes_seen"] <= 3  # bwrap's init, the step: no dispatcher
    assert_nothing_leaked(setup, done)


def test_without_the_sandbox_the_same_step_reads_them_and_output_is_still_redacted(
    vault: Harness, tmp_path: Path
) -> None:
    setup = prepare(vault, tmp_path, "off")
    done = run_dispatcher(setup)
    assert done.returncode == 0, done.stderr
    assert "steps are NOT sandboxed" in done.stderr
    record = fired_record(vault)
    assert (record["outcome"], record["sandbox"]) == ("succeeded", "none"), record
    report = probe_report(record)
    # What the attack gets without the sandbox: the probe is not blind.
    assert report["secret_file"] == "read " + sha(OTHER_KEY)
    assert report["token_file"] == "read " + sha(setup.token)
    assert report["state_dir"].startswith("listed ")
    assert report["write_outside"] == "wrote" and setup.outside.exists()
    assert report["write_read_only"] == "wrote"
    if os.geteuid() == 0:
        # root reads any process's environ, non-dumpable or not: only the
        # sandbox protects a dispatcher run as root (docs/operating.md).
        assert report["environ"] == [sha(HOOK_TOKEN)]
    else:
        # the dispatcher is non-dumpable: its user cannot read its environ
        assert report["environ"] == []
    # Everything the step printed is redacted, declared or not.
    tail = record["output_tail"]
    assert "secret_file says [REDACTED:OTHER_KEY]" in tail
    assert "token_file says [REDACTED:forge-token]" in tail
    if os.geteuid() == 0:
        assert "says [REDACTED:HOOK_TOKEN]" in tail
    assert_nothing_leaked(setup, done)


# -- local mode: the same probe, approved with `vault approve` on a local ops repo --


def prepare_local(tmp_path: Path, sandbox: str) -> tuple[Path, Path, dict[str, str]]:
    from opsvault.cli.init import create_ops_repo
    from opsvault.git.base import Identity
    from opsvault.git.pygit2_repo import Pygit2OpsRepo

    ops = tmp_path / "ops"
    create_ops_repo(ops, when=0)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "OTHER_KEY").write_text(OTHER_KEY + "\n")
    config = tmp_path / "dispatcher.toml"
    state_dir = ops / ".git" / "opsvault"  # local mode's default
    visible = tmp_path / "visible"
    visible.mkdir()
    paths = [
        str(secrets),
        str(secrets / "OTHER_KEY"),
        str(ops / ".git" / "config"),  # the ops repo: hidden as a whole
        str(state_dir),
        str(tmp_path / "outside-marker"),
        str(visible / "marker"),
    ]
    repo = Pygit2OpsRepo.open(ops)
    admin = Identity("alice", "alice@localhost")
    base = repo.resolve("main")
    main = repo.commit_files(
        base,
        {"vault/formulas/probe.toml": probe_formula(paths).encode()},
        "add the probe formula",
        admin,
    )
    repo.update_ref("refs/heads/main", main, base)
    agent = Identity("dev-agent", "dev-agent@localhost")
    head = repo.commit_files(
        main,
        {"vault/actions/probe-1.toml": b'formula = "probe"\ncontext = "release"\n'},
        "propose probe-1",
        agent,
    )
    repo.update_ref("refs/heads/vault/probe-1", head, None)
    config.write_text(
        f'[forge]\npath = "{ops}"\noperator = "alice"\n'
        f'[secrets]\ndir = "{secrets}"\n'
        f'[runner]\nsandbox = "{sandbox}"\nread_only = ["{visible}"]\n'
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "GIT_CONFIG_NOSYSTEM": "1",
        "OPSVAULT_SECRET_HOOK_TOKEN": HOOK_TOKEN,
    }
    return ops, config, env


def vault_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from opsvault.cli import main; sys.exit(main())",
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def local_record(ops: Path) -> dict[str, Any]:
    repo = pygit2.Repository(str(ops))
    tree = repo.branches["main"].peel(pygit2.Commit).tree
    fired_dir = tree["vault/fired"]
    assert isinstance(fired_dir, pygit2.Tree)
    for year in fired_dir:
        if isinstance(year, pygit2.Tree):
            for month in year:
                assert isinstance(month, pygit2.Tree)
                if "probe-1.result.json" in month:
                    blob = month / "probe-1.result.json"
                    assert isinstance(blob, pygit2.Blob)
                    record: dict[str, Any] = json.loads(blob.data)
                    return record
    raise AssertionError("no fired record for probe-1")


@pytest.mark.parametrize("sandbox", ["required", "off"])
def test_local_mode_same_attack(tmp_path: Path, sandbox: str) -> None:
    if sandbox == "required":
        from tests.security.conftest import working_bwrap

        working_bwrap()
    ops, config, env = prepare_local(tmp_path, sandbox)
    approved = vault_cli(env, "approve", "probe-1", "--ops", str(ops), "--as", "alice")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    done = vault_cli(env, "dispatcher", "run", "--once", "--config", str(config))
    assert done.returncode == 0, done.stderr
    record = local_record(ops)
    report = probe_report(record)
    if sandbox == "required":
        assert record["sandbox"] == "bwrap"
        assert report["environ"] == []
        for target in ("secrets_dir", "secret_file", "token_file", "state_dir"):
            assert report[target].startswith("denied"), (target, report)
        assert report["write_read_only"] == "denied OSError"
        assert not (tmp_path / "outside-marker").exists()
    else:
        assert record["sandbox"] == "none"
        assert report["secret_file"] == "read " + sha(OTHER_KEY)
        assert report["state_dir"].startswith("listed ")
        assert (tmp_path / "outside-marker").exists()
        assert "secret_file says [REDACTED:OTHER_KEY]" in record["output_tail"]
    text = json.dumps(record) + done.stdout + done.stderr
    assert HOOK_TOKEN not in text and OTHER_KEY not in text
