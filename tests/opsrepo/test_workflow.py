"""ops-template/.forgejo/workflows/vault.yml: it parses, names only real commands and flags, and runs.

The commands are checked against the click command tree of ``opsvault.cli``, so
renaming a flag without updating the workflow fails here. The check steps are
then run with bash in a clone of a real ops repo as Forgejo's checkout leaves it
(``origin/*`` refs, the PR head detached), with the ``${{ }}`` values a
pull_request event gives; checkout and the pip install are the runner's part.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import click
import yaml

from opsvault.cli import cli
from tests.opsrepo.conftest import ROOT, run

WORKFLOW = ROOT / "ops-template" / ".forgejo" / "workflows" / "vault.yml"
RUNNER_STEPS = {"install opsvault"}  # the runner's part: pip from an index


def workflow() -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    return data


def steps() -> list[dict[str, Any]]:
    (job,) = workflow()["jobs"].values()
    found: list[dict[str, Any]] = job["steps"]
    return found


def vault_commands(script: str) -> list[list[str]]:
    """Every `vault ...` invocation in a shell script, as words."""
    commands = []
    for line in script.splitlines():
        for part in re.split(r"&&|\|\||[|;]", line):
            words = shlex.split(part, comments=True)
            if words and words[0] == "vault":
                commands.append(words[1:])
    return commands


def unknown_words(words: list[str]) -> list[str]:
    """Return the subcommands and flags in *words* the CLI does not have."""
    command: click.Command = cli
    ctx = click.Context(cli)
    rest = list(words)
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        sub = command.get_command(ctx, rest[0])
        if sub is None:
            return [rest[0]]
        command, ctx, rest = sub, click.Context(sub, parent=ctx), rest[1:]
    if isinstance(command, click.Group):
        return ["<no subcommand>"]
    flags = {o for p in command.get_params(ctx) for o in (*p.opts, *p.secondary_opts)}
    return [
        w.split("=", 1)[0]
        for w in rest
        if w.startswith("-") and w != "-" and w.split("=", 1)[0] not in flags
    ]


def test_workflow_runs_on_pull_requests_and_checks_out_history() -> None:
    data = workflow()
    # YAML 1.1 reads a bare `on` key as True; Forgejo reads it as "on".
    triggers: dict[str, Any] = data.get("on", data.get(True)) or {}
    assert "pull_request" in triggers
    (checkout,) = [s for s in steps() if "uses" in s]
    assert "/actions/checkout@" in checkout["uses"]
    assert checkout["with"]["fetch-depth"] == 0


def test_workflow_names_only_commands_and_flags_that_exist() -> None:
    commands = [c for s in steps() for c in vault_commands(s.get("run", ""))]
    named = {" ".join(w for w in c if not w.startswith("-"))[:40] for c in commands}
    assert len(commands) >= 6, named
    assert {tuple(c[:2]) for c in commands} >= {
        ("classify", "--ops"),
        ("validate", "--ops"),
        ("policy", "check"),
        ("policy", "test"),
        ("policy", "diff"),
        ("plan", "--ops"),
    }
    assert any("--base" in c and "--head" in c for c in commands)
    for words in commands:
        assert unknown_words(words) == [], words


def test_the_checker_catches_a_flag_or_command_that_does_not_exist() -> None:
    assert unknown_words(["policy", "test", "--ops", ".", "--nope"]) == ["--nope"]
    assert unknown_words(["policy", "tset"]) == ["tset"]
    assert unknown_words(["classify", "--base=main", "--head", "x"]) == []
    assert unknown_words(["policy"]) == ["<no subcommand>"]
    assert unknown_words(["policy", "diff", "-", "new.toml"]) == []  # stdin


def test_no_proposer_value_is_expanded_inside_a_script() -> None:
    for step in steps():
        assert "${{" not in step.get("run", ""), step["name"]


def _pull_request_checkout(ops: Path, tmp_path: Path) -> tuple[Path, str]:
    """A proposal branch in *ops*, cloned and checked out at its head as CI sees it."""
    run(["git", "checkout", "-q", "-b", "vault/noop-smoke-20261202-1"], ops)
    (ops / "vault/actions/noop-smoke-20261202-1.toml").write_text(
        'formula = "noop"\ncontext = "smoke test from CI"\n'
    )
    run(["git", "add", "-A"], ops)
    assert run(["git", "commit", "-q", "-m", "propose"], ops).returncode == 0
    head = run(["git", "rev-parse", "HEAD"], ops).stdout.strip()
    run(["git", "checkout", "-q", "main"], ops)
    work = tmp_path / "work"
    assert (
        run(
            ["git", "clone", "-q", "--no-checkout", str(ops), str(work)], tmp_path
        ).returncode
        == 0
    )
    run(["git", "checkout", "-q", "--detach", head], work)
    run(["git", "branch", "-q", "-D", "main"], work)  # checkout leaves origin/* only
    return work, head


def test_the_check_steps_pass_on_a_clean_proposal(
    ops_repo: Path, tmp_path: Path
) -> None:
    work, head = _pull_request_checkout(ops_repo, tmp_path)
    values = {
        "${{ github.base_ref }}": "main",
        "${{ github.event.pull_request.head.sha }}": head,
    }
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    outputs = []
    for step in steps():
        if "run" not in step or step["name"] in RUNNER_STEPS:
            continue
        env = {
            name: values.get(str(value), str(value))
            for name, value in step.get("env", {}).items()
        }
        assert "${{" not in "".join(env.values()), env
        env["RUNNER_TEMP"] = str(runner_temp)
        done = run(["bash", "-euo", "pipefail", "-c", step["run"]], work, env)
        assert done.returncode == 0, (step["name"], done.stdout, done.stderr)
        outputs.append(done.stdout)
    assert outputs[1].startswith(f"change main..{head}: low\n"), outputs[1]
