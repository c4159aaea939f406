"""The README's "Using it" block runs as written; every `vault` line of the docs parses.

The block is run by bash from the repository root, as a reader who has run
`make` would: `source .venv/bin/activate` included, in a fresh HOME whose only
setting is a git identity (what `git commit` needs anywhere).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest

from opsvault.cli import cli

ROOT = Path(__file__).parents[2]
FENCE = re.compile(r"^```(?:sh|bash|console)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def using_it_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Using it") :]
    section = section[: section.index("\n## ", 1)]
    [block] = FENCE.findall(section)
    return str(block)


def test_using_it_runs_as_written(tmp_path: Path) -> None:
    if not (ROOT / ".venv" / "bin" / "activate").is_file():
        pytest.skip("needs the .venv `make` creates")  # `make test` always has it
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Dee Veloper\n\temail = dee@example.org\n"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPSVAULT_", "GIT_", "VIRTUAL_ENV"))
    }
    env["HOME"] = str(home)
    env["PATH"] = os.pathsep.join(
        p
        for p in env.get("PATH", "/usr/bin:/bin").split(os.pathsep)
        if Path(p) != Path(sys.executable).parent  # `vault` only via the activate line
    )
    script = tmp_path / "using-it.sh"
    script.write_text("set -euo pipefail\n" + using_it_block())
    done = subprocess.run(
        ["bash", str(script)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "wrote vault/actions/smoke-1.toml (tier medium)" in out
    assert "proposed vault/actions/deploy-docs-1.toml (tier medium)" in out
    assert "approved vault/smoke-1" in out and "as alice" in out
    assert "action smoke-1: succeeded" in out
    assert "deploy-docs-1 (#1): rejected" in out
    final = out[out.rindex("ops repo at") :]
    rows = [line.split()[1:3] for line in final.splitlines() if "T" in line[:14]]
    assert ["deploy-docs-1", "rejected"] in rows and ["smoke-1", "succeeded"] in rows
    assert (home / "ops" / "vault" / "policy.toml").is_file()


def documented_lines() -> list[tuple[str, str]]:
    """Every `vault ...` command of a shell block in README.md and docs/*.md."""
    found = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for block in FENCE.findall(doc.read_text()):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.split(" #", 1)[0].strip().removeprefix("$ ")
                words = line.split()
                # `.venv/bin/vault`, `OPSVAULT_X=. vault`: the command itself
                while words and "=" in words[0] and not words[0].startswith("-"):
                    words.pop(0)
                if words and words[0] in ("vault", "opsvault", ".venv/bin/vault"):
                    found.append((doc.name, " ".join(words)))
    return found


@pytest.mark.parametrize(("doc", "line"), documented_lines())
def test_every_documented_vault_line_parses(doc: str, line: str) -> None:
    """Its subcommand exists, takes the options shown and gets its arguments (nothing runs)."""
    try:
        args = shlex.split(line)[1:]
    except ValueError:
        pytest.fail(f"{doc}: {line!r} does not split as shell words")
    args = [a for a in args if a not in ("/", "|")]
    if "|" in line or ">" in line or " / " in line:
        args = shlex.split(re.split(r"[|>]| / ", line)[0])[1:]
    group: click.Command = cli
    ctx = click.Context(cli, info_name="vault")
    while isinstance(group, click.Group) and args and not args[0].startswith("-"):
        sub = group.get_command(ctx, args[0])
        assert sub is not None, f"{doc}: {line!r}: no command {args[0]!r}"
        group, args = sub, args[1:]
        ctx = click.Context(group, info_name=group.name, parent=ctx)
    if "--help" in args or "-h" in args:
        return
    try:
        with group.make_context(group.name or "vault", list(args)):
            pass  # parsed: every option known, every argument given
    except click.BadParameter as exc:
        if isinstance(exc, click.MissingParameter):
            pytest.fail(f"{doc}: {line!r}: {exc.format_message()}")
        # A value this machine cannot check (a file of the example that is absent).
    except click.UsageError as exc:
        pytest.fail(f"{doc}: {line!r}: {exc.format_message()}")
