"""The command examples in docs/ run as written and print what the docs show.

A ```console block preceded by ``<!-- example: template ... -->`` is run line
by line in a fresh ops repo made from the template (a git repo on main): each
``$ command`` goes to bash, with the `vault` of this checkout first on PATH,
and its output (stdout and stderr) must be the lines under it. A command
ending in ``# exit N`` must exit N; every other must exit 0. Before comparing,
``/tmp/`` stands for a private directory and a month label (``since
2026/09``) for any month, so the docs read naturally and the test is exact.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli.conftest import template_files
from tests.conftest import init_repo

ROOT = Path(__file__).resolve().parents[2]
DOCS = ("docs/policy.md", "docs/local-mode.md", "docs/planner.md")
_BLOCK = re.compile(
    r"<!-- example: (?P<setup>[a-z-]+)[^>]*-->\n```console\n(?P<body>.*?)^```$",
    re.MULTILINE | re.DOTALL,
)
_EXIT = re.compile(r"\s+# exit (\d+)$")
_MONTH = re.compile(r"since \d{4}/\d{2}")


@dataclass(frozen=True)
class Step:
    command: str
    output: tuple[str, ...]
    exit_code: int


def examples() -> list[tuple[str, tuple[Step, ...]]]:
    found = []
    for doc in DOCS:
        text = (ROOT / doc).read_text(encoding="utf-8")
        for n, match in enumerate(_BLOCK.finditer(text), 1):
            assert match["setup"] == "template", f"{doc}: unknown example setup"
            found.append((f"{doc}#{n}", _steps(match["body"])))
    return found


def _steps(body: str) -> tuple[Step, ...]:
    steps: list[Step] = []
    for line in body.splitlines():
        if line.startswith("$ "):
            command = line[2:]
            code = _EXIT.search(command)
            steps.append(
                Step(
                    _EXIT.sub("", command),
                    (),
                    int(code[1]) if code else 0,
                )
            )
        else:
            assert steps, f"output before any command: {line!r}"
            last = steps[-1]
            steps[-1] = Step(last.command, (*last.output, line), last.exit_code)
    return tuple(steps)


def _normal(text: str, private: Path) -> str:
    return _MONTH.sub("since YYYY/MM", text.replace(f"{private}/", "/tmp/"))


@pytest.mark.parametrize("name,steps", examples(), ids=[n for n, _ in examples()])
def test_doc_example_runs_as_written(
    name: str, steps: tuple[Step, ...], tmp_path: Path
) -> None:
    ops, private = tmp_path / "ops", tmp_path / "tmp"
    private.mkdir()
    init_repo(ops, template_files())
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "GIT_AUTHOR_NAME": "alice",
        "GIT_AUTHOR_EMAIL": "alice@example.invalid",
        "GIT_COMMITTER_NAME": "alice",
        "GIT_COMMITTER_EMAIL": "alice@example.invalid",
        "NO_COLOR": "1",
    }
    for step in steps:
        command = step.command.replace("/tmp/", f"{private}/")
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=ops,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        shown = _normal(done.stdout + done.stderr, private).splitlines()
        expected = [_normal(line, private) for line in step.output]
        assert (done.returncode, shown) == (step.exit_code, expected), (
            f"{name}: $ {step.command}"
        )


def test_the_docs_have_examples() -> None:
    names = [name for name, _ in examples()]
    for doc in DOCS:
        assert any(n.startswith(f"{doc}#") for n in names), doc
