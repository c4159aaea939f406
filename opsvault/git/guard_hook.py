"""Local mode's guard on the ops repository itself: its pre-receive hook and git config.

In local mode no forge stands between a proposer and ``main``: whoever can
push into the ops repository could move any branch. opsvault therefore
installs a ``pre-receive`` hook that lets a push create, move or delete only
proposal branches (``vault/*``, ``plan/*``), and sets ``receive.fsckObjects``
so malformed objects are refused at the door. The dispatcher and ``vault
approve`` write ``main`` through libgit2, which runs no hook, so the hook
stops only pushes. ``inspect_local_repo`` reports what of this no longer holds
(the guard self-check, ``opsvault/dispatcher/guard.py``, ADR 0018);
``install_local_guard`` puts it (back) in place (``vault init``, ``vault
doctor --install-hook``).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import pygit2

from opsvault.atomic_write import write_atomic
from opsvault.errors import GitError
from opsvault.layout import PROPOSAL_PREFIXES

HOOK_NAME = "pre-receive"
_PATTERNS = "|".join(f"refs/heads/{prefix}*" for prefix in PROPOSAL_PREFIXES)
HOOK_SCRIPT = f"""#!/bin/sh
# opsvault guard hook (docs/local-mode.md "Pushes into the ops repo").
# A push may create, move or delete proposal branches only; the base branch
# and every other ref change through the dispatcher and `vault approve`.
# `vault doctor` reports this file missing or changed.
status=0
while read -r old new ref; do
  case "$ref" in
    {_PATTERNS}) ;;
    *) echo "opsvault: $ref may not be pushed here: only proposal branches" >&2
       status=1 ;;
  esac
done
exit $status
""".encode()
# key -> the value the guard needs (compared case-insensitively, git booleans)
REQUIRED_CONFIG = {"receive.fsckObjects": "true"}
HOOKS_PATH = "core.hooksPath"


@dataclass(frozen=True, slots=True)
class LocalProblem:
    """One thing about the local ops repository the guard relies on that does not hold."""

    check: str  # "hook", "config" or "permissions"
    problem: str
    fix: str


def _open(path: Path) -> pygit2.Repository:
    try:
        return pygit2.Repository(str(path), pygit2.enums.RepositoryOpenFlag.NO_SEARCH)
    except (pygit2.GitError, KeyError) as exc:
        raise GitError(str(path), f"not a git repository: {exc}") from exc


def install_local_guard(path: Path) -> Path:
    """Write the pre-receive hook and the config the guard needs into the repo at *path*.

    Return the hook's path. ``core.hooksPath`` is removed, so git runs the
    hook from the repository's own hooks directory.
    """
    repo = _open(path)
    hooks = Path(repo.path) / "hooks"
    hooks.mkdir(exist_ok=True)
    hook = hooks / HOOK_NAME
    write_atomic(hook, HOOK_SCRIPT, mode=0o755)
    hook.chmod(0o755)  # whatever the umask: git runs only executable hooks
    try:
        config = repo.config
        for key, value in REQUIRED_CONFIG.items():
            config[key] = value
        if HOOKS_PATH in config:
            del config[HOOKS_PATH]
    except pygit2.GitError as exc:
        raise GitError(str(path), f"git config not written: {exc}") from exc
    return hook


def inspect_local_repo(path: Path) -> list[LocalProblem]:
    """Return what of the local guard no longer holds in the ops repo at *path* ([]: all of it)."""
    repo = _open(path)
    git_dir = Path(repo.path)
    fix = f"run `vault doctor --install-hook --ops {path}`"
    problems: list[LocalProblem] = []
    config = repo.config
    hooks_path = str(config[HOOKS_PATH]) if HOOKS_PATH in config else None
    if hooks_path is not None:
        problems.append(
            LocalProblem(
                "config",
                f"{HOOKS_PATH} is {hooks_path!r}: git runs hooks from there, "
                f"not the guard hook in {git_dir / 'hooks'}",
                f"{fix} (it removes {HOOKS_PATH})",
            )
        )
    for key, wanted in REQUIRED_CONFIG.items():
        value = str(config[key]) if key in config else None
        if value is None or value.lower() not in (wanted, "yes", "on", "1"):
            problems.append(
                LocalProblem(
                    "config",
                    f"{key} is {value!r}, not {wanted!r}: malformed objects can be pushed",
                    fix,
                )
            )
    hook = git_dir / "hooks" / HOOK_NAME
    if not hook.is_file() or hook.is_symlink():
        problems.append(
            LocalProblem(
                "hook",
                f"{hook} is missing: a push into the repository may move the base branch or any other",
                fix,
            )
        )
    else:
        if hook.read_bytes() != HOOK_SCRIPT:
            problems.append(
                LocalProblem(
                    "hook",
                    f"{hook} is not opsvault's guard hook (it was changed)",
                    fix,
                )
            )
        if not os.access(hook, os.X_OK):
            problems.append(
                LocalProblem("hook", f"{hook} is not executable: git skips it", fix)
            )
    problems.extend(_permissions(path, git_dir, hook))
    return problems


def _permissions(path: Path, git_dir: Path, hook: Path) -> list[LocalProblem]:
    """Everyone-writable places let any local user move main or replace the hook."""
    found = []
    for place in (
        path,
        git_dir,
        git_dir / "config",
        git_dir / "hooks",
        hook,
        git_dir / "refs",
        git_dir / "refs" / "heads",
        git_dir / "opsvault",
    ):
        try:
            mode = place.lstat().st_mode
        except FileNotFoundError:
            continue
        if mode & stat.S_IWOTH:
            found.append(
                LocalProblem(
                    "permissions",
                    f"{place} is writable by every user (mode {stat.filemode(mode)})",
                    f"chmod o-w {place} (docs/local-mode.md: the ops repo is the "
                    "operator's and the dispatcher's only)",
                )
            )
    return found
