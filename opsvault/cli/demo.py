"""`vault demo`: the quick start's main job on the embedded default (local mode, no forge).

It creates a local ops repo from the template, proposes the sample actions
shipped with opsvault as branches ``vault/<id>`` (exactly what an agent does in
local mode), and classifies each proposal the way the dispatcher will: the
change the branch brings, against the policy and formulas of ``main``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import click

from opsvault.cli.options import echo_json, json_option
from opsvault.git.base import Identity

PROPOSER = Identity("demo-agent", "demo-agent@localhost")


def propose(repo: Any, action_id: str, content: bytes, when: int | None = None) -> str:
    """Commit *content* as vault/actions/<id>.toml on a new branch vault/<id> off main; return its commit."""
    main = repo.resolve("main")
    commit = repo.commit_files(
        main,
        {f"vault/actions/{action_id}.toml": content},
        f"propose {action_id}",
        PROPOSER,
        when=when,
    )
    repo.update_ref(f"refs/heads/vault/{action_id}", commit, None)
    return str(commit)


def run_demo(directory: Path) -> list[dict[str, Any]]:
    """Create the demo ops repo in *directory*, propose every sample, and return each verdict."""
    from opsvault._resources import data_dir
    from opsvault.cli.init import create_ops_repo
    from opsvault.cli.vault import _classify_change
    from opsvault.git.local import Pygit2OpsRepo
    from opsvault.report import change_verdict_data

    create_ops_repo(directory)
    repo = Pygit2OpsRepo.open(directory)
    results = []
    for sample in sorted(data_dir("examples").joinpath("proposals").glob("*.toml")):
        action_id = sample.stem
        propose(repo, action_id, sample.read_bytes())
        verdict = _classify_change(directory, "main", f"vault/{action_id}")
        results.append({"proposal": action_id, **change_verdict_data(verdict)})
    return results


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to create the demo ops repo (default: a new temporary directory).",
)
@json_option
def demo(directory: Path | None, as_json: bool) -> None:
    """Run the local-mode demo: scaffold an ops repo, propose the samples, classify them.

    Nothing leaves this machine: the ops repo is a local git repository and
    each proposal is a branch `vault/<id>`.
    """
    target = directory or Path(tempfile.mkdtemp(prefix="opsvault-demo-"))
    results = run_demo(target)
    if as_json:
        echo_json({"ops_repo": str(target), "proposals": results})
        return
    click.echo(f"ops repo: {target} (policy: vault/policy.toml on main)\n")
    for r in results:
        headline = (
            f"REFUSED (would be {r['tier']})" if r["refused"] else r["tier"].upper()
        )
        flags = "  [admin only: built-in floor]" if r["protected"] else ""
        click.echo(f"proposal vault/{r['proposal']}: {headline}{flags}")
        for f in r["files"]:
            for reason in f["reasons"]:
                click.echo(f"    {reason['tier']}: {reason['detail']}")
            for p in f["problems"]:
                click.echo(f"    problem: {f['path']}: {p['path']}: {p['message']}")
    click.echo(
        "\nlow: the dispatcher merges and fires it; medium: a reviewer merges; high: an admin merges."
    )
    click.echo(
        f"try: vault classify --ops {target} --base main --head vault/<id> --explain"
    )
