"""I6 — `[runner] sandbox`: "required" refuses to start without bwrap, "auto" warns and says so.

A missing bwrap is simulated the two ways an operator meets it: a PATH without
it, and ``runner.bwrap`` naming a file that does not exist. The dispatcher is a
real process (`vault dispatcher run --once`) on a local-mode ops repo, and a
noop proposal is merged and fired by it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pygit2
import pytest

from tests.cli.conftest import branch_with, template_files
from tests.conftest import init_repo

NOOP = b'formula = "noop"\ncontext = "smoke test"\n'


def vault(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
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


def setup(tmp_path: Path, sandbox: str) -> tuple[Path, Path, dict[str, str]]:
    ops = tmp_path / "ops"
    init_repo(ops, template_files())
    branch_with(ops, "vault/smoke-1", {"vault/actions/smoke-1.toml": NOOP})
    config = tmp_path / "dispatcher.toml"
    config.write_text(
        f'[forge]\npath = "{ops}"\noperator = "alice"\n[runner]\nsandbox = "{sandbox}"\n'
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    return ops, config, env


def missing_bwrap(env: dict[str, str], how: str, tmp_path: Path) -> dict[str, str]:
    if how == "setting":
        return env | {"OPSVAULT_RUNNER_BWRAP": str(tmp_path / "no" / "bwrap")}
    # A PATH holding git (the dispatcher needs it) but no bwrap.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("git",):
        for directory in env["PATH"].split(os.pathsep):
            if (Path(directory) / tool).is_file():
                (bin_dir / tool).symlink_to(Path(directory) / tool)
                break
    return env | {"PATH": str(bin_dir)}


def fired(ops: Path, action_id: str) -> dict[str, Any]:
    repo = pygit2.Repository(str(ops))
    main = repo.branches["main"].peel(pygit2.Commit)
    for year in main.tree / "vault" / "fired":
        if not isinstance(year, pygit2.Tree):
            continue
        for month in year:
            assert isinstance(month, pygit2.Tree)
            name = f"{action_id}.result.json"
            if name in month:
                blob = month / name
                assert isinstance(blob, pygit2.Blob)
                record: dict[str, Any] = json.loads(blob.data)
                return record
    raise AssertionError(f"no fired record for {action_id}")


@pytest.mark.parametrize("how", ["setting", "path"])
def test_required_without_bwrap_refuses_to_start_with_78(
    tmp_path: Path, how: str
) -> None:
    ops, config, env = setup(tmp_path, "required")
    done = vault(
        "dispatcher", "run", "--once", "--config", str(config),
        env=missing_bwrap(env, how, tmp_path),
    )  # fmt: skip
    assert done.returncode == 78, done.stderr
    assert "runner.sandbox: is 'required' but bubblewrap" in done.stderr
    assert "apt-get install bubblewrap" in done.stderr  # the fix is named
    assert "smoke-1" not in done.stdout  # not a single tick ran
    repo = pygit2.Repository(str(ops))
    assert "vault/actions/smoke-1.toml" not in {
        e.name for e in repo.branches["main"].peel(pygit2.Commit).tree
    }


@pytest.mark.parametrize("how", ["setting", "path"])
def test_auto_without_bwrap_warns_at_start_and_status_shows_it(
    tmp_path: Path, how: str
) -> None:
    ops, config, env = setup(tmp_path, "auto")
    done = vault(
        "dispatcher", "run", "--once", "--config", str(config),
        env=missing_bwrap(env, how, tmp_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "WARNING: steps are NOT sandboxed: bubblewrap" in done.stderr
    assert "apt-get install bubblewrap" in done.stderr
    assert fired(ops, "smoke-1")["sandbox"] == "none"

    status = vault("status", "--ops", str(ops), env=env)
    assert status.returncode == 0, status.stderr
    assert "WARNING: dispatcher (pid " in status.stdout
    assert "steps are NOT sandboxed" in status.stdout
    data = json.loads(vault("status", "--ops", str(ops), "--json", env=env).stdout)
    assert data["sandboxed"] is False

    # Without the dispatcher's start-up note (another host, Forgejo mode), the
    # newest executed record says it.
    (ops / ".git" / "opsvault" / "runner.json").unlink()
    status = vault("status", "--ops", str(ops), env=env)
    assert (
        "WARNING: steps are NOT sandboxed: the newest executed action (smoke-1"
        in status.stdout
    )


def test_auto_with_bwrap_sandboxes_and_status_says_so(
    tmp_path: Path, bwrap: str
) -> None:
    ops, config, env = setup(tmp_path, "auto")
    done = vault("dispatcher", "run", "--once", "--config", str(config), env=env)
    assert done.returncode == 0, done.stderr
    assert "NOT sandboxed" not in done.stderr
    record = fired(ops, "smoke-1")
    assert (record["outcome"], record["sandbox"]) == ("succeeded", "bwrap")
    assert "noop: smoke-1: hello from opsvault" in record["output_tail"]
    status = vault("status", "--ops", str(ops), env=env)
    assert "steps run sandboxed by" in status.stdout
    assert "WARNING" not in status.stdout


def test_off_warns_at_start(tmp_path: Path) -> None:
    ops, config, env = setup(tmp_path, "off")
    done = vault("dispatcher", "run", "--once", "--config", str(config), env=env)
    assert done.returncode == 0, done.stderr
    assert "WARNING: steps are NOT sandboxed: runner.sandbox is 'off'" in done.stderr
    assert fired(ops, "smoke-1")["sandbox"] == "none"


def test_runner_settings_from_the_file_and_the_environment(tmp_path: Path) -> None:
    from opsvault.config import InvalidConfigError, load_settings

    ops = tmp_path / "ops"
    init_repo(ops, template_files())
    (tmp_path / "mirror").mkdir()
    config = tmp_path / "d.toml"
    config.write_text(
        '[forge]\npath = "ops"\n[runner]\nsandbox = "required"\nread_only = ["mirror"]\n'
    )
    settings = load_settings({}, config)
    assert settings.runner.sandbox == "required"
    assert settings.runner.read_only == (tmp_path / "mirror",)  # relative to the file
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    env = {
        "OPSVAULT_RUNNER_READ_ONLY": f"{tmp_path / 'a'}:{tmp_path / 'b'}",
        "OPSVAULT_RUNNER_BWRAP": "/opt/bwrap",
    }
    settings = load_settings(env, config)
    assert settings.runner.read_only == (tmp_path / "a", tmp_path / "b")
    assert settings.runner.bwrap == "/opt/bwrap"
    with pytest.raises(InvalidConfigError) as info:
        load_settings(
            {"OPSVAULT_RUNNER_SANDBOX": "maybe", "OPSVAULT_RUNNER_READ_ONLY": "/nope"},
            config,
        )
    text = str(info.value)
    assert "OPSVAULT_RUNNER_SANDBOX: 'maybe' is not one of" in text
    assert (
        "'/nope' is not a directory; create it or remove it from runner.read_only"
        in text
    )
    with pytest.raises(InvalidConfigError, match="OPSVAULT_RUNNER_SANDBOXX: unknown"):
        load_settings({"OPSVAULT_RUNNER_SANDBOXX": "off"}, config)


def test_check_config_says_how_steps_would_run(tmp_path: Path) -> None:
    _, config, env = setup(tmp_path, "auto")
    missing = missing_bwrap(env, "setting", tmp_path)
    done = vault("dispatcher", "check-config", "--config", str(config), env=missing)
    assert done.returncode == 0, done.stderr
    assert "# sandbox: WARNING: steps are NOT sandboxed" in done.stdout
    data = json.loads(
        vault(
            "dispatcher", "check-config", "--config", str(config), "--json", env=missing
        ).stdout
    )
    assert data["sandbox"]["active"] is False
    config.write_text(config.read_text().replace('"auto"', '"required"'))
    done = vault("dispatcher", "check-config", "--config", str(config), env=missing)
    assert done.returncode == 78
    assert "runner.sandbox: is 'required' but bubblewrap" in done.stderr
