"""`vault init DIR`: create an ops repo from the shipped template."""

from __future__ import annotations

from pathlib import Path

import click

from opsvault.cli.envelope import emit
from opsvault.cli.options import json_option
from opsvault.errors import ConfigError
from opsvault.git.base import Identity
from opsvault.layout import DEFAULT_BRANCH, branch_ref

INIT_IDENTITY = Identity("opsvault", "opsvault@localhost")


def template_files() -> dict[str, bytes]:
    """Return the ops-template's files by repo-relative path."""
    from opsvault._resources import data_dir

    root = data_dir("ops-template")
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def create_ops_repo(
    target: Path,
    force: bool = False,
    identity: Identity = INIT_IDENTITY,
    when: int | None = None,
    branch: str = DEFAULT_BRANCH,
) -> str:
    """Create a git repo at *target* holding the ops-template on *branch*; return the commit id.

    Refuse a non-empty directory unless *force*; even then refuse an existing
    git repository or any file the template would overwrite: nothing is lost.
    Refuse a *target* inside an existing ops repo unless *force* (a repository
    nested in another is almost always a mistaken `cd`). A base branch other
    than ``main`` is written to ``git config opsvault.branch`` so that the
    local-mode commands find it.
    """
    from opsvault.app import BRANCH_CONFIG, init_repo
    from opsvault.snapshot import find_ops_root

    check_branch(branch)
    files = template_files()
    if target.exists() and not target.is_dir():
        raise ConfigError(str(target), "exists and is not a directory")
    outer = find_ops_root(target.resolve().parent)
    if outer is not None and not force:
        raise ConfigError(
            str(target),
            f"is inside the ops repo {str(outer)!r}; vault init would nest a new "
            "repository in it",
            "choose a directory outside it (e.g. `vault init ../ops2`), "
            "or pass --force to nest one anyway",
        )
    if target.is_dir() and any(target.iterdir()):
        if not force:
            raise ConfigError(
                str(target),
                "is not empty",
                "choose an empty directory or pass --force to add the template",
            )
        if (target / ".git").exists():
            raise ConfigError(
                str(target),
                "is already a git repository",
                "vault init creates a new one; choose another directory",
            )
        clashes = sorted(path for path in files if (target / path).exists())
        if clashes:
            raise ConfigError(
                str(target),
                f"would overwrite {', '.join(repr(c) for c in clashes)}",
                "move them away first",
            )
    target.mkdir(parents=True, exist_ok=True)
    repo = init_repo(target, branch)
    commit = repo.commit_files(
        None,
        files,
        "vault init: ops repo from the opsvault template",
        identity,
        when=when,
    )
    repo.update_ref(branch_ref(branch), commit, None)
    repo.checkout(branch)
    if branch != DEFAULT_BRANCH:
        from opsvault.git.transport import run_git

        run_git(["config", BRANCH_CONFIG, branch], str(target), target / ".git")
    from opsvault.git.guard_hook import install_local_guard

    install_local_guard(target)  # local mode's guard (docs/local-mode.md, ADR 0018)
    return commit


def check_branch(branch: str) -> None:
    """A base branch is a plain branch name outside the proposal prefixes (as ``[forge] branch``)."""
    from opsvault.errors import GitError
    from opsvault.git.base import check_repo_path
    from opsvault.layout import PROPOSAL_PREFIXES

    try:
        check_repo_path(branch)
    except GitError as exc:
        raise click.BadParameter(
            f"{branch!r} is not a branch name: {exc.problem}", param_hint="--branch"
        ) from exc
    if branch.startswith(PROPOSAL_PREFIXES) or branch.startswith("-"):
        raise click.BadParameter(
            f"{branch!r} is a proposal branch name (proposers push there); "
            f"pick a base branch outside {' and '.join(PROPOSAL_PREFIXES)}",
            param_hint="--branch",
        )


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--force",
    is_flag=True,
    help="Allow a non-empty DIRECTORY (existing files are never overwritten), "
    "or one inside another ops repo.",
)
@click.option(
    "--branch",
    default=DEFAULT_BRANCH,
    show_default=True,
    help="The base branch ([forge] branch of the dispatcher); other than main "
    "it is also written to `git config opsvault.branch`.",
)
@json_option
def init(directory: Path, force: bool, branch: str, as_json: bool) -> None:
    """Create an ops repo in DIRECTORY from the opsvault template, as a git repo on `main`.

    Then edit vault/policy.toml (admins, tiers, secrets), check it with
    `vault policy check`, and push the repo to your forge. With --branch the
    base branch has another name; set the same `[forge] branch` in the
    dispatcher's configuration.

    \b
    Examples:
      vault init ~/ops
      vault init ~/ops --branch master
    """
    commit = create_ops_repo(directory, force, branch=branch)
    if as_json:
        emit({"path": str(directory), "commit": commit, "branch": branch})
    else:
        click.echo(f"created ops repo {directory} ({branch} at {commit[:12]})")
        click.echo(
            "next: edit vault/policy.toml, then run `vault policy check` and `vault policy test` there"
        )
