"""Classifier cost, measured side by side in one run.

Prints: the wall time of one cold `vault classify` process on one file; the
time one process takes to classify 1,000 action files (and the cost per file);
and the ratio of the two. Targets (issue 2): 1,000 files in under 1.5 s, a
cold single classify under 250 ms.

Run: .venv/bin/python benchmarks/classify.py
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
N_FILES = 1000
COLD_RUNS = 7

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


def vault_exe() -> str:
    exe = Path(sys.executable).parent / "vault"
    return str(exe) if exe.exists() else "vault"


def cold_single(ops: Path) -> float:
    target = ops / "vault" / "actions" / "bench-0001.toml"
    times = []
    for _ in range(COLD_RUNS):
        start = time.perf_counter()
        subprocess.run(
            [vault_exe(), "classify", "--ops", str(ops), str(target)],
            check=True,
            capture_output=True,
        )
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def batch(ops: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [
            vault_exe(),
            "classify",
            "--ops",
            str(ops),
            "--json",
            str(ops / "vault" / "actions"),
        ],
        check=True,
        capture_output=True,
    )
    elapsed = time.perf_counter() - start
    assert proc.stdout.count(b'"tier"') >= N_FILES
    return elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ops = make_ops(Path(tmp))
        batch(ops)  # warm the OS file cache, not the process
        cold = cold_single(ops)
        many = batch(ops)
    print(
        f"cold `vault classify` of 1 file (median of {COLD_RUNS}): {cold * 1000:.0f} ms  (target < 250 ms)"
    )
    print(
        f"one process, {N_FILES} files: {many:.2f} s, {many / N_FILES * 1000:.2f} ms per file  (target < 1.5 s)"
    )
    print(
        f"ratio: {N_FILES} files cost {many / cold:.1f}x one cold single-file classify"
    )


if __name__ == "__main__":
    main()
