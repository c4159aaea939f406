"""Classifier cost, measured side by side in one run.

Prints, as medians of interleaved runs (so both sides see the same machine):

1. a cold `vault classify FILE` process against the floor: a bare interpreter
   reading and parsing the same file with tomllib; and the ratio
   (goal, issue 11: <= 1.5x the floor);
2. one process classifying 1,000 action files, and one validating them
   (cost per file).

Run: .venv/bin/python benchmarks/classify.py [--runs N]
"""

from __future__ import annotations

import argparse
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


def timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, cwd=cwd)
    return time.perf_counter() - start


def cold_single(ops: Path, runs: int) -> tuple[float, float]:
    """Return the medians of a cold `vault classify FILE` and of the tomllib floor."""
    target = ops / "vault" / "actions" / "bench-0001.toml"
    vault = [vault_exe(), "classify", str(target)]
    floor = [sys.executable, "-c", FLOOR, str(target)]
    timed(vault, ops), timed(floor, ops)  # warm the OS file cache, not a process
    cold: list[float] = []
    bare: list[float] = []
    for _ in range(runs):
        cold.append(timed(vault, ops))
        bare.append(timed(floor, ops))
    return statistics.median(cold), statistics.median(bare)


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
        cold, floor = cold_single(ops, args.runs)
        batch(ops, "classify")  # warm the OS file cache
        many = statistics.median(batch(ops, "classify") for _ in range(3))
        checked = statistics.median(batch(ops, "validate") for _ in range(3))
    print("Cold classify against the tomllib floor")
    print(
        f"   cold `vault classify FILE` (median of {args.runs}): {cold * 1000:6.1f} ms"
    )
    print(
        f"   python + tomllib, same file (median of {args.runs}): {floor * 1000:6.1f} ms"
    )
    print(f"   => ratio {cold / floor:.2f}x the floor (goal <= 1.5x)")
    print(f"One process, {N_FILES} action files (median of 3)")
    for label, took in (("classify", many), ("validate", checked)):
        print(
            f"   vault {label}: {took:.2f} s, {took / N_FILES * 1000:.2f} ms per file"
        )


if __name__ == "__main__":
    main()
