"""`vault init DIR`: create an ops repo from the shipped template."""

from __future__ import annotations

from pathlib import Path

import click

from opsvault.cli.options import echo_json, json_option
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
) -> str:
    """Create a git repo at *target* holding the ops-template on ``main``; return the commit id.

    Refuse a non-empty directory unless *force*; even then refuse an existing
    git repository or any file the template would overwrite: nothing is lost.
    """
    from opsvault.app import init_repo

    files = template_files()
    if target.exists() and not target.is_dir():
        raise ConfigError(str(target), "exists and is not a directory")
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
    repo = init_repo(target, DEFAULT_BRANCH)
    commit = repo.commit_files(
        None,
        files,
        "vault init: ops repo from the opsvault template",
        identity,
        when=when,
    )
    repo.update_ref(branch_ref(DEFAULT_BRANCH), commit, None)
    repo.checkout(DEFAULT_BRANCH)
    from opsvault.git.guard_hook import install_local_guard

    install_local_guard(target)  # local mode's guard (docs/local-mode.md, ADR 0018)
    return commit


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--force",
    is_flag=True,
    help="Allow a non-empty DIRECTORY (existing files are never overwritten).",
)
@json_option
def init(directory: Path, force: bool, as_json: bool) -> None:
    """Create an ops repo in DIRECTORY from the opsvault template, as a git repo on `main`.

    Then edit vault/policy.toml (admins, tiers, secrets), check it with
    `vault policy check`, and push the repo to your forge.
    """
    commit = create_ops_repo(directory, force)
    if as_json:
        echo_json({"path": str(directory), "commit": commit})
    else:
        click.echo(f"created ops repo {directory} (main at {commit[:12]})")
        click.echo(
            "next: edit vault/policy.toml, then run `vault policy check` and `vault policy test` there"
        )
