"""Branch protection on git pushes, the way Forgejo's pre-receive hook applies it.

Every bare repository of the fake gets a real ``hooks/pre-receive`` (a Python
script running ``hook_main``), so a ``git push`` to the repository path is
judged like a push to Forgejo (routers/private/hook_pre_receive.go:230-403):

- a protected branch cannot be deleted or force-pushed;
- a push that changes a file matching ``protected_file_patterns`` is refused,
  **even for a whitelisted pusher** (such files change only through a merged PR);
- otherwise the pusher must be allowed to push (``enable_push``, and with
  ``enable_push_whitelist`` be a listed user or team member), unless every
  changed file matches ``unprotected_file_patterns``.

Git does not say who pushes to a path, so the pusher's login travels in the
``FAKE_FORGEJO_PUSHER`` environment variable (tests set it through the ops
repo's transport environment, as credentials would be). The hook reads the
rules from a JSON file the fake rewrites whenever rules or permissions change.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

# The hooks run this module in a fresh process for every push: it imports only
# the standard library at module level (the model pulls in pygit2).
if TYPE_CHECKING:
    from testing.fake_forgejo.model import BranchProtection, Repo, State

ROOT = Path(__file__).resolve().parents[2]  # where the ``testing`` package lives

PUSHER_ENV = "FAKE_FORGEJO_PUSHER"
CONFIG_FILE = "fake-forgejo-protection.json"
PUSHED_FILE = "fake-forgejo-pushed"  # rewritten by post-receive after every push
ZERO = "0" * 40


@lru_cache(maxsize=256)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """Compile a gobwas glob with separators ``.`` and ``/`` (models/git/protected_branch.go:214).

    ``*`` and ``?`` never cross a separator (so ``vault/*`` does not match
    ``vault/a.toml``); ``**`` crosses anything; ``[...]``, ``[!...]`` and
    ``{a,b}`` work as in gobwas.
    """
    out: list[str] = []
    i = 0
    depth = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                out.append(".*")
                i += 2
                continue
            out.append("[^./]*")
        elif c == "?":
            out.append("[^./]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape(c))
            else:
                inner = pattern[i + 1 : end]
                negate = inner.startswith("!")
                inner = inner[1:] if negate else inner
                escaped = inner.replace("\\", "\\\\")
                out.append("[" + ("^" if negate else "") + escaped + "]")
                i = end
        elif c == "{":
            depth += 1
            out.append("(?:")
        elif c == "}" and depth:
            depth -= 1
            out.append(")")
        elif c == "," and depth:
            out.append("|")
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def split_patterns(text: str) -> list[str]:
    """Return the ``;``-separated, lower-cased globs of a pattern field."""
    return [p.strip() for p in text.lower().split(";") if p.strip()]


def matching(paths: Iterable[str], patterns: Sequence[str]) -> list[str]:
    """Return the lower-cased *paths* that match any of *patterns*."""
    globs = [compile_glob(p) for p in patterns]
    return [
        low for low in (p.lower() for p in paths) if any(g.match(low) for g in globs)
    ]


def push_whitelist(state: State, repo: Repo, rule: BranchProtection) -> list[str]:
    names = set(rule.push_whitelist_usernames)
    wanted = {t.lower() for t in rule.push_whitelist_teams}
    for team in state.teams_of(repo.owner):
        if team.name.lower() in wanted:
            names |= team.members
    return sorted(names)


def write_config(state: State, repo: Repo) -> None:
    """Write what the hook needs: the rules, whitelists and who has code write access."""
    from dataclasses import asdict

    from testing.fake_forgejo.model import Access

    writers = sorted(
        u.login
        for u in state.users.values()
        if not u.is_org and state.access(repo, u.login).rank >= Access.WRITE.rank
    )
    rules = [
        {**asdict(rule), "whitelist": push_whitelist(state, repo, rule)}
        for rule in repo.protections
    ]
    data = {"default_branch": repo.default_branch, "writers": writers, "rules": rules}
    (repo.git.path / CONFIG_FILE).write_text(json.dumps(data))


def install_hook(git_dir: Path) -> None:
    """Install ``pre-receive`` (protection) and ``post-receive`` (tells the fake a push landed).

    Both run once per push: ``pre-receive`` is Python importing only this
    module, ``post-receive`` a shell one-liner counting pushes in PUSHED_FILE.
    """
    hooks = git_dir / "hooks"
    hooks.mkdir(parents=True, exist_ok=True)
    scripts = {
        "pre-receive": (
            f"#!{sys.executable} -S\n"  # no site: a hook starts fast
            f"import sys\n"
            f"sys.path.insert(0, {str(ROOT)!r})\n"
            f"from testing.fake_forgejo.protection import hook_main\n"
            f"raise SystemExit(hook_main())\n"
        ),
        "post-receive": (
            "#!/bin/sh\n"
            f'marker="${{GIT_DIR:-.}}/{PUSHED_FILE}"\n'
            'count=$(cat "$marker" 2>/dev/null)\n'
            'echo $(( ${count:-0} + 1 )) > "$marker"\n'
        ),
    }
    for name, script in scripts.items():
        hook = hooks / name
        hook.write_text(script)
        hook.chmod(0o755)


def push_count(git_dir: Path) -> int:
    """Return how many pushes the post-receive hook has seen."""
    marker = git_dir / PUSHED_FILE
    try:
        return int(marker.read_text() or "0")
    except (OSError, ValueError):
        return 0


def _rule_for(rules: list[dict[str, object]], branch: str) -> dict[str, object] | None:
    plain = [r for r in rules if r["rule_name"] == branch]
    globbed = [
        r
        for r in rules
        if r["rule_name"] != branch
        and fnmatch.fnmatchcase(branch, str(r["rule_name"]))  # BranchProtection.matches
    ]
    found = plain or globbed
    return found[0] if found else None


def changed_paths(git_dir: Path, old: str, new: str) -> list[str]:
    """Return the paths a push from *old* to *new* changes (``git diff --name-only``)."""
    if old == ZERO:
        argv = [
            "git",
            "diff-tree",
            "-r",
            "--name-only",
            "--no-commit-id",
            "--root",
            new,
        ]
    else:
        argv = ["git", "diff", "--name-only", "-z", old, new]
    out = subprocess.run(
        argv, cwd=git_dir, capture_output=True, text=True, check=True
    ).stdout
    sep = "\0" if "-z" in argv else "\n"
    return [p for p in out.split(sep) if p]


def judge(
    config: dict[str, object],
    git_dir: Path,
    pusher: str,
    old: str,
    new: str,
    ref: str,
) -> str | None:
    """Return why the push of *ref* from *old* to *new* by *pusher* is refused, or None."""
    if not ref.startswith("refs/heads/"):
        return None
    branch = ref.removeprefix("refs/heads/")
    writers = config["writers"]
    assert isinstance(writers, list)
    if pusher and pusher not in writers:  # AssertCanWriteCode
        return f"User permission denied for writing to {branch}"
    if branch == config["default_branch"] and new == ZERO:
        return f"branch {branch} is the default branch and cannot be deleted"
    rules = config["rules"]
    assert isinstance(rules, list)
    rule = _rule_for(rules, branch)
    if rule is None:
        return None
    if new == ZERO:
        return f"branch {branch} is protected from deletion"
    if old != ZERO:
        forced = subprocess.run(
            ["git", "rev-list", "--max-count=1", old, f"^{new}"],
            cwd=git_dir,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        if forced.strip():
            return f"branch {branch} is protected from force push"
    paths = changed_paths(git_dir, old, new)
    protected = matching(paths, split_patterns(str(rule["protected_file_patterns"])))
    if protected:
        return f"branch {branch} is protected from changing file {protected[0]}"
    whitelist = rule["whitelist"]
    assert isinstance(whitelist, list)
    can_push = bool(rule["enable_push"]) and (
        pusher in whitelist if rule["enable_push_whitelist"] else pusher in writers
    )
    if can_push:
        return None
    unprotected = split_patterns(str(rule["unprotected_file_patterns"]))
    if unprotected and len(matching(paths, unprotected)) == len(paths):
        return None
    return f"Not allowed to push to protected branch {branch}"


def hook_main() -> int:
    """Run as ``hooks/pre-receive``: read ``<old> <new> <ref>`` lines, refuse with exit 1."""
    git_dir = Path(os.environ.get("GIT_DIR", ".")).resolve()
    config_path = git_dir / CONFIG_FILE
    if not config_path.exists():
        return 0
    config = json.loads(config_path.read_text())
    pusher = os.environ.get(PUSHER_ENV, "")
    for line in sys.stdin.read().splitlines():
        old, new, ref = line.split(" ", 2)
        problem = judge(config, git_dir, pusher, old, new, ref)
        if problem is not None:
            sys.stderr.write(f"Forgejo: {problem}\n")
            return 1
    return 0
