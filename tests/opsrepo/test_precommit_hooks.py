"""The pre-commit hooks of .pre-commit-hooks.yaml, run by the real pre-commit in an ops repo.

Why the fast test rewrites ``language: python`` to ``system``: pre-commit would
otherwise build a virtualenv and pip-install opsvault from an index (about 30 s
and the network) on every fresh ``PRE_COMMIT_HOME``. Everything that is ours —
ids, entries, file patterns, ``pass_filenames``, exit codes — is taken from the
manifest unchanged and run by the real pre-commit from a real ``git commit``; the
install path (``pip install .`` of this project) is what the packaging test
checks, and ``test_hooks_install_from_the_project`` runs it for real in CI
(docs/adr/0017-ops-repo-ci-and-freeze-windows.md).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.opsrepo.conftest import BIN, ROOT, run

MANIFEST = ROOT / ".pre-commit-hooks.yaml"
HOOK_IDS = (
    "vault-validate",
    "vault-policy-check",
    "vault-policy-test",
    "vault-plan-check",
)
# Read at import: the autouse fixture clears OPSVAULT_* and points HOME at a temp dir.
USER_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
INSTALL_TEST = (
    os.environ.get("CI", "").lower() == "true"
    or os.environ.get("OPSVAULT_HOOK_INSTALL_TEST") == "1"
)

NOOP_ACTION = 'formula = "noop"\ncontext = "smoke test before the change window"\n'
NOOP_CASE = """\
description = "noop stays low"

[action]
formula = "noop"
context = "a case kept with the proposal"

[expect]
tier = "low"
"""


def manifest() -> list[dict[str, Any]]:
    hooks: list[dict[str, Any]] = yaml.safe_load(MANIFEST.read_text())
    return hooks


def test_manifest_is_valid_for_pre_commit_and_names_each_check(tmp_path: Path) -> None:
    done = run([str(BIN / "pre-commit"), "validate-manifest", str(MANIFEST)], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert tuple(h["id"] for h in manifest()) == HOOK_IDS
    assert {h["language"] for h in manifest()} == {"python"}


def _local_config() -> str:
    """The manifest's hooks as a `repo: local` config, run by the `vault` on PATH."""
    hooks = [{**hook, "language": "system"} for hook in manifest()]
    text: str = yaml.safe_dump({"repos": [{"repo": "local", "hooks": hooks}]})
    return text


def _commit(ops: Path, message: str, env: dict[str, str]) -> tuple[int, str]:
    run(["git", "add", "-A"], ops, env)
    done = run(["git", "commit", "-m", message], ops, env)
    return done.returncode, done.stdout + done.stderr


def _head(ops: Path) -> str:
    return run(["git", "rev-parse", "HEAD"], ops).stdout.strip()


def _pass_and_fail(ops: Path, env: dict[str, str]) -> None:
    """A valid proposal commits with every hook run; a broken policy does not commit."""
    installed = run([str(BIN / "pre-commit"), "install"], ops, env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    run(["git", "checkout", "-q", "-b", "vault/noop-smoke-20261202-1"], ops, env)
    (ops / "vault/actions/noop-smoke-20261202-1.toml").write_text(NOOP_ACTION)
    (ops / "vault/policy-tests/noop-stays-low.toml").write_text(NOOP_CASE)
    for name in ("prerequisites.md", "vault/policy.toml"):
        (ops / name).write_text((ops / name).read_text() + "\n# reviewed\n")
    code, output = _commit(ops, "propose noop-smoke-20261202-1", env)
    assert code == 0, output
    for hook in manifest():
        assert re.search(rf"^{re.escape(hook['name'])}\.+Passed$", output, re.M), output

    before = _head(ops)
    policy = ops / "vault/policy.toml"
    policy.write_text(
        policy.read_text().replace('merge = "admin"', 'merge = "auto"', 1)
    )
    code, output = _commit(ops, "let the dispatcher merge high", env)
    assert code != 0, output
    assert "Failed" in output, output
    assert "vault/policy.toml: $.tiers.high.merge" in output, output
    assert _head(ops) == before  # refused: nothing was committed


def test_hooks_pass_a_good_commit_and_stop_a_bad_one(
    ops_repo: Path, tmp_path: Path
) -> None:
    (ops_repo / ".pre-commit-config.yaml").write_text(_local_config())
    env = {"PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    _pass_and_fail(ops_repo, env)


@pytest.fixture(scope="session")
def install_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One PRE_COMMIT_HOME per session: the hook venv is built once."""
    return tmp_path_factory.mktemp("pre-commit-home")


@pytest.mark.skipif(
    not INSTALL_TEST, reason="runs in CI (CI=true) or with OPSVAULT_HOOK_INSTALL_TEST=1"
)
def test_hooks_install_from_the_project(
    ops_repo: Path, tmp_path: Path, install_home: Path
) -> None:
    """As an ops repo uses them: `repo:` this project, pre-commit builds the venv (pip, index).

    Slow (about 30 s) and needs an index, so it runs in CI (``CI=true``, which
    `.ci/run` sets; there a failure to install is a failure, never a skip) or
    with OPSVAULT_HOOK_INSTALL_TEST=1.
    """
    head = run(["git", "rev-parse", "HEAD"], ROOT)
    assert head.returncode == 0, f"{ROOT} is not a git checkout: {head.stderr}"
    config = {
        "repos": [
            {
                "repo": ROOT.as_uri(),
                "rev": head.stdout.strip(),
                "hooks": [{"id": hook_id} for hook_id in HOOK_IDS],
            }
        ]
    }
    (ops_repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config))
    env = {
        "PRE_COMMIT_HOME": str(install_home),
        "PIP_CACHE_DIR": str(USER_CACHE / "pip"),
    }
    _pass_and_fail(ops_repo, env)


def test_the_operating_doc_config_uses_every_hook_of_the_manifest() -> None:
    text = (ROOT / "docs" / "operating.md").read_text()
    section = text[text.index("## The ops repo's own CI") :]
    (block,) = re.findall(r"```yaml\n(.*?)```", section, re.S)[:1]
    (repo,) = yaml.safe_load(block)["repos"]
    assert tuple(h["id"] for h in repo["hooks"]) == HOOK_IDS
    assert {"repo", "rev", "hooks"} == set(repo)
