"""Classifier cost, measured side by side in one run.

Prints, as medians of interleaved runs (so both sides see the same machine):

1. a cold `vault classify FILE` process against the floor: a bare interpreter
   reading and parsing the same file with tomllib; and the ratio
   (goal, issue 11: <= 1.5x the floor), in wall and in CPU time (the CPU
   figure suffers less from a busy shared machine), beside what importing
   click alone costs; both sides with compiled bytecode, as installed;
2. one process classifying 1,000 action files, and one validating them
   (cost per file).

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


def vault_exe() -> str:
    exe = Path(sys.executable).parent / "vault"
    return str(exe) if exe.exists() else "vault"


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
    sides = {
        "vault": [vault_exe(), "classify", str(target)],
        "floor": [sys.executable, "-c", FLOOR, str(target)],
        "click": [sys.executable, "-c", "import click"],
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
    (vault_wall, vault_cpu), (floor_wall, floor_cpu) = cold["vault"], cold["floor"]
    click_wall, click_cpu = cold["click"]
    print(f"Cold classify against the tomllib floor (medians of {args.runs})")
    print(
        f"   cold `vault classify FILE`:     {vault_wall * 1000:6.1f} ms wall, "
        f"{vault_cpu * 1000:6.1f} ms CPU"
    )
    print(
        f"   python + tomllib, same file:    {floor_wall * 1000:6.1f} ms wall, "
        f"{floor_cpu * 1000:6.1f} ms CPU"
    )
    print(
        f"   python -c 'import click':       {click_wall * 1000:6.1f} ms wall, "
        f"{click_cpu * 1000:6.1f} ms CPU  (what click alone costs)"
    )
    print(
        f"   => ratio {vault_wall / floor_wall:.2f}x the floor wall, "
        f"{vault_cpu / floor_cpu:.2f}x CPU (goal <= 1.5x); "
        f"click alone {click_wall / floor_wall:.2f}x"
    )
    print(f"One process, {N_FILES} action files (median of 3)")
    for label, took in (("classify", many), ("validate", checked)):
        print(
            f"   vault {label}: {took:.2f} s, {took / N_FILES * 1000:.2f} ms per file"
        )


if __name__ == "__main__":
    main()
