"""Classifier cost, measured side by side in one run.

Prints, as medians of interleaved runs (so every side sees the same machine):

1. a cold `vault classify FILE` process against the floor of issue 11 (goal:
   <= 1.5x), in wall and in CPU time (CPU suffers less from a busy shared
   machine), with two sides that show what click alone costs. Every side is
   a new process of the same interpreter with the same site setup: the one
   named by the `vault` console script's ``#!`` line (make's ``.venv``), so
   each processes the same ``.pth`` files (the editable install's, which adds
   the checkout to ``sys.path`` with no import hook, and setuptools'
   ``distutils-precedence.pth``), and each reads compiled bytecode, as an
   installation does (caches under a temporary ``PYTHONPYCACHEPREFIX``,
   written by two untimed runs of each side first). The sides:

   - ``vault``: ``<venv>/bin/vault classify <file>``, the console script an
     operator runs (it imports ``opsvault.cli`` and calls ``main``);
   - ``floor``: ``<python> -c`` reading and parsing the same file with
     ``tomllib``;
   - ``import click``: ``<python> -c "import click"``, the library alone;
   - ``click command``: ``<python> -c`` a one-command click group (help and
     version options, a path argument, a ``--json`` flag) whose command
     parses the same file with ``tomllib`` and prints one line: the least a
     click command that reads the file costs;
2. one process classifying 1,000 action files, and one validating them
   (cost per file).

The file is ``vault/actions/bench-0001.toml`` of a copy of ops-template: a
valid http-hook action (high tier), classified against the template's
policy and the built-in formula it names.

Run: .venv/bin/python benchmarks/classify.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
N_FILES = 1000
COLD_RUNS = 21

ACTION = """formula = "{formula}"
context = "benchmark action {i}"
requested_by = "bench-bot"
{extra}
"""


def make_ops(tmp: Path) -> Path:
    ops = tmp / "ops"
    shutil.copytree(ROOT / "ops-template", ops)
    actions = ops / "vault" / "actions"
    for i in range(N_FILES):
        if i % 3 == 0:
            text = ACTION.format(
                formula="noop", i=i, extra=f'params = {{ message = "run {i}" }}'
            )
        elif i % 3 == 1:
            text = ACTION.format(
                formula="http-hook",
                i=i,
                extra=f'secrets = ["HOOK_TOKEN"]\nparams = {{ url = "https://deploy.example.org/{i}", method = "DELETE" }}',
            )
        else:
            text = ACTION.format(
                formula="git-make",
                i=i,
                extra=f'params = {{ repo = "https://git.example.org/acme/app", ref = "v{i}", target = "release" }}',
            )
        (actions / f"bench-{i:04d}.toml").write_text(text)
    return ops


FLOOR = "import sys, tomllib\nwith open(sys.argv[1], 'rb') as f: tomllib.load(f)\n"
CLICK_COMMAND = """
import sys, click

@click.group()
@click.version_option("0")
def cli():
    pass

@cli.command()
@click.argument("path", type=click.Path())
@click.option("--json", "as_json", is_flag=True)
def classify(path, as_json):
    import tomllib
    with open(path, "rb") as f:
        tomllib.load(f)
    click.echo(f"{path}: parsed")

cli.main(sys.argv[1:])
"""


def vault_exe() -> str:
    exe = Path(sys.executable).parent / "vault"
    found = str(exe) if exe.exists() else shutil.which("vault")
    if found is None:
        raise SystemExit("no `vault` console script beside this python or on PATH")
    return found


def interpreter_of(script: str) -> str:
    """Return the interpreter the console script *script* runs under (its ``#!`` line)."""
    with open(script, "rb") as fh:
        first = fh.readline().decode().strip()
    python = first.removeprefix("#!")
    if not first.startswith("#!") or " " in python or not Path(python).exists():
        raise SystemExit(f"{script}: cannot tell its interpreter from {first!r}")
    return python


def bytecode_env(tmp: Path) -> dict[str, str]:
    """Return an environment in which both sides use compiled bytecode, as an install does.

    pip compiles an installed package; a checkout run with
    PYTHONDONTWRITEBYTECODE would compile every module on every run instead.
    The caches go to a temporary prefix, not into the checkout.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    return env


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Return the wall and CPU (user + system) seconds of one run of *argv*."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    assert proc.stderr is not None
    err = proc.stderr.read()
    proc.stderr.close()
    if status != 0:
        raise SystemExit(f"{argv[:2]} failed: {err.decode()[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def cold_single(
    ops: Path, runs: int, env: dict[str, str]
) -> dict[str, tuple[float, float]]:
    """Return (median wall, median CPU) of each side, runs interleaved."""
    target = ops / "vault" / "actions" / "bench-0001.toml"
    vault = vault_exe()
    python = interpreter_of(vault)
    sides = {
        "vault": [vault, "classify", str(target)],
        "floor": [python, "-c", FLOOR, str(target)],
        "import click": [python, "-c", "import click"],
        "click command": [python, "-c", CLICK_COMMAND, "classify", str(target)],
    }
    for argv in sides.values():  # bytecode and the OS file cache, not a process
        timed(argv, ops, env), timed(argv, ops, env)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
    for _ in range(runs):
        for name, argv in sides.items():
            samples[name].append(timed(argv, ops, env))
    return {
        name: (
            statistics.median(w for w, _ in got),
            statistics.median(c for _, c in got),
        )
        for name, got in samples.items()
    }


def batch(ops: Path, command: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [
            vault_exe(),
            command,
            "--ops",
            str(ops),
            "--json",
            str(ops / "vault" / "actions"),
        ],
        capture_output=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"vault {command} failed: {proc.stderr.decode()[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=COLD_RUNS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ops = make_ops(Path(tmp))
        cold = cold_single(ops, args.runs, bytecode_env(Path(tmp)))
        batch(ops, "classify")  # warm the OS file cache
        many = statistics.median(batch(ops, "classify") for _ in range(3))
        checked = statistics.median(batch(ops, "validate") for _ in range(3))
    floor_wall, floor_cpu = cold["floor"]
    print(
        f"Cold classify against the tomllib floor (medians of {args.runs}; "
        f"{interpreter_of(vault_exe())})"
    )
    labels = {
        "vault": "cold `vault classify FILE`",
        "floor": "floor: python + tomllib, same file",
        "import click": "python -c 'import click'",
        "click command": "a one-command click program, same file",
    }
    for name, label in labels.items():
        wall, cpu = cold[name]
        print(
            f"   {label + ':':40s} {wall * 1000:6.1f} ms wall ({wall / floor_wall:.2f}x), "
            f"{cpu * 1000:6.1f} ms CPU ({cpu / floor_cpu:.2f}x)"
        )
    vault_wall, vault_cpu = cold["vault"]
    click_wall = cold["import click"][0]
    print(
        f"   => ratio {vault_wall / floor_wall:.2f}x the floor wall, "
        f"{vault_cpu / floor_cpu:.2f}x CPU (goal <= 1.5x); "
        f"importing click alone is {click_wall / floor_wall:.2f}x"
    )
    print(f"One process, {N_FILES} action files (median of 3)")
    for label, took in (("classify", many), ("validate", checked)):
        print(
            f"   vault {label}: {took:.2f} s, {took / N_FILES * 1000:.2f} ms per file"
        )


if __name__ == "__main__":
    main()
