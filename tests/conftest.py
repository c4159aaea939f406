"""Guard rails for every test (isolated git config, no OPSVAULT_* leaking in) and
the shared fixtures: ``fake_forgejo`` (a bare fake Forgejo) and ``vault`` (a
dispatcher wired to one, see tests/dispatcher/harness.py); both fail the test on
any swagger violation the fake recorded.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pygit2
import pytest
from hypothesis import settings

if TYPE_CHECKING:
    from tests.dispatcher.harness import Harness
    from tests.dispatcher.local_harness import LocalHarness

pytest_plugins = ["testing.fake_forgejo.pytest_plugin"]

# Hypothesis draws the same examples on every run (a failure in CI reproduces
# anywhere, and the suite's time does not vary), writes no example database,
# and sets no per-example deadline (the suite runs in parallel on loaded
# machines). HYPOTHESIS_PROFILE=random draws new examples each run instead,
# for a longer look at the properties.
settings.register_profile("suite", derandomize=True, database=None, deadline=None)
settings.register_profile("random", database=None, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))

SIGNATURE = pygit2.Signature("opsvault-test", "test@example.invalid", 0, 0)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite golden files from current output (review the diff afterwards)",
    )


@pytest.fixture(autouse=True)
def _isolated_environment(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    gitconfig = tmp_path_factory.mktemp("gitconfig")
    # No automatic housekeeping after every fetch and push (`git gc --auto`,
    # `git maintenance run --auto`, receive-pack's autogc): processes per git call that
    # test nothing.
    (gitconfig / ".gitconfig").write_text(
        "[gc]\n\tauto = 0\n[maintenance]\n\tauto = false\n[receive]\n\tautogc = false\n"
    )
    for level in (
        pygit2.enums.ConfigLevel.GLOBAL,
        pygit2.enums.ConfigLevel.XDG,
        pygit2.enums.ConfigLevel.SYSTEM,
    ):
        pygit2.settings.search_path[level] = str(gitconfig)
    for name in list(os.environ):
        if name.startswith("OPSVAULT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("HOME", str(gitconfig))
    yield


@pytest.fixture
def vault(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Harness | LocalHarness]:
    """A dispatcher with real git on the fake Forgejo, or, parametrised, on each forge.

    Tests marked ``@both_forges`` (tests/dispatcher/local_harness.py) get it
    once with ``LocalForge`` and once with ``ForgejoClient`` + fake; the others
    get the fake Forgejo only. On the fake, no swagger violation may be recorded.
    """
    from tests.dispatcher.local_harness import open_vault

    with open_vault(getattr(request, "param", "forgejo"), tmp_path) as harness:
        yield harness


@pytest.fixture
def veto(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Harness | LocalHarness]:
    """Like ``vault``, with a medium veto window of 2 h in the policy.

    Parametrised like ``vault`` (``veto_on_both_forges``); the fake Forgejo otherwise.
    """
    from tests.dispatcher.harness import veto_policy
    from tests.dispatcher.local_harness import open_vault

    with open_vault(getattr(request, "param", "forgejo"), tmp_path, veto_policy) as h:
        yield h


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


def init_repo(path: Path, files: Mapping[str, str | bytes]) -> pygit2.Repository:
    """Create a git repo at *path* holding *files* in one commit on ``main``."""
    repo = pygit2.init_repository(str(path), initial_head="main")
    for name, content in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)
    repo.index.add_all()
    repo.index.write()
    tree = repo.index.write_tree()
    repo.create_commit("HEAD", SIGNATURE, SIGNATURE, "initial", tree, [])
    return repo
