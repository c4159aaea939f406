"""Talk to remotes through the git CLI: clone, fetch, and the compare-and-swap push.

libgit2 can push, but only "reject unless fast-forward", which a competitor's
fast-forward satisfies; ``git push --force-with-lease`` makes the receiving side
check the exact old value under its ref lock. See ADR 0002. Using the CLI for
every network call also means credentials, ssh config and proxies behave as they
do for the operator's own git.

Commands are argv lists (never a shell), run without a terminal prompt, with the
caller's repo-local ``GIT_*`` variables removed so nothing redirects them.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from opsvault.errors import GitError, PushRejected, RemoteUnavailable

TIMEOUT_SECONDS = 300.0

# `git rev-parse --local-env-vars`, plus the prompts: none of these may leak in.
_DROPPED_ENV = frozenset(
    {
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_CONFIG",
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT",
        "GIT_OBJECT_DIRECTORY",
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_IMPLICIT_WORK_TREE",
        "GIT_GRAFT_FILE",
        "GIT_INDEX_FILE",
        "GIT_NO_REPLACE_OBJECTS",
        "GIT_REPLACE_REF_BASE",
        "GIT_PREFIX",
        "GIT_INTERNAL_SUPER_PREFIX",
        "GIT_SHALLOW_FILE",
        "GIT_COMMON_DIR",
        "GIT_NAMESPACE",
        "GIT_ASKPASS",
        "SSH_ASKPASS",
    }
)

# Reasons git gives when the ref was not at the expected value: the CAS lost.
_LOST_RACE = (
    "stale info",
    "fetch first",
    "non-fast-forward",
    "already exists",
    "failed to update ref",
    "failed to lock",
    "cannot lock ref",
    "incorrect old value",
)


# What git (LC_ALL=C) says when the remote could not be reached at all: the
# forge is unavailable (exit 75, retry later), not misconfigured.
_UNREACHABLE = re.compile(
    r"could not resolve host|temporary failure in name resolution"
    r"|name or service not known|failed to connect to|connection refused"
    r"|connection timed out|operation timed out|timed out after"
    r"|network is unreachable|no route to host|connection reset"
    r"|ssh: connect to host|returned error: 50[0-9]|rpc failed",
    re.IGNORECASE,
)


def _failure(where: str, args: Sequence[str], stderr: str) -> GitError:
    problem = f"git {args[0]} failed: {_tail(stderr)!r}"
    if _UNREACHABLE.search(stderr):
        return RemoteUnavailable(
            where, f"{problem}; the forge is unreachable, retry later"
        )
    return GitError(where, problem)


@dataclass(frozen=True, slots=True)
class _RefStatus:
    flag: str
    summary: str


def _environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    # *extra* carries what the caller deliberately sets, e.g. credentials as
    # GIT_CONFIG_* (never argv): it goes in after the inherited variables are dropped.
    env.update(extra or {})
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["LC_ALL"] = "C"
    env["LANGUAGE"] = "C"
    return env


def run_git(
    args: Sequence[str],
    where: str,
    git_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """Run ``git [--git-dir=DIR] ARGS``; return stdout, raise GitError on a non-zero exit."""
    result = _run(args, where, git_dir, env)
    if result.returncode != 0:
        raise _failure(where, args, result.stderr)
    return result.stdout


def _run(
    args: Sequence[str],
    where: str,
    git_dir: Path | None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    argv = ["git"]
    if git_dir is not None:
        argv.append(f"--git-dir={git_dir}")
    argv.extend(args)
    try:
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=_environment(env),
            stdin=subprocess.DEVNULL,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RemoteUnavailable(
            where, f"git {args[0]} timed out after {TIMEOUT_SECONDS:.0f}s"
        ) from exc
    except OSError as exc:
        raise GitError(where, f"cannot run git: {exc}") from exc


def clone(url: str, dest: Path, env: Mapping[str, str] | None = None) -> None:
    """Clone *url* into a new work tree at *dest*, without tags."""
    run_git(
        [
            "clone",
            "--quiet",
            "--no-tags",
            "--no-recurse-submodules",
            "--",
            url,
            str(dest),
        ],
        url,
        None,
        env,
    )


def fetch(git_dir: Path, remote: str, env: Mapping[str, str] | None = None) -> None:
    """Force-mirror every branch of *remote* into ``refs/remotes/<remote>/*``, pruning."""
    refspec = f"+refs/heads/*:refs/remotes/{remote}/*"
    run_git(
        [
            "fetch",
            "--quiet",
            "--prune",
            "--no-tags",
            "--no-recurse-submodules",
            "--",
            remote,
            refspec,
        ],
        remote,
        git_dir,
        env,
    )


def fetch_refspec(
    git_dir: Path,
    remote: str,
    refspec: str | Sequence[str],
    env: Mapping[str, str] | None = None,
) -> None:
    """Fetch explicit *refspec* (or several, in one git call) from *remote*.

    One call for many refs: the refs are advertised once and the objects come
    in one pack, so fetching the heads of fifty PRs costs about one fetch. A
    refspec with an empty destination (``refs/pull/7/head:``) fetches the
    objects without creating a ref.
    """
    refspecs = [refspec] if isinstance(refspec, str) else list(refspec)
    run_git(
        [
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-recurse-submodules",
            # Exactly these refspecs: no opportunistic update of remote-tracking
            # refs, so `<src>:` (empty destination) fetches objects and stores no ref.
            "--refmap=",
            "--",
            remote,
            *refspecs,
        ],
        remote,
        git_dir,
        env,
    )


def push_cas(
    git_dir: Path,
    remote: str,
    branch: str,
    new: str,
    expected_old: str | None,
    env: Mapping[str, str] | None = None,
) -> None:
    """Set *remote*'s *branch* to *new* only if it is at *expected_old* (None: absent).

    Raise PushRejected when the remote branch held anything else, GitError for
    every other failure (then the outcome is unknown).
    """
    ref = f"refs/heads/{branch}"
    where = f"{remote}/{branch}"
    lease = f"--force-with-lease={ref}:{expected_old or ''}"
    result = _run(
        [
            "push",
            "--porcelain",
            "--no-verify",
            "--no-recurse-submodules",
            lease,
            "--",
            remote,
            f"{new}:{ref}",
        ],
        where,
        git_dir,
        env,
    )
    status = _ref_status(result.stdout, ref)
    if status is None:
        raise GitError(where, f"push failed: {_tail(result.stderr)!r}")
    if status.flag == "=":
        if expected_old != new:
            # The remote already holds *new*: someone else pushed this very commit.
            # Succeeding here would let two replicas both believe they won.
            raise PushRejected(
                where, f"remote is already at {new!r}, not {expected_old!r}"
            )
        return
    if status.flag in (" ", "+", "*"):
        return  # the remote reported our ref updated: that is the outcome
    if status.flag == "!" and any(reason in status.summary for reason in _LOST_RACE):
        raise PushRejected(
            where,
            f"remote branch is not at {expected_old!r} ({status.summary}); fetch and retry",
        )
    raise GitError(where, f"push refused: {status.summary}: {_tail(result.stderr)!r}")


_STATUS_LINE = re.compile(
    r"^(?P<flag>[ +\-*!=])\t(?P<src>[^\t]*):(?P<dst>[^\t]*)\t(?P<summary>.*)$"
)


def _ref_status(porcelain: str, ref: str) -> _RefStatus | None:
    for line in porcelain.splitlines():
        match = _STATUS_LINE.match(line)
        if match and match["dst"] == ref:
            return _RefStatus(match["flag"], match["summary"])
    return None


def _tail(text: str, lines: int = 5) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
